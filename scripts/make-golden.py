#!/usr/bin/env python3
"""Regenerates the golden fixtures in tests/golden/ from llama.cpp b11312.

The fixtures are made by this script only, never edited by hand. They extend the shared
reference set (greedy-*.json and tokenize-*.json made from the same llama.cpp build) with new
prompts and strings, in exactly the same format, so the same test code reads both.

- greedy-<model>.json: raw prompts (no chat template), 64 greedy tokens. Ids and top-2
  log-probabilities (log-softmax of the raw logits) come from golden-top2, llama-simple's loop
  that also prints the two best tokens at each step (TOP2_TOOL_CPP below, compiled against the
  build); the text is checked against llama-simple, the ids, text and top-2 against
  llama-server /completion with n_probs=2, the method of the shared files.
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
# --verify: allowed difference of a top-2 log-probability to the reference's (rounded) one
VERIFY_LOGPROB_TOLERANCE = 1e-3
# golden-top2 against llama-server: the same float computation, printed with different digits
SERVER_LOGPROB_TOLERANCE = 1e-6

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
    "(llama_token_to_piece, special=true). continuation_ids and top2 come from golden-top2, "
    "llama-simple's loop with llama-server's context settings that also prints the two best "
    "tokens (source in scripts/make-golden.py); llama-simple printed identical text, "
    "llama-server /completion "
    "(return_tokens, n_probs=2) gave identical ids and text. A case whose 64th token would end "
    "inside a UTF-8 character is generated with the largest n_predict below 64 that ends on a "
    "character boundary (its n_predict says so). A case that stops at an end-of-generation "
    "token before 64 keeps that token as the last of continuation_ids and top2, with no text "
    "(llama-simple stops there without printing it); its stopped_by says so."
)
TOP2_HOW = (
    "top2[i] = [id, logprob, id2, logprob2]: the two most probable tokens at generated position "
    "i and their log-probabilities (log-softmax of the raw logits at greedy decoding step i, "
    "computed as llama-server /completion with n_probs=2 computes them, in float, on "
    "llama.cpp's AVX2 code path, which produced these continuations). llama-server gave the "
    "same values at every position it reports (it skips tokens whose text ends inside a UTF-8 "
    "character). piece_end_bytes[i] = byte offset in the UTF-8 continuation where generated "
    "token i ends. A small gap logprob - logprob2 (equal to the logit gap) marks a near tie, "
    "where another implementation's rounding can legitimately pick the second token."
)
TOKENIZE_HOW = (
    "text fed byte-exact on stdin: llama-tokenize -m MODEL --stdin --ids --no-escape "
    "--log-disable [--no-bos] [--no-parse-special]. add_special=true means "
    "llama_tokenize(add_special=true), i.e. the model's BOS is prepended when its GGUF says "
    "add_bos_token (llama-tokenize passes add_special = model_add_bos && !--no-bos). "
    "parse_special=true means special/control tokens written in the text (e.g. <|im_start|>) "
    "are matched as single tokens."
)


# llama-simple with one addition: at each generated position it prints the two most probable
# tokens and their log-softmax. llama-server's n_probs cannot serve here: it reports nothing for
# a token whose text ends inside a UTF-8 character (server-context.cpp, process_token), which
# multi-byte text is full of. The loop is llama-simple's (examples/simple/simple.cpp); the
# context settings are llama-server's as the shared files ran it.
# Output, one line each: `prompt ID...`, then per token `token ID ID1 LOGPROB1 ID2 LOGPROB2
# EOG HEX_PIECE` (piece = llama_token_to_piece(special=true)).
TOP2_TOOL_CPP = r"""
#include "llama.h"
#include <algorithm>
#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static void batch_set_tokens(llama_batch_ext * batch, const llama_token * tokens, int32_t n_tokens, llama_pos pos_0) {
    llama_batch_ext_clear(batch);
    for (int32_t i = 0; i < n_tokens; ++i) {
        const int32_t idx = llama_batch_ext_add_token(batch, 0, tokens[i]);
        const llama_pos pos = pos_0 + i;
        llama_batch_ext_set_pos(batch, idx, &pos);
    }
    llama_batch_ext_set_output_logits(batch, n_tokens - 1, true);
}

