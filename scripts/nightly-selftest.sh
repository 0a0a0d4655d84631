#!/usr/bin/env bash
# Nightly proof that society still keeps its promises. Install with:
#
#   0 2 * * * /path/to/society/scripts/nightly-selftest.sh
#
# Environment (all optional):
#   SOCIETY_BIN    the binary (default: `society` on PATH, else target/release/society)
#   SOCIETY_ROOT   a society whose supervisor/selftest.jsonl receives the history line
#   REPORT_DIR     where JSON reports go (default: ~/.local/state/society/selftest)
#   MAILTO         on failure, mail the summary here (needs `mail` / `sendmail`)
#
# Exit status: 0 when every check passed, 7 when one failed, other values when
# the self-test could not run. On failure it prints the failing checks with
# their evidence (cron mails stdout to the crontab's owner by default).
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SOCIETY_BIN:-$(command -v society || echo "$here/target/release/society")}
dir=${REPORT_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/society/selftest}
mkdir -p "$dir"
report="$dir/selftest-$(date -u +%Y-%m-%dT%H%M%SZ).json"

"$bin" selftest --report "$report" >"$dir/last.txt" 2>&1
status=$?
if [ "$status" -eq 0 ]; then
    tail -n 1 "$dir/last.txt"
    exit 0
fi

summary=$(grep -E '^(FAIL|     promise|selftest:)' "$dir/last.txt" || tail -n 20 "$dir/last.txt")
printf 'society selftest FAILED on %s (exit %s)\n%s\nfull output: %s\nreport: %s\n' \
    "$(hostname)" "$status" "$summary" "$dir/last.txt" "$report"
if [ -n "${MAILTO:-}" ] && command -v mail >/dev/null 2>&1; then
    printf '%s\n' "$summary" | mail -s "society selftest FAILED on $(hostname)" "$MAILTO"
fi
exit "$status"
