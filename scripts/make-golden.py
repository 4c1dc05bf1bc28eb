#!/usr/bin/env python3
"""Regenerates the golden fixtures in tests/golden/ from llama.cpp b11312.

The fixtures are made by this script only, never edited by hand. They extend the shared
reference set (greedy-*.json and tokenize-*.json made from the same llama.cpp build) with new
prompts and strings, in exactly the same format, so the same test code reads both.

- greedy-<model>.json: raw prompts (no chat template), 64 greedy tokens. Ids and top-2
  log-probabilities come from llama-server /completion (n_probs=2; the probabilities are the
  softmax of the raw logits, before any sampler); the text is checked against llama-simple.
- tokenize-<model>.json: the ids llama-tokenize gives for each string under the four
  (add_special, parse_special) flag sets, the string fed byte-exact on stdin.

llama.cpp comes from scripts/llamacpp.sh, configuration avx2: the code path the shared
reference used (an AVX-512 build rounds differently and flips near-tie greedy tokens).

Usage:
  scripts/make-golden.py                   regenerate every fixture (several minutes)
  scripts/make-golden.py --models smollm2-135m --only tokenize
  scripts/make-golden.py --verify DIR      re-run the cases of the greedy-*/tokenize-* files in
                                           DIR with this method and report any difference
Models are read from $SLM_HOME/models/<stem>.gguf (SLM_HOME defaults to ~/.cache/slm).
Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODELS = ["smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
BUILD = "b11312"
N_PREDICT = 64
THREADS = 2
# log-probabilities are rounded like the shared files (4 decimals)
LOGPROB_DECIMALS = 4
# --verify: allowed difference of a top-2 log-probability to the reference
VERIFY_LOGPROB_TOLERANCE = 1e-3

# A paragraph of about 200 tokens, to exercise a longer prefill.
LONG_PARAGRAPH = (
    "The printing press, developed by Johannes Gutenberg around 1440 in Mainz, changed the "
    "way knowledge moved through Europe. Before it, books were copied by hand, usually by "
    "monks working in scriptoria, and a single Bible could take a scribe more than a year to "
    "finish. Gutenberg combined several existing technologies: movable metal type cast from "
    "an alloy of lead, tin and antimony; an oil-based ink that stuck to metal; and a screw "
    "press adapted from those used to make wine and paper. Within fifty years, presses were "
    "operating in more than two hundred cities, and historians estimate that some twenty "
    "million volumes had been printed by 1500. Prices fell, literacy rose, and ideas that "
    "once circulated among a few scholars could now reach merchants, artisans and students. "
    "The Reformation, the Scientific Revolution and the growth of newspapers all depended on "
    "this sudden abundance of cheap, identical copies. In the long run, the most important "
    "consequence was"
)

# New greedy prompts (the shared set has: The capital of France is / def fibonacci(n): /
# Once upon a time, in a small village,).
GREEDY_PROMPTS = [
    'import json\n\n\ndef load_config(path):\n    """Read a JSON config file and return it as a dict."""\n',
    "Q: What is the boiling point of water at sea level, in degrees Celsius?\nA:",
    "Here is a list of the planets of the solar system, in order from the Sun:\n1.",
    "La Révolution française a commencé en 1789, lorsque",
    "北京是中国的首都，也是",
    LONG_PARAGRAPH,
    "The first twenty prime numbers are 2, 3, 5, 7, 11,",
]

# New tokenizer strings (the shared set has 30 others): whitespace runs, digits, emoji,
# special-token text, CJK and other scripts, accents and combining marks, code.
TOKENIZE_STRINGS = [
    "a  b   c    d     e",
    "\n\n\n\n",
    "   ",
    " \n \n\t\n ",
    "end with newlines\n\n",
    "\t\t\tthree tabs then text",
    "non\u00a0breaking\u00a0space and\u3000ideographic space",
    " ",
    "\n",
    "3.14159265358979323846",
    "1 12 123 1234 12345 123456 1234567",
    "0x1F 0b1010 1_000_000 1,000,000.00 +33 6 12 34 56 78",
    "\uff11\uff12\uff13 full-width and \u0663\u0664\u0665 Arabic-Indic digits",
    "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466 family, \U0001F3F3\uFE0F\u200D\U0001F308 flag, \U0001F680",
    "\U0001F600",
    "<|im_end|>",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
    "<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n    return y<|fim_middle|>",
    "<|endoftext|><|endoftext|>",
    "<bos><eos><pad><unk>",
    "<start_of_turn>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
    "<|im_start no closing and < |im_end| > spaced",
    "我喜欢用Rust写代码。",
    "東京都渋谷区、こんにちは世界",
    "Hello世界123abc",
    "e\u0301 (decomposed) vs \u00e9 (composed)",
    "Ærøskøbing Straße Đặng Thị Hồng ﬁnal œuvre",
    "مرحبا بالعالم — שלום עולם",
    "नमस्ते दुनिया and สวัสดีชาวโลก",
    "zero\u200bwidth and \ufeffBOM",
    "bell\u0007and\u001bescape",
    "I'M you'D They'Re it\u2019s \u201cquoted\u201d",
    "user.name+tag@example.co.uk",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{v:?}\");\n}\n",
    "    # comment\n    for i in range(10):\n        if i % 2 == 0:\n            yield i\n",
    '<div class="a">&amp; &lt;tag&gt;</div>',
    "^\\s*(\\d+)\\.?$ and C:\\path\\to\\file.txt",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!!!!!!!!!!!!!!????????........",
    "                                32 spaces before",
    "\u00e9",
]

# (add_special, parse_special, extra llama-tokenize flags), in the shared files' order
FLAG_SETS = [
    (True, True, []),
    (True, False, ["--no-parse-special"]),
    (False, True, ["--no-bos"]),
    (False, False, ["--no-bos", "--no-parse-special"]),
]
TOKENIZE_BASE_FLAGS = ["--stdin", "--ids", "--no-escape", "--log-disable"]

GREEDY_HOW = (
    "Greedy (argmax) decoding of 64 tokens from the raw prompt (no chat template). Prompt "
    "tokenized with add_special=true (BOS only if the model adds one) and parse_special=true. "
    "continuation = generated text only (prompt removed), as detokenized piece by piece "
    "(llama_token_to_piece, special=true). continuation_ids come from llama-server /completion "
    "with return_tokens; llama-simple produced identical text. A case whose 64th token would "
    "end inside a UTF-8 character is generated with the largest n_predict below 64 that ends "
    "on a character boundary (its n_predict says so)."
)
TOP2_HOW = (
    "top2[i] = [id, logprob, id2, logprob2]: the two most probable tokens at generated position "
    "i and their log-probabilities (log-softmax of the raw logits, from llama-server "
    "/completion with n_probs=2, temperature 0, on llama.cpp's AVX2 code path, which produced "
    "these continuations). piece_end_bytes[i] = byte offset in the UTF-8 continuation where "
    "generated token i ends. A small gap logprob - logprob2 (equal to the logit gap) marks a "
    "near tie, where another implementation's rounding can legitimately pick the second token."
)
TOKENIZE_HOW = (
    "text fed byte-exact on stdin: llama-tokenize -m MODEL --stdin --ids --no-escape "
    "--log-disable [--no-bos] [--no-parse-special]. add_special=true means "
    "llama_tokenize(add_special=true), i.e. the model's BOS is prepended when its GGUF says "
    "add_bos_token (llama-tokenize passes add_special = model_add_bos && !--no-bos). "
    "parse_special=true means special/control tokens written in the text (e.g. <|im_start|>) "
    "are matched as single tokens."
)


class GoldenError(Exception):
    """A reference tool did something this script does not expect."""


def log(message: str) -> None:
    print(f"make-golden: {message}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def llamacpp_bin() -> Path:
    """The bin folder of the avx2 build, built first if needed."""
    out = subprocess.run(
        ["nice", "-n", "19", str(REPO / "scripts" / "llamacpp.sh"), "avx2"],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    if len(out) != 2 or out[0] != "avx2":
        raise GoldenError(f"unexpected output of scripts/llamacpp.sh: {out}")
    return Path(out[1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """llama-server on 127.0.0.1 with one slot and no context checkpoints, as the shared
    reference ran it (with checkpoints the prompt is split differently and near ties flip)."""

    def __init__(self, bin_dir: Path, model: Path):
        self.port = free_port()
        options = ["-t", str(THREADS), "-c", "1024", "-np", "1", "--no-webui", "-ctxcp", "0"]
        self.command = shlex.join(
            ["llama-server", "-m", model.name, "--host", "127.0.0.1", "--port", "PORT", *options]
        )
        self.exe = [
            str(bin_dir / "llama-server"), "-m", str(model), "--host", "127.0.0.1",
            "--port", str(self.port), *options,
        ]
        self.process: subprocess.Popen | None = None
        self.log_file = tempfile.TemporaryFile()

    def __enter__(self) -> "Server":
        self.process = subprocess.Popen(
            self.exe, stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise GoldenError(f"llama-server exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url("/health"), timeout=5) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise GoldenError(f"llama-server did not become healthy:\n{self.output()}")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()

    def output(self) -> str:
        self.log_file.seek(0)
        return self.log_file.read().decode("utf-8", "replace")[-4000:]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.url(path), data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=1200) as response:
            return json.load(response)


def completion_request(prompt: str, n_predict: int) -> dict:
    return {
        "prompt": prompt, "n_predict": n_predict, "temperature": 0, "top_k": 1, "seed": 1,
        "cache_prompt": False, "return_tokens": True, "n_probs": 2,
    }


def piece_bytes(server: Server, ids: list[int]) -> list[bytes]:
    """llama_token_to_piece(id, special=true) of each id (the server's /tokenize echoes ids
    given as numbers, with pieces)."""
    if not ids:
        return []
    result = server.post("/tokenize", {"content": ids, "with_pieces": True})["tokens"]
    if [entry["id"] for entry in result] != ids:
        raise GoldenError("/tokenize did not echo the ids it was given")
    pieces = []
    for entry in result:
        piece = entry["piece"]
        pieces.append(piece.encode("utf-8") if isinstance(piece, str) else bytes(piece))
    return pieces


def generate(server: Server, prompt: str, n_predict: int) -> dict:
    """One greedy completion: ids, top-2 log-probabilities, pieces, how it stopped."""
    response = server.post("/completion", completion_request(prompt, n_predict))
    ids = response["tokens"]
    probs = response["completion_probabilities"]
    if len(ids) != len(probs):
        raise GoldenError(f"{len(ids)} tokens but {len(probs)} probability entries")
    top2 = []
    for position, (token, entry) in enumerate(zip(ids, probs)):
        best = entry["top_logprobs"]
        if len(best) != 2 or best[0]["id"] != token or entry["id"] != token:
            raise GoldenError(f"position {position}: greedy token {token} is not the top one")
        top2.append([
            best[0]["id"], round(best[0]["logprob"], LOGPROB_DECIMALS),
            best[1]["id"], round(best[1]["logprob"], LOGPROB_DECIMALS),
        ])
    return {"ids": ids, "top2": top2, "pieces": piece_bytes(server, ids),
            "stop_type": response.get("stop_type"), "content": response["content"]}


def run_simple(bin_dir: Path, model: Path, prompt: str, n_predict: int) -> bytes:
    result = subprocess.run(
        [str(bin_dir / "llama-simple"), "-m", str(model), "-n", str(n_predict), prompt],
        check=True, capture_output=True,
    )
    return result.stdout


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def greedy_case(bin_dir: Path, server: Server, model: Path, stem: str, prompt: str) -> dict:
    prompt_ids = server.post(
        "/tokenize", {"content": prompt, "add_special": True, "parse_special": True}
    )["tokens"]
    n_predict = N_PREDICT
    result = generate(server, prompt, n_predict)
    ends = []
    for piece in result["pieces"]:
        ends.append((ends[-1] if ends else 0) + len(piece))
    text = b"".join(result["pieces"])
    if result["stop_type"] == "eos":
        raise GoldenError(
            f"{stem}: {prompt!r} stopped at an end-of-generation token after "
            f"{len(result['ids'])} tokens; pick a prompt that runs for {N_PREDICT} tokens"
        )
    if not is_utf8(text):
        # cut back to the last token that ends on a character boundary and regenerate
        n_predict = max(k for k in range(1, len(ends) + 1) if is_utf8(text[: ends[k - 1]]))
        result = generate(server, prompt, n_predict)
        ends = ends[:n_predict]
        text = b"".join(result["pieces"])
    if len(result["ids"]) != n_predict:
        raise GoldenError(f"{stem}: {prompt!r}: {len(result['ids'])} tokens, not {n_predict}")
    continuation = text.decode("utf-8")
    if continuation != result["content"]:
        raise GoldenError(f"{stem}: {prompt!r}: server content differs from its pieces")
    simple_out = run_simple(bin_dir, model, prompt, n_predict)
    if not simple_out.endswith(text + b"\n") or not simple_out[: -len(text) - 1].endswith(
        prompt.encode()
    ):
        raise GoldenError(
            f"{stem}: {prompt!r}: llama-simple printed {simple_out!r}, server gave {text!r}"
        )
    return {
        "model": stem,
        "prompt": prompt,
        "prompt_ids": prompt_ids,
        "n_predict": n_predict,
        "continuation": continuation,
        "continuation_ids": result["ids"],
        "stopped_by": f"n_predict limit ({n_predict} tokens, no EOS)",
        "command": shlex.join(["llama-simple", "-m", model.name, "-n", str(n_predict), prompt]),
        "cross_checks": {
            "llama-server /completion, identical text, source of the ids and top2":
                f"{server.command}  then POST /completion "
                + json.dumps(completion_request("PROMPT", n_predict)),
        },
        "top2": result["top2"],
        "piece_end_bytes": ends,
    }


def tokenize(bin_dir: Path, model: Path, text: str, flags: list[str]) -> list[int]:
    result = subprocess.run(
        [str(bin_dir / "llama-tokenize"), "-m", str(model), *TOKENIZE_BASE_FLAGS, *flags],
        input=text.encode("utf-8"), check=True, capture_output=True,
    )
    lines = result.stdout.decode("utf-8").strip().splitlines()
    if not lines:
        raise GoldenError(f"llama-tokenize printed nothing for {text!r}")
    return json.loads(lines[-1])


def tokenize_cases(bin_dir: Path, model: Path, stem: str, strings: list[str]) -> list[dict]:
    cases = []
    for text in strings:
        for add_special, parse_special, flags in FLAG_SETS:
            cases.append({
                "model": stem, "string": text, "add_special": add_special,
                "parse_special": parse_special, "ids": tokenize(bin_dir, model, text, flags),
                "flags": " ".join(TOKENIZE_BASE_FLAGS + flags),
            })
    return cases


def header(stem: str, model: Path, sha256: str, what: str) -> dict:
    return {
        "model": stem,
        "model_file": model.name,
        "model_sha256": sha256,
        "reference": f"llama.cpp {COMMIT} (build {BUILD}), {what}",
        "generated_by": "scripts/make-golden.py (llama.cpp built by scripts/llamacpp.sh avx2: "
                        "the copy vendored in the llama-cpp-python 0.3.36 source distribution, "
                        "Release, GGML_NATIVE=OFF with AVX2/FMA/F16C/BMI2, no AVX-512)",
    }


def make_greedy(bin_dir: Path, model: Path, stem: str, sha256: str, prompts: list[str]) -> dict:
    doc = header(stem, model, sha256, "CPU backend, x86-64 AVX2/FMA")
    doc["how"] = GREEDY_HOW
    with Server(bin_dir, model) as server:
        doc["cases"] = [greedy_case(bin_dir, server, model, stem, p) for p in prompts]
    doc["top2_how"] = TOP2_HOW
    return doc


def make_tokenize(bin_dir: Path, model: Path, stem: str, sha256: str, strings: list[str]) -> dict:
    doc = header(stem, model, sha256, "tools/tokenize (llama-tokenize)")
    doc["how"] = TOKENIZE_HOW
    with_bos = tokenize(bin_dir, model, "x", [])
    without = tokenize(bin_dir, model, "x", ["--no-bos"])
    doc["model_adds_bos"] = len(with_bos) == len(without) + 1
    doc["cases"] = tokenize_cases(bin_dir, model, stem, strings)
    return doc


def write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    log(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def verify(bin_dir: Path, models_dir: Path, ref_dir: Path) -> int:
    """Re-runs the reference files' cases; returns the number of differences."""
    problems = 0
    for path in sorted(ref_dir.glob("greedy-*.json")):
        ref = json.loads(path.read_text(encoding="utf-8"))
        model = models_dir / f"{ref['model']}.gguf"
        if sha256_of(model) != ref["model_sha256"]:
            log(f"{path.name}: {model} is not the reference's model file; skipped")
            continue
        with Server(bin_dir, model) as server:
            for case in ref["cases"]:
                ours = greedy_case(bin_dir, server, model, ref["model"], case["prompt"])
                problems += compare_greedy(path.name, case, ours)
    for path in sorted(ref_dir.glob("tokenize-*.json")):
        ref = json.loads(path.read_text(encoding="utf-8"))
        model = models_dir / f"{ref['model']}.gguf"
        flags_of = {(a, p): f for a, p, f in FLAG_SETS}
        for case in ref["cases"]:
            flags = flags_of[(case["add_special"], case["parse_special"])]
            ids = tokenize(bin_dir, model, case["string"], flags)
            if ids != case["ids"]:
                problems += 1
                log(f"{path.name}: {case['string']!r} {flags}: {ids} != {case['ids']}")
        log(f"{path.name}: {len(ref['cases'])} cases checked")
    return problems


