#!/usr/bin/env bash
# Runs a command in its own scheduler autogroup at nice -20 where allowed (root), so that
# benchmark numbers on a shared machine measure the code rather than its neighbours. The
# benchmarks still report how busy the rest of the machine was. Elsewhere it runs the
# command unchanged.
set -euo pipefail
if [[ $(id -u) -eq 0 && -w /proc/self/autogroup ]]; then
    exec setsid bash -c 'echo -20 > /proc/self/autogroup && exec nice -n -20 "$@"' _ "$@"
fi
exec "$@"
