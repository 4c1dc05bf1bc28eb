#!/usr/bin/env bash
# Agent conversation benchmark: time to first token of each turn of a 6-turn conversation
# whose system prompt (instructions and tool definitions written out as text) is about
# 1,000 tokens, each turn appending the assistant's reply and a new user message (tool
# results or a follow-up). Streaming chat completions, greedy, one conversation at a time,
# against: slm serve (prefix cache on), slm serve --no-prefix-cache, and llama.cpp's
# llama-server with one slot and its default prompt cache. Then two clients send the same
# system prompt at once to a fresh slm serve, and /metrics shows the prompt was evaluated
# once. Prints markdown on stdout (progress on stderr). Not a test: run it by hand.
#
#   bash scripts/bench-agent.sh [MODEL]          (default qwen2.5-coder:0.5b)
#
# Environment: BENCH_MAX_TOKENS (reply length, 48), BENCH_THREADS (compute threads, default
# all cores), LLAMA_SERVER (default ~/.cache/slm-llamacpp/b11312-native/bin/llama-server;
# scripts/llamacpp.sh builds it). Needs target/pyenv (scripts/test-serve.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-qwen2.5-coder:0.5b}"
max_tokens="${BENCH_MAX_TOKENS:-48}"
threads="${BENCH_THREADS:-$(nproc)}"
llama_server="${LLAMA_SERVER:-$HOME/.cache/slm-llamacpp/b11312-native/bin/llama-server}"
target="${CARGO_TARGET_DIR:-target}"
python="$target/pyenv/bin/python"
[[ -x "$python" ]] || { echo "no $python: run scripts/test-serve.sh once to make it" >&2; exit 1; }
[[ -x "$llama_server" ]] || { echo "no $llama_server: run scripts/llamacpp.sh" >&2; exit 1; }
cargo build --release -p cli >&2
slm="$target/release/slm"
path="$("$slm" pull "$model")"
port=18391
pid=""
logs="$target/bench-agent"
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

