#!/usr/bin/env bash
# Runs every test, including those that load real models (fetched into the model store
# on first use and cached there). Optimized build: inference unoptimized is far too slow.
set -euo pipefail
cd "$(dirname "$0")/.."
export SLM_TEST_MODELS=1
cargo test --release --workspace
