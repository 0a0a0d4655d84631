#!/usr/bin/env bash
# Nightly proof that society still keeps its promises. Install with:
#
#   0 2 * * * /path/to/society/scripts/nightly-selftest.sh
#
# Environment (all optional):
#   SOCIETY_BIN    the binary (default: the first of `society` on PATH,
#                  ${CARGO_HOME:-~/.cargo}/bin/society — where `cargo install --path .`
#                  puts it, and cron's PATH lacks it —, this checkout's
#                  target/release/society)
#   SOCIETY_ROOT   a society whose supervisor/selftest.jsonl receives the history line
#   REPORT_DIR     where JSON reports go (default: ~/.local/state/society/selftest)
#   MAILTO         on failure, mail the summary here (needs `mail` / `sendmail`)
#   SOCIETY_FUZZ_SECONDS
#                  also fuzz every parser this long each (scripts/fuzz.sh, which
#                  needs rustup's nightly toolchain, looked for in
#                  ${CARGO_HOME:-~/.cargo}/bin); unset: no fuzzing
#
# Exit status: 0 when every check passed, 7 when one failed, other values when
# the self-test could not run. On failure it prints the failing checks with
# their evidence (cron mails stdout to the crontab's owner by default).
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
find_bin() {
    if [ -n "${SOCIETY_BIN:-}" ]; then
        echo "$SOCIETY_BIN"
        return
    fi
    for candidate in "$(command -v society 2>/dev/null)" \
        "${CARGO_HOME:-$HOME/.cargo}/bin/society" \
        "$here/target/release/society"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return
        fi
    done
}
bin=$(find_bin)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    printf 'society selftest could not run on %s: no society binary found\n' "$(hostname)"
    printf '  looked for: $SOCIETY_BIN, `society` on PATH (%s), %s, %s\n' \
        "$PATH" "${CARGO_HOME:-$HOME/.cargo}/bin/society" "$here/target/release/society"
    printf '  fix: `cargo install --path %s`, or set SOCIETY_BIN=/path/to/society in the crontab line\n' "$here"
    exit 1
fi
dir=${REPORT_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/society/selftest}
mkdir -p "$dir"
report="$dir/selftest-$(date -u +%Y-%m-%dT%H%M%SZ).json"

"$bin" selftest --report "$report" >"$dir/last.txt" 2>&1
status=$?

fuzz_status=0
if [ -n "${SOCIETY_FUZZ_SECONDS:-}" ]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" "$here/scripts/fuzz.sh" "$SOCIETY_FUZZ_SECONDS" \
        >"$dir/fuzz.txt" 2>&1
    fuzz_status=$?
    if [ "$fuzz_status" -ne 0 ]; then
        fuzz_summary=$(grep -E 'CRASHED|^scripts/fuzz.sh' "$dir/fuzz.txt" | head -n 20)
        printf 'society fuzzing FAILED on %s (scripts/fuzz.sh exit %s)\n%s\nfull output: %s\n' \
            "$(hostname)" "$fuzz_status" "$fuzz_summary" "$dir/fuzz.txt"
        if [ -n "${MAILTO:-}" ] && command -v mail >/dev/null 2>&1; then
            printf '%s\n' "$fuzz_summary" | mail -s "society fuzzing FAILED on $(hostname)" "$MAILTO"
        fi
    fi
fi
if [ "$status" -eq 0 ]; then
    tail -n 1 "$dir/last.txt"
    [ "$fuzz_status" -eq 0 ] || exit 7
    exit 0
fi

summary=$(grep -E '^(FAIL|     promise|selftest:)' "$dir/last.txt" || tail -n 20 "$dir/last.txt")
if [ -s "$report" ]; then
    where="report: $report"
else
    where="no JSON report was written (the self-test stopped before its end)"
fi
printf 'society selftest FAILED on %s (exit %s, binary %s)\n%s\nfull output: %s\n%s\n' \
    "$(hostname)" "$status" "$bin" "$summary" "$dir/last.txt" "$where"
if [ -n "${MAILTO:-}" ] && command -v mail >/dev/null 2>&1; then
    printf '%s\n' "$summary" | mail -s "society selftest FAILED on $(hostname)" "$MAILTO"
fi
exit "$status"