# The client: `conversation URL MODEL` prints one "prompt_tokens ttft_seconds" line per
# turn; `concurrent URL MODEL` sends two requests with one system prompt at once and
# prints the server's prefix cache figures.
client() { # MODE BASE_URL
    "$python" - "$1" "$2" "$model" "$max_tokens" <<'EOF'
import json, sys, threading, time
import httpx

mode, base, model, max_tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

TOOLS = [
    ("read_file", "Read a text file of the repository and return its contents with line numbers.",
     {"path": "string, the file's path relative to the repository root",
      "start_line": "integer, optional, the first line to return (1-based)",
      "end_line": "integer, optional, the last line to return"}),
    ("write_file", "Replace the whole contents of a file, creating it and its folders when missing.",
     {"path": "string, the file's path relative to the repository root",
      "content": "string, the new contents of the file"}),
    ("edit_file", "Replace one exact occurrence of a string in a file with another string; fails when the old string is missing or occurs more than once.",
     {"path": "string, the file's path", "old": "string, the text to replace",
      "new": "string, the replacement text"}),
    ("run_command", "Run a shell command in the repository root with a time limit and return its exit status, standard output and standard error (the last 4,000 characters of each).",
     {"command": "string, the command line", "timeout_s": "integer, optional, default 120"}),
    ("search_code", "Search the repository for a regular expression and return matching lines with their file and line number, at most 50.",
     {"pattern": "string, a regular expression", "glob": "string, optional, a file pattern such as src/**/*.rs"}),
    ("list_files", "List the files under a folder, recursively, ignoring build outputs and version control folders.",
     {"folder": "string, the folder's path, default the repository root", "depth": "integer, optional"}),
    ("run_tests", "Run the project's tests, optionally only those whose names contain a filter, and return a summary with the failures' output.",
     {"filter": "string, optional, a test name filter", "package": "string, optional, a package name"}),
    ("git_diff", "Show the uncommitted changes of the working tree as a unified diff.",
     {"paths": "array of strings, optional, limit the diff to these paths"}),
    ("web_search", "Search the web and return the titles, addresses and snippets of the first results.",
     {"query": "string, what to search for", "max_results": "integer, optional, default 5"}),
    ("ask_user", "Ask the user a question when the task is ambiguous and wait for the answer.",
     {"question": "string, the question"}),
]

def system_prompt():
    lines = [
        "You are a coding agent working in a software repository on the user's machine.",
        "You solve the user's task by calling tools, reading their results, and calling more",
        "tools until the task is done; then you answer with a short summary of what changed.",
        "Rules: read a file before you edit it; make the smallest change that solves the task;",
        "run the tests after every change; never invent file contents or command output;",
        "when a command fails, read its error and fix the cause instead of retrying blindly;",
        "keep answers short and plain; do not apologize; cite files as path:line.",
        "To call a tool, answer with one line of JSON: {\"tool\": NAME, \"arguments\": {...}}",
        "and nothing else. The tool's result comes back in the next message.",
        "",
        "Available tools:",
    ]
    for name, description, params in TOOLS:
        lines.append(f"- {name}: {description}")
        lines.append("  parameters:")
        for pname, pdesc in params.items():
            lines.append(f"    {pname}: {pdesc}")
    lines += [
        "",
        "Examples of calls:",
        '{"tool": "read_file", "arguments": {"path": "src/main.rs"}}',
        '{"tool": "run_command", "arguments": {"command": "cargo build"}}',
        '{"tool": "search_code", "arguments": {"pattern": "fn parse_", "glob": "src/**/*.rs"}}',
        '{"tool": "edit_file", "arguments": {"path": "src/lib.rs", "old": "a + b", "new": "a.saturating_add(b)"}}',
        "",
        "The repository is a Rust workspace with crates under crates/, tests in each crate's",
        "tests/ folder, scripts under scripts/ and documentation under docs/. Its style guide",
        "forbids panics on user input, asks for typed errors whose messages say what to do,",
        "and wants every public item documented. Builds take a few minutes; run focused tests.",
    ]
    return "\n".join(lines)

USER_TURNS = [
    "The test `parse_size_rejects_garbage` fails. Find out why and fix it.",
    "Tool result (search_code): crates/cli/src/args.rs:263: pub fn parse_size(text: &str) -> Result<usize, String> {\ncrates/cli/src/args.rs:301: fn parse_size_rejects_garbage() {",
    "Tool result (read_file): 263 pub fn parse_size(text: &str) -> Result<usize, String> {\n264     let text = text.trim();\n265     let number: f64 = text.parse().unwrap();\n266     Ok(number as usize)\n267 }",
    "Tool result (edit_file): replaced 1 occurrence in crates/cli/src/args.rs",
    "Tool result (run_tests): test result: FAILED. 41 passed; 1 failed. parse_size_accepts_units: called `Result::unwrap()` on an `Err` value for input \"4MiB\"",
    "Tool result (run_tests): test result: ok. 42 passed; 0 failed. Now summarize what you changed.",
]

def turn(http, messages):
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    first, text, prompt_tokens = None, "", None
    with http.stream("POST", base + "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                prompt_tokens = chunk["usage"].get("prompt_tokens")
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    if first is None:
                        first = time.perf_counter() - start
                    text += piece
    return prompt_tokens, first if first is not None else time.perf_counter() - start, text

def metrics():
    out = {}
    for line in httpx.get(base + "/metrics", timeout=30).text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key.split("{")[0]] = float(value)
    return out

# A fresh connection per request: a server closing idle keep-alive connections would
# otherwise fail the next request on a reused one.
limits = httpx.Limits(max_keepalive_connections=0)
with httpx.Client(timeout=600, limits=limits) as http:
    # Warm-up on an unrelated prompt: the first request pays one-time costs.
    turn(http, [{"role": "user", "content": "Say hello."}])
    if mode == "conversation":
        messages = [{"role": "system", "content": system_prompt()}]
        for user in USER_TURNS:
            messages.append({"role": "user", "content": user})
            prompt_tokens, ttft, reply = turn(http, messages)
            messages.append({"role": "assistant", "content": reply})
            print(prompt_tokens, f"{ttft:.3f}", flush=True)
    else:
        before = metrics()
        peak = [0.0]
        done = threading.Event()
        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], metrics().get("slm_kv_blocks_used", 0))
                time.sleep(0.02)
        watcher = threading.Thread(target=watch)
        watcher.start()
        results = [None, None]
        def ask(i):
            with httpx.Client(timeout=600, limits=limits) as own:
                results[i] = turn(own, [{"role": "system", "content": system_prompt()},
                                        {"role": "user", "content": USER_TURNS[i]}])
        clients = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
        for c in clients: c.start()
        for c in clients: c.join()
        done.set(); watcher.join()
        after = metrics()
        d = lambda k: int(after.get(k, 0) - before.get(k, 0))
        prompts = [r[0] for r in results]
        print(f"prompt tokens of the two requests: {prompts[0]} and {prompts[1]}")
        print(f"prompt tokens evaluated: {d('slm_prompt_tokens_total')}")
        print(f"prompt tokens served from the prefix cache: {d('slm_prompt_tokens_cached_total')}")
        print(f"prefix cache lookups / hits: {d('slm_prefix_cache_lookups_total')} / {d('slm_prefix_cache_hits_total')}")
        print(f"peak KV blocks held (32 positions each, "
              f"{int(after['slm_kv_blocks_total'])} in the cache): {int(peak[0])}")