static std::string piece_of(const llama_vocab * vocab, llama_token id) {
    char buf[256];
    const int n = llama_token_to_piece(vocab, id, buf, sizeof(buf), 0, true);
    if (n < 0) { fprintf(stderr, "token_to_piece failed for %d\n", id); exit(1); }
    return std::string(buf, n);
}

int main(int argc, char ** argv) {
    std::setlocale(LC_NUMERIC, "C");
    if (argc != 4) { fprintf(stderr, "usage: %s MODEL N_PREDICT PROMPT\n", argv[0]); return 2; }
    const std::string prompt = argv[3];
    const int n_predict = atoi(argv[2]);
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    llama_model_params model_params = llama_model_default_params();
    model_params.n_gpu_layers = 99;
    llama_model * model = llama_model_load_from_file(argv[1], model_params);
    if (model == NULL) { fprintf(stderr, "unable to load model\n"); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    const int n_prompt = -llama_tokenize(vocab, prompt.c_str(), prompt.size(), NULL, 0, true, true);
    std::vector<llama_token> prompt_tokens(n_prompt);
    if (llama_tokenize(vocab, prompt.c_str(), prompt.size(), prompt_tokens.data(), prompt_tokens.size(), true, true) < 0) {
        fprintf(stderr, "failed to tokenize the prompt\n");
        return 1;
    }
    printf("prompt");
    for (auto id : prompt_tokens) printf(" %d", id);
    printf("\n");

    // llama-server's context as the shared reference ran it (-c 1024 -t 2, default batch
    // sizes): its KV length and thread count decide how attention sums, so these settings,
    // not llama-simple's, reproduce its log-probabilities exactly
    if (n_prompt + n_predict > 1024) { fprintf(stderr, "prompt too long\n"); return 1; }
    llama_context_params ctx_params = llama_context_default_params();
    ctx_params.n_ctx = 1024;
    ctx_params.n_batch = 1024;
    ctx_params.n_ubatch = 512;
    ctx_params.n_threads = 2;
    ctx_params.n_threads_batch = 2;
    ctx_params.no_perf = false;
    llama_context * ctx = llama_init_from_model(model, ctx_params);
    if (ctx == NULL) { fprintf(stderr, "failed to create the llama_context\n"); return 1; }
    auto sparams = llama_sampler_chain_default_params();
    sparams.no_perf = false;
    llama_sampler * smpl = llama_sampler_chain_init(sparams);
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());

    llama_batch_ext * batch = llama_batch_ext_init(ctx);
    int n_tokens = n_prompt;
    batch_set_tokens(batch, prompt_tokens.data(), n_prompt, 0);
    for (int n_pos = 0; n_pos + n_tokens < n_prompt + n_predict; ) {
        if (llama_process(ctx, LLAMA_PROCESS_TYPE_DECODE, batch)) { fprintf(stderr, "failed to eval\n"); return 1; }
        n_pos += n_tokens;
        // the two most probable tokens and their log-probabilities, computed exactly as
        // llama-server computes its n_probs (get_token_probabilities in server-common.cpp and
        // completion_token_output::logarithm): a float softmax summed in partial_sort order
        const float * logits = llama_get_logits_ith(ctx, -1);
        std::vector<llama_token_data> cur(n_vocab);
        for (int i = 0; i < n_vocab; i++) cur[i] = llama_token_data{i, logits[i], 0.0f};
        std::partial_sort(cur.begin(), cur.begin() + 2, cur.end(),
            [](const llama_token_data & a, const llama_token_data & b) { return a.logit > b.logit; });
        const float max_l = cur[0].logit;
        float cum_sum = 0.0f;
        for (auto & t : cur) {
            const float p = expf(t.logit - max_l);
            t.p = p;
            cum_sum += p;
        }
        for (auto & t : cur) t.p /= cum_sum;
        const llama_token new_token_id = llama_sampler_sample(smpl, ctx, -1);
        const bool eog = llama_vocab_is_eog(vocab, new_token_id);
        printf("token %d %d %.9g %d %.9g %d ", new_token_id, cur[0].id, (double) std::log(cur[0].p),
               cur[1].id, (double) std::log(cur[1].p), eog ? 1 : 0);
        for (unsigned char c : piece_of(vocab, new_token_id)) printf("%02x", c);
        printf("\n");
        if (eog) break;
        batch_set_tokens(batch, &new_token_id, 1, n_pos);
        n_tokens = 1;
    }
    llama_batch_ext_free(batch);
    llama_sampler_free(smpl);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
"""


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
        output = self.output()
        self.__exit__()
        raise GoldenError(f"llama-server did not become healthy:\n{output}")

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


def top2_tool(bin_dir: Path) -> Path:
    """TOP2_TOOL_CPP compiled against the llama.cpp build whose tools are in bin_dir, kept
    beside that build and rebuilt when the source text changes."""
    build_dir = bin_dir.parent
    exe = build_dir / "golden-top2"
    source = build_dir / "golden-top2.cpp"
    if exe.is_file() and source.is_file() and source.read_text() == TOP2_TOOL_CPP:
        return exe
    cmake_cache = (build_dir / "CMakeCache.txt").read_text()
    src = next(
        line.split("=", 1)[1] for line in cmake_cache.splitlines()
        if line.startswith("CMAKE_HOME_DIRECTORY:")
    )
    libs = ["src/libllama.a", "ggml/src/libggml.a", "ggml/src/libggml-cpu.a",
            "ggml/src/libggml-base.a"]
    log(f"compiling {exe}")
    source.write_text(TOP2_TOOL_CPP)
    partial = exe.with_suffix(".partial")
    subprocess.run(
        ["nice", "-n", "19", "g++", "-O3", "-std=c++17", f"-I{src}/include",
         f"-I{src}/ggml/include", str(source), "-Wl,--start-group",
         *[str(build_dir / lib) for lib in libs], "-Wl,--end-group", "-fopenmp", "-lpthread",
         "-ldl", "-o", str(partial)],
        check=True,
    )
    partial.rename(exe)
    return exe


def signed_round(value: float) -> float:
    # + 0.0 turns -0.0 into 0.0
    return round(value, LOGPROB_DECIMALS) + 0.0


def run_top2(tool: Path, model: Path, prompt: str, n_predict: int) -> dict:
    out = subprocess.run(
        [str(tool), str(model), str(n_predict), prompt], check=True, capture_output=True
    ).stdout.decode("ascii")
    result: dict = {
        "prompt_ids": None, "ids": [], "top2": [], "top2_raw": [], "pieces": [], "eog": False
    }
    for line in out.splitlines():
        fields = line.split()
        if fields[0] == "prompt":
            result["prompt_ids"] = [int(field) for field in fields[1:]]
            continue
        token, id1, logprob1, id2, logprob2 = fields[1:6]
        if token != id1:
            raise GoldenError(f"greedy token {token} is not the most probable one, {id1}")
        result["ids"].append(int(token))
        raw = [int(id1), float(logprob1), int(id2), float(logprob2)]
        result["top2_raw"].append(raw)
        result["top2"].append([raw[0], signed_round(raw[1]), raw[2], signed_round(raw[3])])
        result["eog"] = fields[6] == "1"
        result["pieces"].append(bytes.fromhex(fields[7]) if len(fields) > 7 else b"")
    return result


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


def ends_complete(text: bytes) -> bool:
    """Whether text does not end inside a UTF-8 character, judged as llama-server's
    validate_utf8 does (server-common.cpp)."""
    for back in range(1, min(4, len(text)) + 1):
        byte = text[-back]
        if (byte & 0xE0 == 0xC0 and back < 2) or (byte & 0xF0 == 0xE0 and back < 3) or (
            byte & 0xF8 == 0xF0 and back < 4
        ):
            return False
    return True


def end_offsets(pieces: list[bytes]) -> list[int]:
    ends = []
    for piece in pieces:
        ends.append((ends[-1] if ends else 0) + len(piece))
    return ends


def greedy_run(tool: Path, model: Path, stem: str, prompt: str) -> tuple[int, dict, str]:
    """Generates N_PREDICT tokens, or fewer where the 64th would end inside a UTF-8 character
    (then the largest count that ends on a boundary). Returns n_predict, the result and how it
    stopped. An end-of-generation token stays in the ids but adds no text: llama-simple stops
    there without printing it."""
    n_predict = N_PREDICT
    result = run_top2(tool, model, prompt, n_predict)
    if result["eog"]:
        name = result["pieces"][-1].decode("utf-8", "replace")
        result["pieces"][-1] = b""
        count = len(result["ids"])
        return n_predict, result, (
            f"end of generation: token {result['ids'][-1]} ({name}) after {count - 1} tokens; "
            f"it is the last of continuation_ids and top2, and adds no text to continuation"
        )
    text = b"".join(result["pieces"])
    if not is_utf8(text):
        ends = end_offsets(result["pieces"])
        n_predict = max(k for k in range(1, len(ends) + 1) if is_utf8(text[: ends[k - 1]]))
        result = run_top2(tool, model, prompt, n_predict)
    if len(result["ids"]) != n_predict or result["eog"]:
        raise GoldenError(f"{stem}: {prompt!r}: {len(result['ids'])} tokens, not {n_predict}")
    return n_predict, result, f"n_predict limit ({n_predict} tokens, no EOS)"


def check_server(server: Server, prompt: str, n_predict: int, result: dict) -> None:
    """llama-server must give the same prompt ids, ids and text, and the same top-2 at every
    position it reports (those where the text so far ends on a UTF-8 character boundary)."""
    prompt_ids = server.post(
        "/tokenize", {"content": prompt, "add_special": True, "parse_special": True}
    )["tokens"]
    response = server.post("/completion", completion_request(prompt, n_predict))
    text = b"".join(result["pieces"])
    if prompt_ids != result["prompt_ids"] or response["tokens"] != result["ids"]:
        raise GoldenError(f"{prompt!r}: llama-server's ids differ")
    if response["content"].encode("utf-8") != text:
        raise GoldenError(f"{prompt!r}: llama-server's text differs: {response['content']!r}")
    ends = end_offsets(result["pieces"])
    reported = [i for i, end in enumerate(ends) if ends_complete(text[:end])]
    probs = response["completion_probabilities"]
    if len(reported) != len(probs):
        raise GoldenError(f"{prompt!r}: llama-server reported {len(probs)} positions")
    for position, entry in zip(reported, probs):
        ours = result["top2_raw"][position]
        best = entry["top_logprobs"]
        theirs = [best[0]["id"], best[0]["logprob"], best[1]["id"], best[1]["logprob"]]
        if (ours[0], ours[2]) != (theirs[0], theirs[2]) or max(
            abs(ours[1] - theirs[1]), abs(ours[3] - theirs[3])
        ) > SERVER_LOGPROB_TOLERANCE:
            raise GoldenError(f"{prompt!r}: position {position}: top2 {ours}, server {theirs}")


def greedy_case(
    bin_dir: Path, tool: Path, server: Server, model: Path, stem: str, prompt: str
) -> dict:
    n_predict, result, stopped_by = greedy_run(tool, model, stem, prompt)
    text = b"".join(result["pieces"])
    simple_out = run_simple(bin_dir, model, prompt, n_predict)
    if not simple_out.endswith(text + b"\n") or not simple_out[: -len(text) - 1].endswith(
        prompt.encode()
    ):
        raise GoldenError(f"{stem}: {prompt!r}: llama-simple printed {simple_out!r}, not {text!r}")
    check_server(server, prompt, n_predict, result)
    simple = shlex.join(["llama-simple", "-m", model.name, "-n", str(n_predict), prompt])
    return {
        "model": stem,
        "prompt": prompt,
        "prompt_ids": result["prompt_ids"],
        "n_predict": n_predict,
        "continuation": text.decode("utf-8"),
        "continuation_ids": result["ids"],
        "stopped_by": stopped_by,
        "command": simple,
        "cross_checks": {
            "golden-top2 (llama-simple's loop, llama-server's context, top-2 log-softmax; "
            "source in scripts/make-golden.py), "
            "identical text, source of the ids and top2":
                shlex.join(["golden-top2", model.name, str(n_predict), prompt]),
            "llama-server /completion, identical ids and text, identical top2 where it reports "
            "them (not for a token whose text ends inside a UTF-8 character)":
                f"{server.command}  then POST /completion "
                + json.dumps(completion_request("PROMPT", n_predict)),
        },
        "top2": result["top2"],
        "piece_end_bytes": end_offsets(result["pieces"]),
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
    tool = top2_tool(bin_dir)
    with Server(bin_dir, model) as server:
        doc["cases"] = [greedy_case(bin_dir, tool, server, model, stem, p) for p in prompts]
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
        tool = top2_tool(bin_dir)
        with Server(bin_dir, model) as server:
            for case in ref["cases"]:
                ours = greedy_case(bin_dir, tool, server, model, ref["model"], case["prompt"])
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
