#!/usr/bin/env bash
# Runs every test, including those that load real models. The four catalog models are
# pulled into the model store ($SLM_HOME, default ~/.cache/slm) by the freshly built binary
# on the first run and found there afterwards. Optimized build: inference unoptimized is
# far too slow.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p cli
slm="${CARGO_TARGET_DIR:-target}/release/slm"
for model in smollm2:135m gemma3:270m qwen2.5-coder:0.5b qwen2.5-coder:1.5b; do
    "$slm" pull "$model" >/dev/null
done
SLM_TEST_MODELS=1 cargo test --release --workspace
# slm serve end to end: the official openai and ollama clients, load, the web page.
SLM_BIN="$slm" bash scripts/test-serve.sh
