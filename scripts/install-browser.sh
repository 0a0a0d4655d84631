#!/usr/bin/env bash
# Installs what the dashboard's browser tests drive (tests/integration/
# dashboard.rs): Debian's `chromium` and `chromium-driver`, when
# /usr/bin/chromium or /usr/bin/chromedriver is missing. Called by .ci/run and
# by the tests themselves, so a fresh machine's `cargo test` gets them too.
#
#   scripts/install-browser.sh     # prints what it found or did
#
# Idempotent: with both present it does nothing. Two callers at once (two
# test processes, CI and a developer) queue on a lock file, and the second
# one finds the browser the first installed. Runs apt-get as root, or through
# `sudo -n` (never prompts); fails with a clear message otherwise.
set -euo pipefail

chromium=/usr/bin/chromium
driver=/usr/bin/chromedriver
packages=(chromium chromium-driver)

present() { [ -x "$chromium" ] && [ -x "$driver" ]; }

say() { echo "install-browser: $*" >&2; }

fail() {
    say "error: $*"
    exit 1
}

versions() {
    # `chromium --version` goes through Debian's wrapper script; print
    # whatever it says, never fail on it.
    say "  $("$chromium" --version 2>/dev/null || echo "$chromium (version unknown)")"
    say "  $("$driver" --version 2>/dev/null || echo "$driver (version unknown)")"
}

if present; then
    say "chromium and chromedriver already installed; nothing to do"
    versions
    exit 0
fi

# One installer at a time. The lock lives in the temp dir, and is opened
# read-only (all flock needs), so a lock file another user created still
# works.
command -v flock >/dev/null 2>&1 ||
    fail "flock not found (util-linux): cannot make sure only one install runs at a time"
lock=${TMPDIR:-/tmp}/society-install-browser.lock
[ -e "$lock" ] || (umask 000 && : >>"$lock") 2>/dev/null || true
exec 9<"$lock" || fail "cannot open the lock file $lock"
if ! flock --nonblock 9; then
    say "another install-browser.sh is running; waiting for it (lock $lock)"
    flock 9
fi
# The one that held the lock may have installed them meanwhile.
if present; then
    say "chromium and chromedriver were installed by a concurrent run; nothing to do"
    versions
    exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
    fail "apt-get not found: install Chromium and its chromedriver by hand ($chromium, $driver)"

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    fail "installing ${packages[*]} needs root: run as root, or allow \`sudo\` without a password, or install them yourself (apt-get install --no-install-recommends ${packages[*]})"
fi

# `env` inside sudo: sudo does not pass DEBIAN_FRONTEND through by default.
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y
    -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confold)
missing=()
[ -x "$chromium" ] || missing+=("$chromium")
[ -x "$driver" ] || missing+=("$driver")
say "missing: ${missing[*]}; installing ${packages[*]} with apt-get"
"${apt[@]}" update >&2 || fail "apt-get update failed"
"${apt[@]}" install --no-install-recommends "${packages[@]}" >&2 ||
    fail "apt-get install ${packages[*]} failed"

present || fail "apt-get installed ${packages[*]}, but $chromium or $driver is still missing"
say "installed ${packages[*]}"
versions
