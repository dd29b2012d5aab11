#!/usr/bin/env bash
# Build the pinned virtual environment for one ROS 2 distro and stack:
#   scripts/build_venv.sh <distro> <venv-dir> [<stack>]
# stack: "" (requirements/core.txt, NumPy 2) or numpy1 (requirements/core-numpy1.txt, the
# stack of apt-installed ROS 2). Everything comes from the project's requirement files; the
# lock file (lock-<distro>[-<stack>].txt) pins every transitive package.
set -euo pipefail
distro=${1:-jazzy}
venv=${2:-.venv}
stack=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "build_venv: the ROS 2 $distro wheels are built for CPython 3.11; $python is $("$python" -V)" >&2
  exit 1
fi
core="$here/requirements/core${stack:+-$stack}.txt"
req=("$core" "$here/requirements/dev.txt" "$here/requirements/ros-$distro.txt"
     "$here/requirements/rosidl-$distro.txt")
for f in "${req[@]}"; do [ -f "$f" ] || { echo "build_venv: missing $f (distro '$distro' unknown?)" >&2; exit 1; }; done
lock="$here/requirements/lock-$distro${stack:+-$stack}.txt"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip==25.3
args=()
for f in "${req[@]}"; do args+=(-r "$f"); done
[ -f "$lock" ] && args+=(-c "$lock")
"$venv/bin/python" -m pip install --quiet "${args[@]}"
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$here"
# No wheel of vision_msgs exists: build the two messages the node publishes with rosidl.
"$here/scripts/build_vision_msgs.sh" "$venv"
touch "$venv/.installed"
echo "build_venv: $venv ready (ROS 2 $distro${stack:+, stack $stack})"