EOF
}

run_conversation() { # NAME READY_PATH then the server command
    local name="$1" ready="$2"; shift 2
    echo "$name" >&2
    "$@" >"$logs/$name.log" 2>&1 &
    pid=$!
    wait_ready "http://127.0.0.1:$port$ready"
    client conversation "http://127.0.0.1:$port" >"$logs/$name.turns"
    cleanup
}

slm_serve=("$slm" serve "$model" --port "$port" --parallel 2 --ctx 4096 --threads "$threads")
run_conversation slm-cache /ready "${slm_serve[@]}"
run_conversation slm-no-cache /ready "${slm_serve[@]}" --no-prefix-cache
run_conversation llama-server /health "$llama_server" -m "$path" --port "$port" --host 127.0.0.1 \
    -np 1 -c 4096 -t "$threads"

echo "| turn | prompt tokens | slm, prefix cache | slm, --no-prefix-cache | llama-server (1 slot, prompt cache) |"
echo "|---:|---:|---:|---:|---:|"
paste -d' ' "$logs/slm-cache.turns" "$logs/slm-no-cache.turns" "$logs/llama-server.turns" |
    awk '{ printf "| %d | %s | %.3f s | %.3f s | %.3f s |\n", NR, $1, $2, $4, $6 }'
read -r _ cache < <(tail -n1 "$logs/slm-cache.turns")
read -r _ plain < <(tail -n1 "$logs/slm-no-cache.turns")
read -r _ llama < <(tail -n1 "$logs/llama-server.turns")
echo
echo "Turn 6 time to first token: $(awk -v a="$plain" -v b="$cache" 'BEGIN { printf "%.1f", a / b }')x lower with the prefix cache than without;"\
    "llama-server / slm with the cache: $(awk -v a="$llama" -v b="$cache" 'BEGIN { printf "%.2f", a / b }')."
echo "$model, replies of at most $max_tokens tokens, greedy, $threads threads, $(nproc) cores."
echo
echo "Two clients at once with the same system prompt (a fresh slm serve, prefix cache on):"
echo
echo '```'
"${slm_serve[@]}" >"$logs/slm-concurrent.log" 2>&1 &
pid=$!
wait_ready "http://127.0.0.1:$port/ready"
client concurrent "http://127.0.0.1:$port"
cleanup
echo '```'
