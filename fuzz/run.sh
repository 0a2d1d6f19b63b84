#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for FUZZ_SECONDS (default 20) from the committed
# seed corpus; fails if any target crashes, panics, leaks past libFuzzer's limits or hangs on one
# input. New corpus entries go to a temporary directory, so fuzz/corpus/ stays as committed.
# Crashing inputs are kept in fuzz/artifacts/<target>/ (see README.md to replay one).
set -euo pipefail
cd "$(dirname "$0")"

# cargo-fuzz needs unstable compiler flags (sanitizers, coverage passes); this lets the stable
# toolchain accept them.
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version
# cargo-fuzz has no --locked; fetching with it first fails if Cargo.lock would have to change.
cargo fetch --locked

start=$(date +%s)
cargo fuzz build
echo "fuzz build: $(($(date +%s) - start)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in $(cargo fuzz list); do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "$work/$target"
    if cargo fuzz run "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$work/$target.log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
            "$work/$target.log" || true
    else
        tail -n 60 "$work/$target.log"
        failed+=("$target")
    fi
done
echo "fuzz total: $(($(date +%s) - start)) s"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz targets that failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
