#!/usr/bin/env python3
"""Regenerates the chat template fixtures in crates/engine/tests/templates/.

Each fixture template is rendered over a set of conversations by jinja2 set up exactly as
Hugging Face transformers sets it up (`_compile_jinja_template` in
transformers/utils/chat_template_utils.py): an ImmutableSandboxedEnvironment with
trim_blocks, lstrip_blocks and the loopcontrols extension, its own `tojson` filter
(json.dumps without HTML escaping), the `raise_exception` and `strftime_now` globals, and the
context `messages`, `tools` (None without tools), `documents` (None),
`add_generation_prompt`, `bos_token`, `eos_token`. The Rust test
(crates/engine/tests/it/templates.rs) renders the same cases with minijinja and compares the
text byte for byte. The fixtures are made by this script only, never edited by hand.

Templates:
- the `tokenizer.chat_template` (and `tokenizer.chat_template.<name>`) of each catalog GGUF in
  $SLM_HOME/models (SLM_HOME defaults to ~/.cache/slm), saved as <stem>.jinja
  (<stem>.<name>.jinja), with the BOS and EOS texts from the file's vocabulary;
- copies of templates from llama.cpp's models/templates directory (LLAMA_TEMPLATES below or
  --llama-templates DIR), with the BOS and EOS texts their models' tokenizers use.

Outputs (in crates/engine/tests/templates/):
- <template>.jinja: the template sources;
- cases.json: the conversations, each template's BOS/EOS texts and the fixed clock;
- expected/<template>.json: {conversation: {"text": ...} | {"error": ..., "raised": bool}}.
  "raised" is true when the template called raise_exception: the Rust side must give the
  same message; other errors (undefined attributes, type errors) only have to fail.

strftime_now uses a fixed time (FIXED_NOW) so that templates printing today's date are
reproducible; the Rust test pins the same time.

Usage: scripts/make-template-golden.py [--llama-templates DIR]
It makes its own virtual environment in target/template-venv with jinja2 from PyPI and
re-runs itself there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "engine" / "tests" / "templates"
VENV = ROOT / "target" / "template-venv"
JINJA2 = "jinja2==3.1.6"
LLAMA_TEMPLATES = Path.home() / (
    ".cache/slm-llamacpp/src/llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates"
)
CATALOG = ["smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
FIXED_NOW = datetime(2026, 1, 15, 9, 30, 0, tzinfo=timezone.utc)

# llama.cpp template file stem -> (bos_token, eos_token) of its model's tokenizer.
LLAMA_CPP = {
    "Qwen-Qwen2.5-7B-Instruct": ("", "<|im_end|>"),
    "Qwen-Qwen3-0.6B": ("", "<|im_end|>"),
    "Qwen-QwQ-32B": ("", "<|im_end|>"),
    "HuggingFaceTB-SmolLM3-3B": ("", "<|im_end|>"),
    "meta-llama-Llama-3.1-8B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "meta-llama-Llama-3.2-3B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "microsoft-Phi-3.5-mini-instruct": ("<s>", "<|endoftext|>"),
    "mistralai-Mistral-Nemo-Instruct-2407": ("<s>", "</s>"),
    "google-gemma-2-2b-it": ("<bos>", "<eos>"),
    "ibm-granite-granite-3.3-2B-Instruct": ("<|end_of_text|>", "<|end_of_text|>"),
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": ("<|begin_of_text|>", "<|im_end|>"),
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use": ("<|begin_of_text|>", "<|im_end|>"),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": (
        "<｜begin▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
    ),
    "LFM2.5-Instruct": ("<|startoftext|>", "<|im_end|>"),
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": 'The city, e.g. "Paris"'},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the local time in a time zone",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}},
            "required": ["zone"],
        },
    },
}
CALL = {
    "id": "call12345",
    "type": "function",
    "function": {
        "name": "get_weather",
        "arguments": {"location": "São Paulo", "unit": "celsius"},
    },
}
TOOL_RESULT = {
    "role": "tool",
    "content": '{"temperature": 22, "sky": "clear — \\"sunny\\""}',
    "tool_call_id": "call12345",
    "name": "get_weather",
}
ASK_WEATHER = {"role": "user", "content": "What's the weather in São Paulo?"}
SYSTEM = {"role": "system", "content": "You are a terse assistant."}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


# name -> (messages, tools or None, add_generation_prompt)
CONVERSATIONS = {
    "user": ([user("Hello")], None, True),
    "user_no_generation_prompt": ([user("Hello")], None, False),
    "system_user": ([SYSTEM, user("What is 2+2?")], None, True),
    "multi_turn": (
        [SYSTEM, user("Hi"), assistant("Hello! How can I help?"), user("Tell me a joke.")],
        None,
        True,
    ),
    "multi_turn_no_generation_prompt": (
        [user("Hi"), assistant("Hello! How can I help?")],
        None,
        False,
    ),
    "padded_content": ([user("  spaced out  \n"), assistant("\n ok \n"), user("x")], None, True),
    "non_ascii": (
        [
            SYSTEM,
            user('Grüße, 世界! "double" and \'single\' quotes, <tag> & émoji 🎉'),
            assistant("Ça va — très bien 😊"),
            user("Répète « ça »."),
        ],
        None,
        True,
    ),
    "tools_user": ([ASK_WEATHER], [WEATHER_TOOL, TIME_TOOL], True),
    "tools_system_user": ([SYSTEM, ASK_WEATHER], [WEATHER_TOOL], True),
    "tool_call_result": (
        [ASK_WEATHER, {"role": "assistant", "content": "", "tool_calls": [CALL]}, TOOL_RESULT],
        [WEATHER_TOOL],
        True,
    ),
    "tool_call_final_answer": (
        [
            SYSTEM,
            ASK_WEATHER,
            {"role": "assistant", "content": "", "tool_calls": [CALL]},
            TOOL_RESULT,
            assistant("It is 22 °C and \"sunny\" in São Paulo."),
        ],
        [WEATHER_TOOL],
        False,
    ),
}


def ensure_venv() -> None:
    """Re-runs this script in target/template-venv (made on first use) with jinja2."""
    if os.environ.get("SLM_TEMPLATE_VENV") == "1":
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", JINJA2], check=True)
    env = dict(os.environ, SLM_TEMPLATE_VENV="1")
    os.execve(str(python), [str(python), __file__, *sys.argv[1:]], env)


# ---- GGUF metadata (enough to read strings, arrays and integers) ----

GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                10: "<Q", 11: "<q", 12: "<d"}


def read_gguf_metadata(path: Path) -> dict:
    with open(path, "rb") as f:
        data = f.read(64 << 20)
    pos = 0

    def take(fmt: str):
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value[0]

    def string() -> str:
        nonlocal pos
        n = take("<Q")
        s = data[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def value(kind: int):
        if kind in GGUF_SCALARS:
            return take(GGUF_SCALARS[kind])
        if kind == 8:
            return string()
        if kind == 9:
            item = take("<I")
            n = take("<Q")
            return [value(item) for _ in range(n)]
        raise ValueError(f"unknown gguf type {kind}")

    if data[:4] != b"GGUF":
        raise ValueError(f"{path} is not GGUF")
    pos = 8
    take("<Q")  # tensors
    n_kv = take("<Q")
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("<I"))
    return meta


def catalog_templates(models: Path) -> dict:
    """stem[.name] -> (source, bos, eos) for each catalog GGUF that has a template."""
    found = {}
    for stem in CATALOG:
        path = models / f"{stem}.gguf"
        if not path.exists():
            print(f"skipping {stem}: {path} is missing", file=sys.stderr)
            continue
        meta = read_gguf_metadata(path)
        tokens = meta.get("tokenizer.ggml.tokens", [])

        def token(key: str) -> str:
            idx = meta.get(key)
            return tokens[idx] if idx is not None and idx < len(tokens) else ""

        bos, eos = token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id")
        for key, source in meta.items():
            if key == "tokenizer.chat_template":
                found[stem] = (source, bos, eos)
            elif key.startswith("tokenizer.chat_template."):
                found[f"{stem}.{key.removeprefix('tokenizer.chat_template.')}"] = (
                    source, bos, eos)
        if stem not in found:
            print(f"{stem} has no chat template", file=sys.stderr)
    return found


# ---- transformers' environment ----

def compile_template(source: str):
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source), raise_exception


class Raised(Exception):
    pass


def render(source: str, bos: str, eos: str, conversation) -> dict:
    import jinja2

    messages, tools, add_generation_prompt = conversation
    try:
        template, _ = compile_template(source)
        text = template.render(messages=messages, tools=tools, documents=None,
                               add_generation_prompt=add_generation_prompt,
                               bos_token=bos, eos_token=eos)
        return {"text": text}
    except jinja2.exceptions.TemplateSyntaxError as e:
        return {"error": str(e), "raised": False}
    except jinja2.exceptions.TemplateError as e:
        # raise_exception raises the base TemplateError; jinja2's own errors are subclasses.
        raised = type(e) is jinja2.exceptions.TemplateError
        return {"error": str(e), "raised": raised}
    except Exception as e:  # noqa: BLE001 - a template may fail in any Python way
        return {"error": f"{type(e).__name__}: {e}", "raised": False}


def main() -> None:
    ensure_venv()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llama-templates", type=Path, default=LLAMA_TEMPLATES)
    args = parser.parse_args()
    models = Path(os.environ.get("SLM_HOME", Path.home() / ".cache" / "slm")) / "models"

    templates = catalog_templates(models)
    for stem, (bos, eos) in LLAMA_CPP.items():
        path = args.llama_templates / f"{stem}.jinja"
        if not path.exists():
            print(f"skipping {stem}: {path} is missing", file=sys.stderr)
            continue
        templates[stem] = (path.read_text(encoding="utf-8"), bos, eos)

    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "expected").mkdir(parents=True)
    cases = {
        "now_unix": int(FIXED_NOW.timestamp()),
        "conversations": {
            name: {"messages": m, "tools": t, "add_generation_prompt": g}
            for name, (m, t, g) in CONVERSATIONS.items()
        },
        "templates": {},
    }
    for name, (source, bos, eos) in sorted(templates.items()):
        (OUT / f"{name}.jinja").write_text(source, encoding="utf-8")
        cases["templates"][name] = {"bos_token": bos, "eos_token": eos}
        expected = {conv: render(source, bos, eos, c) for conv, c in CONVERSATIONS.items()}
        with open(OUT / "expected" / f"{name}.json", "w", encoding="utf-8") as f:
            json.dump(expected, f, ensure_ascii=False, indent=1)
            f.write("\n")
        n_errors = sum("error" in r for r in expected.values())
        print(f"{name}: {len(expected)} cases, {n_errors} errors")
    with open(OUT / "cases.json", "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
