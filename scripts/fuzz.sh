#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 30), seeded
# with the committed corpus in fuzz/corpus/<target>/ and, where present, the
# dictionary fuzz/dict/<target>.dict. New inputs go to a temporary corpus that
# is removed afterwards, so the committed corpus stays as it is. A target stops
# at its first crash, hang (over 10 s) or out-of-memory input; libFuzzer saves
# that input under fuzz/artifacts/<target>/, its path is printed, the other
# targets still run and the script exits 1.
#
#   scripts/fuzz.sh [SECONDS]
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none
#   FUZZ_TARGETS    space-separated targets to run (default: all)
#   FUZZ_KEEP_CORPUS=DIR  keep the grown corpus in DIR/<target>/ instead of
#                   deleting it (e.g. to minimise into fuzz/corpus with
#                   `cargo fuzz cmin`)
#
# Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets it accept the
# -Z flags that cargo-fuzz passes (sanitizer, instrumentation).
set -euo pipefail

seconds="${1:-30}"
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac
sanitizer="${FUZZ_SANITIZER:-address}"

cd "$(dirname "$0")/.."
root="$PWD"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "--- installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "--- building fuzz targets (sanitizer: $sanitizer)"
build_start=$SECONDS
cargo fuzz build --sanitizer "$sanitizer"
echo "built in $((SECONDS - build_start)) s"

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"

work="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-corpus.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

status=0
for target in $targets; do
    seeds="$root/fuzz/corpus/$target"
    artifacts="$root/fuzz/artifacts/$target"
    mkdir -p "$work/$target" "$artifacts"
    marker="$work/.start-$target"
    touch "$marker"
    dict=()
    if [ -f "$root/fuzz/dict/$target.dict" ]; then
        dict=("-dict=$root/fuzz/dict/$target.dict")
    fi
    echo "--- $target: ${seconds}s from $(find "$seeds" -type f | wc -l) seed inputs"
    # The first corpus directory receives new inputs; the committed one is
    # only read. -timeout: one input running over 10 s counts as a hang.
    if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "$work/$target" "$seeds" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}"; then
        status=1
        echo "!!! $target failed. Inputs it saved:" >&2
        find "$artifacts" -type f -newer "$marker" -exec echo "    {}" \; >&2
        echo "Reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer $target <input>" >&2
        continue
    fi
    if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
        mkdir -p "$FUZZ_KEEP_CORPUS/$target"
        cp -n "$work/$target"/* "$FUZZ_KEEP_CORPUS/$target/" 2>/dev/null || true
    fi
done
exit $status
