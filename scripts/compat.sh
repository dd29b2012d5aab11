#!/usr/bin/env bash
# Cross-version checkpoint compatibility: build small venvs with the flax/orbax releases
# hil-serl pinned (and take a NumPy-1 stack's venv where one is built), then run
# test/test_compat.py, which writes checkpoints there with flax's own save_checkpoint, reads
# ours there with restore_checkpoint, and compares both ways.
set -euo pipefail
py=${1:-.venv/bin/python}
here=$(cd "$(dirname "$0")/.." && pwd)
peers=()
for era in flax080 flax0102; do
  venv="$here/.venv-compat-$era"
  reqs="$here/requirements/compat-$era.txt"
  if [ ! -f "$venv/.installed" ] || [ "$reqs" -nt "$venv/.installed" ]; then
    rm -rf "$venv"
    python3.11 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet -r "$reqs"
    touch "$venv/.installed"
  fi
  peers+=("$venv/bin/python")
done
# The NumPy-1 stack (flax 0.10.7, jax 0.6.2), where a venv of it is built (make STACK=numpy1
# venv, or make upstream-test's): checkpoints cross between the two stacks the package is
# pinned to, as they cross flax eras.
for numpy1 in "$here/.venv-numpy1/.installed" "$here/.venv-upstream/.upstream-numpy1"; do
  if [ -f "$numpy1" ]; then
    peers+=("$(dirname "$numpy1")/bin/python")
    break
  fi
done
export HIL_SERL_COMPAT_PYTHONS="${peers[*]}"
exec "$py" -m pytest -q "$here/test/test_compat.py" -p no:cacheprovider
