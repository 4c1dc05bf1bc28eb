#!/usr/bin/env bash
# Builds the llama.cpp that slm is compared against: build b11312
# (ggml-org/llama.cpp@0c1e57098bba43ac29e6e3b677cdceebdd22334f), taken from the copy vendored in
# the llama-cpp-python 0.3.36 source distribution on PyPI (PyPI is reachable where GitHub may
# not be). CPU backend only, Release, no network features.
#
# Two configurations, each in its own folder of the cache:
#   avx2    x86-64 AVX2/FMA/F16C/BMI2, no AVX-512, whatever the host has. The golden files
#           (tests/golden, /work/shared/data/golden) were made with this code path; an AVX-512
#           build rounds differently and flips near-tie greedy tokens.
#   native  -march=native, the fastest build for this machine: use it for benchmarks only.
#   native-noamx  -march=native without Intel AMX. Some virtual machines list AMX and let a
#           simple AMX program run, yet this build's AMX matrix multiply dies with a general
#           protection fault there; scripts/bench-vs-llamacpp.sh falls back to this build
#           when the native one crashes on a CPU with AMX.
#
# Usage: scripts/llamacpp.sh [avx2|native|native-noamx|all]    (default: avx2 and native)
# Prints one line per configuration on stdout, `NAME BIN_DIR`; progress goes to stderr.
# A configuration already built is not rebuilt, so a second run returns at once.
# Environment: SLM_LLAMACPP_CACHE (default ~/.cache/slm-llamacpp), SLM_LLAMACPP_JOBS (default 2).
# The build is slow (several minutes per configuration on 2 cores); run it under `nice -n 19`
# on a shared machine.
set -euo pipefail

readonly SDIST_VERSION=0.3.36
readonly SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
readonly BUILD_NUMBER=11312
readonly BUILD_COMMIT=0c1e570
readonly TARGETS=(llama-cli llama-completion llama-simple llama-tokenize llama-perplexity
    llama-bench llama-server)

cache="${SLM_LLAMACPP_CACHE:-$HOME/.cache/slm-llamacpp}"
jobs="${SLM_LLAMACPP_JOBS:-2}"
src="$cache/src/llama_cpp_python-$SDIST_VERSION/vendor/llama.cpp"

log() { echo "llamacpp.sh: $*" >&2; }

config_flags() {
    case "$1" in
    avx2) echo "-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON" \
        "-DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF" ;;
    native | native-noamx) echo "-DGGML_NATIVE=ON" ;;
    *) return 1 ;;
    esac
}
# Compiler flags of a configuration, given to cmake through CFLAGS and CXXFLAGS. GCC and
# Clang let an explicit -mno-* win over -march=native whatever their order.
config_cflags() {
    case "$1" in
    native-noamx) echo "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" ;;
    *) echo "" ;;
    esac
}

# Settings common to both configurations: CPU only, static binaries, no downloads at build
# time (web UI assets, OpenSSL, curl), only the tools we run.
common_flags() {
    echo "-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF" \
        "-DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF" \
        "-DLLAMA_BUILD_APP=OFF -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF" \
        "-DLLAMA_BUILD_NUMBER=$BUILD_NUMBER -DLLAMA_BUILD_COMMIT=$BUILD_COMMIT"
}

is_built() {
    local dir="$1" flags="$2"
    [[ -f "$dir/.complete" ]] || return 1
    [[ "$(cat "$dir/.complete")" == "$flags" ]] || return 1
    local target
    for target in "${TARGETS[@]}"; do
        [[ -x "$dir/bin/$target" ]] || return 1
    done
}

# cmake from PATH, or from a private virtual environment in the cache (PyPI's cmake wheel).
find_cmake() {
    if command -v cmake >/dev/null 2>&1; then
        command -v cmake
        return
    fi
    local venv="$cache/tools"
    if [[ ! -x "$venv/bin/cmake" ]]; then
        log "cmake not found on PATH; installing it from PyPI into $venv"
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet 'cmake>=3.28,<4.5' >&2
    fi
    echo "$venv/bin/cmake"
}

fetch_source() {
    [[ -f "$src/CMakeLists.txt" ]] && return
    local tmp="$cache/src/download"
    local tarball="$tmp/llama_cpp_python-$SDIST_VERSION.tar.gz"
    mkdir -p "$tmp"
    if [[ ! -f "$tarball" ]]; then
        log "downloading the llama-cpp-python $SDIST_VERSION source distribution"
        python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
            "llama-cpp-python==$SDIST_VERSION" -d "$tmp" >&2
    fi
    local sum
    sum="$(sha256sum "$tarball" | cut -d' ' -f1)"
    if [[ "$sum" != "$SDIST_SHA256" ]]; then
        log "$tarball has sha256 $sum, expected $SDIST_SHA256; delete it and run again"
        exit 1
    fi
    tar -xzf "$tarball" -C "$cache/src"
    [[ -f "$src/CMakeLists.txt" ]] || { log "no llama.cpp source in $tarball"; exit 1; }
}

build() {
    local name="$1" flags cflags dir cmake
    cflags="$(config_cflags "$name")"
    flags="$(config_flags "$name") $(common_flags)${cflags:+ CFLAGS=$cflags}"
    dir="$cache/b$BUILD_NUMBER-$name"
    if ! is_built "$dir" "$flags"; then
        fetch_source
        cmake="$(find_cmake)"
        log "building $name in $dir (several minutes)"
        rm -f "$dir/.complete"
        # shellcheck disable=SC2086 # flags are words on purpose
        CFLAGS="$cflags" CXXFLAGS="$cflags" "$cmake" -S "$src" -B "$dir" \
            $(config_flags "$name") $(common_flags) >"$dir.configure.log" 2>&1 ||
            { log "configure failed, see $dir.configure.log"; exit 1; }
        "$cmake" --build "$dir" --config Release -j "$jobs" --target "${TARGETS[@]}" \
            >"$dir.build.log" 2>&1 || { log "build failed, see $dir.build.log"; exit 1; }
        echo "$flags" >"$dir/.complete"
    fi
    echo "$name $dir/bin"
}

main() {
    local which="${1:-all}" names
    case "$which" in
    all) names=(avx2 native) ;;
    avx2 | native | native-noamx) names=("$which") ;;
    *) log "unknown configuration '$which'; use avx2, native, native-noamx or all"; exit 2 ;;
    esac
    mkdir -p "$cache/src"
    local name
    for name in "${names[@]}"; do
        build "$name"
    done
}

main "$@"
