#!/usr/bin/env bash
# Coverage-guided fuzzing of society's parsers: the libFuzzer targets in
# fuzz/ (cargo fuzz, on the nightly toolchain), each for a while.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 30); the targets are fuzz/fuzz_targets/*.rs
# (default: all). Each starts from its committed seeds (fuzz/seeds/<t>/),
# the inputs that once broke it (fuzz/regressions/<t>/) and what earlier
# runs found (fuzz/corpus/<t>/, not committed, where new inputs go). A
# crash leaves its input in fuzz/artifacts/<t>/: fix the code, then commit
# the input under fuzz/regressions/<t>/, where `cargo test` replays it
# (crates/testkit/tests/fuzz_regressions.rs).
#
# Environment (all optional):
#   FUZZ_JOBS        targets fuzzed at once (default 1)
#   FUZZ_SANITIZER   cargo fuzz --sanitizer (default none: the code forbids
#                    unsafe, so the checks look for panics and broken
#                    invariants, with debug assertions on: overflow panics)
#   FUZZ_RSS_MB      libFuzzer's -rss_limit_mb (default 2048)
#   FUZZ_TARGET_DIR  build directory (default fuzz/target; a stable
#                    CARGO_TARGET_DIR is not used: other flags, other builds)
#
# Prints per target: executions, executions per second, crashes, corpus size.
# Exit status: 0 when no target crashed; 1 when one did (or did not build);
# 2 on bad usage; 3 when the fuzzers cannot run here (no nightly toolchain,
# cargo-fuzz not installable).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${1:-30}
[ $# -gt 0 ] && shift
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...] (SECONDS a whole number above 0)" >&2
    exit 2
fi
available=$(cd fuzz/fuzz_targets && ls -- *.rs | sed 's/\.rs$//')
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets <<<"$available"
fi
for t in "${targets[@]}"; do
    if ! grep -qx -- "$t" <<<"$available"; then
        echo "scripts/fuzz.sh: no fuzz target $t; the targets are:" $available >&2
        exit 2
    fi
done

if ! command -v rustup >/dev/null 2>&1 || ! rustup run nightly rustc --version >/dev/null 2>&1; then
    cat >&2 <<'EOF'
scripts/fuzz.sh: the nightly Rust toolchain is missing; cargo fuzz needs it
  (libFuzzer's coverage instrumentation takes -Z flags). Install it with
  `rustup toolchain install nightly`. Without it, `cargo test` still replays
  the seeds and regressions of every target on stable.
EOF
    exit 3
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: installing cargo-fuzz from crates.io" >&2
    if ! cargo +nightly install cargo-fuzz --locked --quiet; then
        echo "scripts/fuzz.sh: could not install cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
        exit 3
    fi
fi

jobs=${FUZZ_JOBS:-1}
target_dir=${FUZZ_TARGET_DIR:-$root/fuzz/target}
build_flags=(--sanitizer "${FUZZ_SANITIZER:-none}" --debug-assertions --target-dir "$target_dir")
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

started=$(date +%s)
echo "scripts/fuzz.sh: building ${#targets[@]} targets (cargo +nightly fuzz build)" >&2
# Once for all: the runs below then start at once.
if ! cargo +nightly fuzz build "${build_flags[@]}" >"$logs/build.txt" 2>&1; then
    tail -n 40 "$logs/build.txt" >&2
    echo "scripts/fuzz.sh: the fuzz targets do not build" >&2
    exit 1
fi
built=$(date +%s)

run_one() {
    local t=$1
    local corpus=fuzz/corpus/$t
    local inputs=("$corpus")
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    for extra in fuzz/seeds/$t fuzz/regressions/$t; do
        [ -d "$extra" ] && inputs+=("$extra")
    done
    local before
    before=$(find "fuzz/artifacts/$t" -type f | wc -l)
    cargo +nightly fuzz run "${build_flags[@]}" "$t" "${inputs[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -timeout=20 \
        -print_final_stats=1 >"$logs/$t.txt" 2>&1
    echo $? >"$logs/$t.status"
    echo $(($(find "fuzz/artifacts/$t" -type f | wc -l) - before)) >"$logs/$t.crashes"
}

running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    echo "scripts/fuzz.sh: fuzzing $t for ${seconds}s" >&2
    run_one "$t" &
    running=$((running + 1))
done
wait

failed=0
printf '%-18s %12s %8s %8s %7s  %s\n' target executions exec/s crashes corpus result
for t in "${targets[@]}"; do
    log=$logs/$t.txt
    status=$(cat "$logs/$t.status")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    crashes=$(cat "$logs/$t.crashes")
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    result=ok
    if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        result="CRASHED (exit $status; input in fuzz/artifacts/$t/)"
        failed=1
    fi
    printf '%-18s %12s %8s %8s %7s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$crashes" "$corpus" "$result"
done
for t in "${targets[@]}"; do
    if [ "$(cat "$logs/$t.status")" -ne 0 ]; then
        echo "--- $t: the end of libFuzzer's output" >&2
        grep -v '^#\|^INFO:\|^stat::' "$logs/$t.txt" | tail -n 40 >&2
    fi
done
echo "scripts/fuzz.sh: build $((built - started))s, fuzzing $(($(date +%s) - built))s" >&2
exit "$failed"
