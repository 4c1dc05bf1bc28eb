#!/usr/bin/env bash
# The end-to-end suite of `slm serve`: the release binary on loopback ports, driven by the
# official `openai` and `ollama` Python packages, httpx (load test) and, when Chromium is
# installed, Playwright (web page). The virtual environment lives in target/pyenv and is
# reused while crates/server/tests/python/requirements.txt is unchanged. Needs the models
# smollm2:135m and qwen2.5-coder:0.5b in the store (scripts/test.sh pulls them).
# Extra arguments go to pytest (e.g. -k greedy).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
requirements=crates/server/tests/python/requirements.txt
venv="$target/pyenv"
stamp="$venv/.requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
if [[ -z "${SLM_BIN:-}" ]]; then
    cargo build --release -p cli
    export SLM_BIN="$target/release/slm"
fi
# The web page test needs Chromium. On CI (root, Debian) it is installed when absent; elsewhere
# the test is skipped with a message saying how to get it.
if [[ "${CI:-}" == true ]] && ! command -v chromium >/dev/null && command -v apt-get >/dev/null \
    && [[ "$(id -u)" == 0 ]]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "could not install chromium; the web page test will be skipped" >&2
fi
SLM_BIN="$(realpath "$SLM_BIN")"
export SLM_BIN
python="$(realpath "$venv")/bin/python"
cd crates/server/tests/python
export PYTHONDONTWRITEBYTECODE=1
exec "$python" -m pytest -q -p no:cacheprovider "$@"
