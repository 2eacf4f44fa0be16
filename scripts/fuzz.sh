#!/usr/bin/env bash
# Run one cargo-fuzz target for a time budget.
#
#   scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags...]
#
# TARGET is one of fuzz/fuzz_targets/*.rs (lexer, dockerignore, parser). The corpus
# grows in fuzz/corpus/TARGET (git-ignored); fuzz/seeds/TARGET is read as extra input.
# fuzz/dicts/TARGET.dict, if present, seeds libFuzzer's mutation dictionary.
# Crashes land in fuzz/artifacts/TARGET. Only a stable toolchain is needed:
# RUSTC_BOOTSTRAP lets it accept the nightly flags cargo-fuzz passes. Set
# KILN_FUZZ_SANITIZER=none if the address sanitizer runtime is unavailable.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer flags...]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ! -f "$repo/fuzz/fuzz_targets/$target.rs" ]]; then
    echo "unknown fuzz target '$target' (see $repo/fuzz/fuzz_targets/)" >&2
    exit 2
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

corpus="$repo/fuzz/corpus/$target"
seeds="$repo/fuzz/seeds/$target"
mkdir -p "$corpus" "$seeds"

# The shared conformance Dockerfiles make a good starting corpus for the parser.
extra_corpus=()
shared="${KILN_SHARED_DIR:-$repo/../shared}/conformance/dockerfile-parser"
if [[ $target == parser && -d $shared ]]; then
    extra_corpus=("$shared")
fi

dict_flags=()
if [[ -f "$repo/fuzz/dicts/$target.dict" ]]; then
    dict_flags=(-dict="$repo/fuzz/dicts/$target.dict")
fi

cd "$repo"
export RUSTC_BOOTSTRAP=1
exec cargo fuzz run \
    --sanitizer "${KILN_FUZZ_SANITIZER:-address}" \
    "$target" "$corpus" "$seeds" "${extra_corpus[@]}" \
    -- -max_total_time="$seconds" -max_len="${KILN_FUZZ_MAX_LEN:-4096}" -print_final_stats=1 "${dict_flags[@]}" "$@"
