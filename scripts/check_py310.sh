#!/usr/bin/env bash
# Humble's Python is 3.10: every module of the package, its tests, benchmarks and launch files
# must compile under a real 3.10 (syntax of 3.11+, such as `except*` or PEP 695 generics, fails
# here), and the tests that need no ROS run under it. Uses python3.10 from PATH or pyenv;
# says so and passes where none is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
py=""
for candidate in python3.10 "$(PYENV_VERSION=3.10 pyenv which python3.10 2>/dev/null || true)" \
                 /root/.pyenv/versions/3.10*/bin/python3.10; do
  if [ -n "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
    py=$candidate; break
  fi
done
if [ -z "$py" ]; then
  echo "check_py310: no Python 3.10 here: skipped"; exit 0
fi
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
PYTHONPYCACHEPREFIX="$cache" "$py" -m compileall -q hil_serl_reward launch test bench compat
echo "check_py310: every module compiles under $("$py" -V)"
# Then the tests that need no ROS (arguments: test files), in a venv of 3.10 with the NumPy-1
# stack of apt-installed Humble (requirements/core-numpy1.txt), made once per requirements.
[ "$#" -gt 0 ] || exit 0
venv=.venv-py310
stamp="$venv/.installed-$(cat requirements/core-numpy1.txt | md5sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q -r requirements/core-numpy1.txt pytest==9.2.0
  touch "$stamp"
fi
PYTHONPATH="$PWD:$PWD/test" PYTHONPYCACHEPREFIX="$cache" "$venv/bin/python" -m pytest -q \
  -p no:cacheprovider "$@"
