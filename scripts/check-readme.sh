#!/usr/bin/env bash
# Runs every command of README.md's "Two commands" block, verbatim, in a fresh
# `git clone` of this repository — what a new user does on day one. Called by
# .ci/run. A dirty working tree is cloned as committed (HEAD): commit first.
#
#   scripts/check-readme.sh            # every command of the block
#   scripts/check-readme.sh --only demo  # only the commands containing "demo"
#
# CARGO_TARGET_DIR, when set, is passed through so the clone reuses the build
# cache (dependencies are not rebuilt; the workspace's own crates are).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
only=""
if [ "${1:-}" = "--only" ]; then
    only=${2:?--only needs a word}
fi

# The fenced block right after the "## Two commands" heading; comments and
# blank lines dropped.
mapfile -t commands < <(awk '
    /^## Two commands/ { section = 1; next }
    section && /^## / { exit }
    section && /^```/ { if (inblock) exit; inblock = 1; next }
    inblock { sub(/[[:space:]]+#.*$/, ""); if ($0 !~ /^[[:space:]]*$/) print }
' "$here/README.md")
if [ "${#commands[@]}" -eq 0 ]; then
    echo "check-readme: no commands found in the \"Two commands\" block of README.md" >&2
    exit 1
fi

if [ -n "$(git -C "$here" status --porcelain --untracked-files=no)" ]; then
    echo "check-readme: warning: uncommitted changes are not in the clone (it holds HEAD)" >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/society-readme-XXXXXX")
trap 'rm -rf "$work"' EXIT
git clone --quiet "$here" "$work/society"
cd "$work/society"
for cmd in "${commands[@]}"; do
    if [ -n "$only" ] && [[ "$cmd" != *"$only"* ]]; then
        continue
    fi
    echo "check-readme: \$ $cmd   (in a fresh clone: $work/society)" >&2
    start=$(date +%s)
    if ! bash -c "$cmd"; then
        echo "check-readme: FAILED: \`$cmd\` in a fresh clone" >&2
        exit 1
    fi
    echo "check-readme: ok: \`$cmd\` ($(($(date +%s) - start)) s)" >&2
done
