#!/usr/bin/env bash
# Compares slm with llama.cpp b11312 (llama-bench, native build) on this machine and prints
# a markdown report: for each model and thread count, prompt processing (pp512), generation
# (tg128) and generation at depth 1024 (tg128 @ d1024), the median tokens/s of each engine,
# their ratio and slm's share of the memory-bandwidth bound; then first-token latency of
# `slm run` and peak memory of `slm bench`. See docs/PERFORMANCE.md.
#
# The engines take turns: each round runs one repetition of each engine (`slm bench -r 1`,
# `llama-bench -r 1`, same model file, tokens and threads), so a change in the machine's
# load hits both alike; the report takes the median over the rounds. llama-bench runs
# with flash attention off and on (`-fa 0,1`) and each round keeps the faster of the two.
#
# Usage: scripts/bench-vs-llamacpp.sh [--models a,b] [--threads 1,2] [--rounds R] [--quick]
#                                     [--out FILE] [--update-doc FILE] [--runs FILE]
#   --models       catalog names (or a unique prefix such as `smollm2`) or .gguf paths;
#                  default: the four catalog models, pulled if absent
#   --threads      thread counts, default 1,2
#   --rounds       rounds per measure, default 5
#   --quick        a smoke check: 2 rounds, pp128, tg32, tg32 @ d256
#   --out FILE     also write the report to FILE
#   --update-doc FILE  replace the report between the bench-vs-llamacpp markers in FILE
#                  (docs/PERFORMANCE.md)
#   --runs FILE    also keep every run's raw JSON (one line per engine run) in FILE
#   --llama-build NAME  the llama.cpp build of scripts/llamacpp.sh to compare against:
#                  native (default), native-noamx or avx2; with `SLM_ISA=avx2` in the
#                  environment, `--llama-build avx2` compares both engines' AVX2 code,
#                  what a CPU without AVX-512 (AMD Zen 3) runs, on a machine that has it
# The report goes to stdout, progress to stderr. Needs python3 (standard library only).
# It is a benchmark, not a test: run it on a quiet machine; with the defaults it takes
# about 70 minutes on 2 cores (llama-bench runs twice per round), longer on a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly CATALOG=(smollm2:135m gemma3:270m qwen2.5-coder:0.5b qwen2.5-coder:1.5b)
readonly FIRST_TOKEN_MODEL=qwen2.5-coder:0.5b
# 16 tokens for Qwen2.5's tokenizer (which adds no BOS).
readonly FIRST_TOKEN_PROMPT="Write a Python function that returns the sum of the squares of a list of numbers"
readonly FIRST_TOKEN_RUNS=5
# Prints the JSON line of stdin with the highest avg_ts (llama-bench -o jsonl).
readonly FASTEST_LINE='import json, sys
lines = [l for l in sys.stdin if l.strip()]
print(max(lines, key=lambda l: json.loads(l)["avg_ts"]).strip())'

models_arg=""
threads_arg="1,2"
rounds=5
quick=0
out=""
update_doc=""
runs_out=""
llama_build=native
while [[ $# -gt 0 ]]; do
    case "$1" in
    --models) models_arg="$2"; shift 2 ;;
    --threads) threads_arg="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    --out) out="$2"; shift 2 ;;
    --update-doc) update_doc="$2"; shift 2 ;;
    --runs) runs_out="$2"; shift 2 ;;
    --llama-build) llama_build="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-vs-llamacpp.sh: unknown argument '$1'; see --help" >&2; exit 2 ;;
    esac
done
n_prompt=512 n_gen=128 depth=1024
if [[ $quick == 1 ]]; then
    rounds=2 n_prompt=128 n_gen=32 depth=256
fi

log() { echo "bench-vs-llamacpp.sh: $*" >&2; }

