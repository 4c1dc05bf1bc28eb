#!/usr/bin/env bash
# Serving benchmark: aggregate generated tokens/s and time to first token (p50, p90) with 1,
# 4, 8 and 16 concurrent streaming chat requests, slm serve against llama.cpp's llama-server
# with the same number of parallel slots, same model file, same prompts, greedy, on loopback.
# Prints a markdown table on stdout (progress on stderr). Not a test: run it by hand on a
# quiet machine.
#
#   bash scripts/bench-serve.sh [MODEL]          (default qwen2.5-coder:0.5b)
#
# Environment: BENCH_CONCURRENCY ("1 4 8 16"), BENCH_REQUESTS (requests per stream, 2),
# BENCH_MAX_TOKENS (64), BENCH_THREADS (compute threads, default all cores),
# LLAMA_SERVER (default ~/.cache/slm-llamacpp/b11312-native/bin/llama-server; scripts/llamacpp.sh
# builds it). Needs target/pyenv (scripts/test-serve.sh makes it) for the httpx client.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-qwen2.5-coder:0.5b}"
concurrency="${BENCH_CONCURRENCY:-1 4 8 16}"
requests="${BENCH_REQUESTS:-2}"
max_tokens="${BENCH_MAX_TOKENS:-64}"
threads="${BENCH_THREADS:-$(nproc)}"
llama_server="${LLAMA_SERVER:-$HOME/.cache/slm-llamacpp/b11312-native/bin/llama-server}"
target="${CARGO_TARGET_DIR:-target}"
python="$target/pyenv/bin/python"
[[ -x "$python" ]] || { echo "no $python: run scripts/test-serve.sh once to make it" >&2; exit 1; }
[[ -x "$llama_server" ]] || { echo "no $llama_server: run scripts/llamacpp.sh" >&2; exit 1; }
cargo build --release -p cli >&2
slm="$target/release/slm"
path="$("$slm" pull "$model")"
port=18390
pid=""
logs="$target/bench-serve"
mkdir -p "$logs"
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; }
trap cleanup EXIT

wait_ready() { # URL
    for _ in $(seq 1 600); do
        curl -sf "$1" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "server at $1 did not become ready" >&2
    return 1
}

# One load run against a server: prints "tok_per_s ttft_p50 ttft_p90".
measure() { # BASE_URL STREAMS
    "$python" - "$1" "$2" "$requests" "$max_tokens" <<'EOF'
import asyncio, json, statistics, sys, time
import httpx

base, streams, requests, max_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
topics = ["the sea", "mountains", "a lighthouse", "trains", "bees", "the moon", "rivers", "deserts"]

async def one(http, i, ttfts):
    body = {
        # Each request's text differs, so no server answers from a cached prompt.
        "messages": [{"role": "user", "content": f"Request {i}: write a long essay about {topics[i % len(topics)]}."}],
        "max_tokens": max_tokens, "temperature": 0, "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first, tokens = None, 0
    async with http.stream("POST", base + "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content") and first is None:
                    first = time.perf_counter() - start
    ttfts.append(first if first is not None else time.perf_counter() - start)
    return tokens

async def main():
    ttfts = []
    # A fresh connection per request: a server closing idle keep-alive connections would
    # otherwise fail the next request on a reused one.
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        await one(http, 10_000, [])  # warm-up
        async def stream(s):
            return sum([await one(http, s * requests + r, ttfts) for r in range(requests)])
        start = time.perf_counter()
        tokens = sum(await asyncio.gather(*(stream(s) for s in range(streams))))
        elapsed = time.perf_counter() - start
    q = statistics.quantiles(ttfts, n=10, method="inclusive") if len(ttfts) > 1 else ttfts * 9
    print(f"{tokens / elapsed:.1f} {statistics.median(ttfts):.3f} {q[8]:.3f}")

asyncio.run(main())
EOF
}

declare -A slm_result llama_result
for n in $concurrency; do
    echo "slm serve, $n slots" >&2
    "$slm" serve "$model" --port "$port" --parallel "$n" --ctx 2048 --threads "$threads" \
        >"$logs/slm-$n.log" 2>&1 &
    pid=$!
    wait_ready "http://127.0.0.1:$port/ready"
    slm_result[$n]="$(measure "http://127.0.0.1:$port" "$n")"
    cleanup
    echo "llama-server, $n slots" >&2
    "$llama_server" -m "$path" --port "$port" --host 127.0.0.1 -np "$n" -c $((2048 * n)) \
        -t "$threads" >"$logs/llama-$n.log" 2>&1 &
    pid=$!
    wait_ready "http://127.0.0.1:$port/health"
    llama_result[$n]="$(measure "http://127.0.0.1:$port" "$n")"
    cleanup
done

echo "| streams | slm tok/s | slm TTFT p50 | slm TTFT p90 | llama-server tok/s | llama-server TTFT p50 | llama-server TTFT p90 |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for n in $concurrency; do
    read -r s_tps s_p50 s_p90 <<<"${slm_result[$n]}"
    read -r l_tps l_p50 l_p90 <<<"${llama_result[$n]}"
    echo "| $n | $s_tps | ${s_p50} s | ${s_p90} s | $l_tps | ${l_p50} s | ${l_p90} s |"
done
echo
echo "$model, $requests requests of $max_tokens tokens per stream, greedy, $threads threads, $(nproc) cores."
