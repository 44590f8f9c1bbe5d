#!/usr/bin/env bash
# Runs the kenpo-auth fuzz targets one after the other, each for a bounded time, on stable
# Rust (`--sanitizer none`). Replays the kept crash inputs (fuzz/regressions/<target>/)
# first. Fails if any target crashes, and prints a summary with exec counts.
#
#   fuzz/run.sh                 # every target, 60 s each
#   fuzz/run.sh 300             # every target, 300 s each
#   fuzz/run.sh 30 parse_email login_transitions
#
# Needs cargo-fuzz 0.13.2 (installed here when missing) and a C++ compiler for libFuzzer.
# Crashes land in fuzz/artifacts/<target>/, logs in fuzz/target/fuzz-logs/.
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_PER_TARGET="${1:-60}"
shift || true
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
    echo "usage: $0 [seconds-per-target] [target...]" >&2
    exit 2
fi

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    echo "=== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo fuzz list)
fi

LOGS=target/fuzz-logs
mkdir -p "$LOGS"

echo "=== building ${#TARGETS[@]} targets"
cargo fuzz build --sanitizer none

declare -a ROWS=()
failed=0
for t in "${TARGETS[@]}"; do
    log="$LOGS/$t.log"
    : >"$log"
    status=ok

    if compgen -G "regressions/$t/*" >/dev/null; then
        echo "=== $t: replaying kept crash inputs"
        if ! cargo fuzz run --sanitizer none "$t" regressions/"$t"/* >>"$log" 2>&1; then
            status="REGRESSION (see $log)"
        fi
    fi

    if [ "$status" = ok ]; then
        echo "=== $t: fuzzing for ${SECONDS_PER_TARGET} s"
        if ! cargo fuzz run --sanitizer none "$t" -- \
            -max_total_time="$SECONDS_PER_TARGET" -timeout=20 -print_final_stats=1 \
            >>"$log" 2>&1; then
            crash=$(grep -o 'artifacts/[^ ]*' "$log" | tail -1 || true)
            status="CRASH ${crash:-(see $log)}"
        fi
    fi

    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
    [ "$status" = ok ] || failed=1
    ROWS+=("$(printf '%-26s %6ss %12s %8s  %s' "$t" "${secs:--}" "${execs:--}" "${cov:--}" "$status")")
    echo "    ${ROWS[-1]}"
done

echo
echo "=== summary (${SECONDS_PER_TARGET} s per target)"
printf '%-26s %7s %12s %8s  %s\n' target time execs cov result
for r in "${ROWS[@]}"; do
    echo "$r"
done
if [ "$failed" -ne 0 ]; then
    echo "fuzzing FAILED: keep each crash input in fuzz/regressions/<target>/ and add a test"
    exit 1
fi
echo "fuzzing passed"