# A catalog name, a unique prefix of one, or a path.
resolve_name() {
    local arg="$1" name found=()
    if [[ "$arg" == *.gguf || "$arg" == */* ]]; then
        echo "$arg"
        return
    fi
    for name in "${CATALOG[@]}"; do
        [[ "$name" == "$arg" ]] && { echo "$name"; return; }
        [[ "$name" == "$arg"* ]] && found+=("$name")
    done
    if [[ ${#found[@]} -ne 1 ]]; then
        log "'$arg' names no single catalog model (${CATALOG[*]})"
        exit 2
    fi
    echo "${found[0]}"
}

case "$llama_build" in
native | native-noamx | avx2) ;;
*) log "unknown llama.cpp build '$llama_build'; use native, native-noamx or avx2"; exit 2 ;;
esac
llama_bin="$(bash scripts/llamacpp.sh "$llama_build" | awk '{print $2}')"
llama_bench="$llama_bin/llama-bench"
# The commit the binary is built from, taken before the long run.
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo '+dirty')"
log "building slm (release)"
cargo build --release -p cli >&2
slm="${CARGO_TARGET_DIR:-target}/release/slm"

if [[ -n "$models_arg" ]]; then
    IFS=, read -r -a model_args <<<"$models_arg"
else
    model_args=("${CATALOG[@]}")
fi
IFS=, read -r -a thread_counts <<<"$threads_arg"

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
runs="$work/runs.jsonl"
: >"$runs"

# record ENGINE MODEL THREADS MEASURE JSON: one line of runs.jsonl.
record() {
    printf '{"engine":"%s","model":"%s","threads":%s,"measure":"%s","result":%s}\n' \
        "$1" "$2" "$3" "$4" "$5" >>"$runs"
}

for t in "${thread_counts[@]}"; do
    log "measuring read bandwidth with $t threads"
    record bandwidth - "$t" bandwidth "$("$slm" bench --bandwidth -t "$t" --json)"
done

# measure NAME PATH THREADS LABEL P N D: R rounds of one measure, engines alternating.
measure() {
    local name="$1" path="$2" t="$3" label="$4" p="$5" n="$6" d="$7" round result
    for ((round = 1; round <= rounds; round++)); do
        log "$name t=$t $label: round $round/$rounds"
        if ! result="$("$slm" bench "$path" -p "$p" -n "$n" -d "$d" -r 1 -t "$t" --json \
            --no-bandwidth 2>"$work/slm.log")"; then
            log "slm bench failed:"; tail -n 20 "$work/slm.log" >&2; exit 1
        fi
        record slm "$name" "$t" "$label" "$result"
        # llama-bench prints one JSON line per test; -p 0 or -n 0 leaves one test per
        # attention mode. Both of its modes run (flash attention off and on: which is
        # faster depends on the machine and the depth) and the faster one counts.
        if ! result="$("$llama_bench" -m "$path" -p "$p" -n "$n" -d "$d" -r 1 -t "$t" \
            -fa 0,1 -o jsonl 2>"$work/llama.log" | python3 -c "$FASTEST_LINE")"; then
            log "llama-bench failed:"; tail -n 20 "$work/llama.log" >&2; exit 1
        fi
        record llama.cpp "$name" "$t" "$label" "$result"
    done
}

# check_llama_bench PATH: a short llama-bench run on the first model. On some virtual
# machines that list Intel AMX, the native build's AMX matrix multiply dies with a general
# protection fault; there the comparison uses the native build without AMX, the fastest
# llama.cpp that runs on the machine, and the report says so.
check_llama_bench() {
    "$llama_bench" -m "$1" -p 16 -n 0 -r 1 -t 1 -o jsonl >/dev/null 2>"$work/llama.log" && return
    if [[ $llama_build == native ]] && grep -qw amx_int8 /proc/cpuinfo; then
        log "llama-bench (native build) failed on this CPU with AMX; using the build without AMX"
        llama_build=native-noamx
        llama_bin="$(nice -n 19 bash scripts/llamacpp.sh "$llama_build" | awk '{print $2}')"
        llama_bench="$llama_bin/llama-bench"
        "$llama_bench" -m "$1" -p 16 -n 0 -r 1 -t 1 -o jsonl >/dev/null 2>"$work/llama.log" &&
            return
    fi
    log "llama-bench ($llama_build build) fails on $1:"; tail -n 20 "$work/llama.log" >&2
    exit 1
}

checked_llama_bench=0
for arg in "${model_args[@]}"; do
    name="$(resolve_name "$arg")"
    path="$("$slm" pull "$name" 2>/dev/null || true)"
    [[ "$name" == *.gguf || "$name" == */* ]] && path="$name"
    [[ -f "$path" ]] || { log "cannot find or pull model $name"; exit 1; }
    if [[ $checked_llama_bench == 0 ]]; then
        check_llama_bench "$path"
        checked_llama_bench=1
    fi
    for t in "${thread_counts[@]}"; do
        measure "$name" "$path" "$t" "pp$n_prompt" "$n_prompt" 0 0
        measure "$name" "$path" "$t" "tg$n_gen" 0 "$n_gen" 0
        measure "$name" "$path" "$t" "tg$n_gen @ d$depth" 0 "$n_gen" "$depth"
    done
done

# First token: wall clock from process start to exit, after one warm-up run that leaves
# the model file in the page cache. llama-completion gets slm's default context (4096)
# instead of its own (the training context, 32768 for Qwen2.5), whose KV cache alone
# would dominate its time.
first_token_threads="${thread_counts[${#thread_counts[@]}-1]}"
first_token_path="$("$slm" pull "$FIRST_TOKEN_MODEL" 2>/dev/null)"
log "first token of $FIRST_TOKEN_MODEL (threads: $first_token_threads)"
python3 - "$runs" "$FIRST_TOKEN_RUNS" "$FIRST_TOKEN_MODEL" "$first_token_threads" \
    "$slm" run --raw --temp 0 -n 1 -t "$first_token_threads" "$FIRST_TOKEN_MODEL" \
    "$FIRST_TOKEN_PROMPT" -- \
    "$llama_bin/llama-completion" -m "$first_token_path" -p "$FIRST_TOKEN_PROMPT" -n 1 \
    --temp 0 -t "$first_token_threads" -c 4096 -no-cnv --no-warmup <<'PY'
import json, statistics, subprocess, sys, time
runs, n, model, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
split = sys.argv.index("--")
commands = {"slm": sys.argv[5:split], "llama.cpp": sys.argv[split + 1:]}
with open(runs, "a") as f:
    for engine, command in commands.items():
        times = []
        for i in range(n + 1):
            start = time.perf_counter()
            subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            if i > 0:
                times.append((time.perf_counter() - start) * 1e3)
        result = {"median_ms": statistics.median(times), "samples_ms": times}
        f.write(json.dumps({"engine": engine, "model": model, "threads": threads,
                            "measure": "first_token", "result": result}) + "\n")
PY

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
avx512="$(grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//')"
report="$work/report.md"
python3 - "$runs" "$cpu" "${avx512:-none}" "$commit" "$(nproc)" "$rounds" \
    "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)" "$llama_build" "${SLM_ISA:-}" >"$report" <<'PY'
import datetime, json, statistics, sys
runs_path, cpu, avx512, commit, n_cores, rounds, load_start, load_end, build, isa_cap = sys.argv[1:11]
build_words = {
    "native": "native build",
    "native-noamx": "native build without AMX: the native build's AMX path crashed on this machine",
    "avx2": "AVX2 build, no AVX-512",
}
runs = [json.loads(line) for line in open(runs_path)]

def median(values):
    return statistics.median(values) if values else None

def tok_s(run):
    r = run["result"]
    if run["engine"] == "slm":
        part = r["pp"] if run["measure"].startswith("pp") else r["tg"]
        return part["median"]
    return r["avg_ts"]

bandwidth = {r["threads"]: r["result"]["best_gbs"] for r in runs if r["engine"] == "bandwidth"}
fa_modes = {}
for r in runs:
    if r["engine"] == "llama.cpp" and "flash_attn" in r["result"]:
        mode = "on" if r["result"]["flash_attn"] else "off"
        fa_modes[mode] = fa_modes.get(mode, 0) + 1
lines = [
    f"- date: {datetime.date.today().isoformat()}, slm commit `{commit}`, llama.cpp b11312 ({build_words.get(build, build)})",
    f"- CPU: {cpu}, {n_cores} cores; AVX-512: {avx512}"
    + (f"; slm kernels capped at {isa_cap} (`SLM_ISA`)" if isa_cap else ""),
    "- read bandwidth (`slm bench --bandwidth`, best of 5): "
    + ", ".join(f"{bandwidth[t]:.1f} GB/s with {t} thread{'s' if t > 1 else ''}" for t in sorted(bandwidth)),
    f"- median of {rounds} alternating rounds per cell; load average (1, 5, 15 min) "
    f"at the start: {load_start}, at the end: {load_end}",
    "- llama.cpp: each round the faster of flash attention off and on (`llama-bench -fa 0,1`); "
    + "the faster was: "
    + ", ".join(f"{k} {v} times" for k, v in sorted(fa_modes.items())),
    "- spread: the fastest round over the slowest, slm / llama.cpp; above 1.3 the machine's "
    "load changed during the cell (marked !), and its ratio says little",
    "",
    "| model | threads | test | slm t/s | llama.cpp t/s | slm / llama.cpp | slm share of bound | spread |",
    "|---|---:|---|---:|---:|---:|---:|---|",
]

def spread(values):
    return max(values) / min(values) if values and min(values) > 0 else float("inf")

keys = []
for r in runs:
    key = (r["model"], r["threads"], r["measure"])
    if r["engine"] in ("slm", "llama.cpp") and r["measure"] != "first_token" and key not in keys:
        keys.append(key)
in_cache = False
for model, threads, measure in keys:
    cell = [r for r in runs if (r["model"], r["threads"], r["measure"]) == (model, threads, measure)]
    ours_all = [tok_s(r) for r in cell if r["engine"] == "slm"]
    theirs_all = [tok_s(r) for r in cell if r["engine"] == "llama.cpp"]
    ours, theirs = median(ours_all), median(theirs_all)
    spreads = (spread(ours_all), spread(theirs_all))
    noisy = " !" if max(spreads) > 1.3 else ""
    share = ""
    if measure.startswith("tg") and threads in bandwidth:
        bytes_per_token = median([r["result"]["bytes_per_token"] for r in cell if r["engine"] == "slm"])
        bound = bandwidth[threads] * 1e9 / bytes_per_token
        share = f"{ours / bound:.0%} of {bound:.0f}"
        if any(r["result"].get("fits_in_last_level_cache") for r in cell if r["engine"] == "slm"):
            share += " (in cache)"
            in_cache = True
    lines.append(f"| {model} | {threads} | {measure} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} | "
                 f"{share} | {spreads[0]:.2f} / {spreads[1]:.2f}{noisy} |")
if in_cache:
    llc = max(r["result"].get("last_level_cache_mib") or 0 for r in runs if r["engine"] == "slm")
    lines += ["", f"(in cache): the bytes a token reads fit in the CPU's {llc:.0f} MiB last-level "
              "cache, so many come from the cache and the bound, from memory bandwidth, undercounts."]

first = {r["engine"]: r for r in runs if r["measure"] == "first_token"}
if first:
    ft = first["slm"]
    lines += [
        "",
        f"First token ({ft['model']}, 16-token raw prompt, 1 greedy token, {ft['threads']} thread{'s' if ft['threads'] > 1 else ''}; "
        f"process start to exit, median of {len(ft['result']['samples_ms'])} after a warm-up): "
        f"slm {ft['result']['median_ms']:.0f} ms (`slm run`), "
        f"llama.cpp {first['llama.cpp']['result']['median_ms']:.0f} ms (`llama-completion -c 4096 --no-warmup`, the context slm uses).",
    ]

lines += [
    "",
    "Peak RSS of `slm bench` (the largest over its runs) against model file + KV cache + repacked weights + 64 MiB:",
    "",
    "| model | peak RSS MiB | file MiB | KV cache MiB | repacked MiB | budget MiB | within |",
    "|---|---:|---:|---:|---:|---:|---|",
]
bench_runs = [r for r in runs if r["engine"] == "slm" and r["measure"] != "first_token"]
models = []
for r in bench_runs:
    if r["model"] not in models:
        models.append(r["model"])
for model in models:
    worst = max((r["result"] for r in bench_runs if r["model"] == model),
                key=lambda res: res["peak_rss_mib"] or 0)
    budget = worst["model_file_mib"] + worst["kv_cache_mib"] + worst["repacked_mib"] + 64
    peak = worst["peak_rss_mib"]
    lines.append(f"| {model} | {peak:.0f} | {worst['model_file_mib']:.0f} | {worst['kv_cache_mib']:.0f} | "
                 f"{worst['repacked_mib']:.0f} | {budget:.0f} | {'yes' if peak <= budget else 'no'} |")
print("\n".join(lines))
PY

cat "$report"
[[ -n "$out" ]] && cp "$report" "$out"
[[ -n "$runs_out" ]] && cp "$runs" "$runs_out"
if [[ -n "$update_doc" ]]; then
    python3 - "$update_doc" "$report" <<'PY'
import sys
doc_path, report_path = sys.argv[1:3]
begin, end = "<!-- bench-vs-llamacpp:begin -->", "<!-- bench-vs-llamacpp:end -->"
doc = open(doc_path).read()
if begin not in doc or end not in doc:
    sys.exit(f"bench-vs-llamacpp.sh: {doc_path} has no {begin} ... {end} markers")
head, rest = doc.split(begin, 1)
_, tail = rest.split(end, 1)
report = open(report_path).read().rstrip("\n")
open(doc_path, "w").write(f"{head}{begin}\n{report}\n{end}{tail}")
PY
    log "updated $update_doc"
fi