def compare_greedy(name: str, ref: dict, ours: dict) -> int:
    problems = 0
    for field in ["prompt_ids", "continuation", "continuation_ids", "piece_end_bytes"]:
        if ref[field] != ours[field]:
            problems += 1
            log(f"{name}: {ref['prompt']!r}: {field} differs")
    worst = 0.0
    for ref_row, our_row in zip(ref["top2"], ours["top2"]):
        if (ref_row[0], ref_row[2]) != (our_row[0], our_row[2]):
            problems += 1
            log(f"{name}: {ref['prompt']!r}: top2 ids {our_row} != {ref_row}")
        worst = max(worst, abs(ref_row[1] - our_row[1]), abs(ref_row[3] - our_row[3]))
    if worst > VERIFY_LOGPROB_TOLERANCE:
        problems += 1
    log(f"{name}: {ref['prompt']!r}: largest top2 logprob difference {worst:.5f}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--only", choices=["greedy", "tokenize"])
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "golden")
    parser.add_argument("--bin", type=Path, help="llama.cpp bin folder (default: llamacpp.sh avx2)")
    parser.add_argument("--verify", type=Path, metavar="DIR",
                        help="check this method against the greedy-*/tokenize-* files in DIR")
    args = parser.parse_args()

    slm_home = Path(os.environ.get("SLM_HOME", Path.home() / ".cache" / "slm"))
    models_dir = slm_home / "models"
    bin_dir = args.bin or llamacpp_bin()
    if args.verify:
        problems = verify(bin_dir, models_dir, args.verify)
        log(f"{problems} differences")
        return 1 if problems else 0
    for stem in args.models:
        model = models_dir / f"{stem}.gguf"
        if not model.is_file():
            log(f"{model} is missing; run: slm pull (or set SLM_HOME)")
            return 1
        sha256 = sha256_of(model)
        if args.only in (None, "tokenize"):
            doc = make_tokenize(bin_dir, model, stem, sha256, TOKENIZE_STRINGS)
            write_json(args.out / f"tokenize-{stem}.json", doc)
        if args.only in (None, "greedy"):
            doc = make_greedy(bin_dir, model, stem, sha256, GREEDY_PROMPTS)
            write_json(args.out / f"greedy-{stem}.json", doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
