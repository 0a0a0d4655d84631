#!/usr/bin/env bash
# Benchmarks society against its peers on this machine and writes
# BENCHMARKS.md. Installs the peers from the system package manager (Redis,
# s6) when they are missing. Pass --quick for smaller sizes.
#
#   scripts/bench.sh            # full run (several minutes)
#   scripts/bench.sh --quick    # a quick look
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

cargo build --release --quiet -p society -p society-bench
target/release/society-bench --bin target/release/society --out BENCHMARKS.md --command "scripts/bench.sh${*:+ $*}" "$@"
