#!/usr/bin/env bash
# Build vision_msgs (Classification, ObjectHypothesis) with rosidl into a venv made from the ROS 2
# wheels, which have no vision_msgs: scripts/build_vision_msgs.sh <venv-dir>
# Needs requirements/rosidl-<distro>.txt installed (build_venv.sh does). Installs into the
# venv's own prefix, whose lib/ the wheels' bootstrapper already puts on LD_LIBRARY_PATH, so the
# messages import and load like the wheels' own. About 10-20 s (cmake, gcc).
set -euo pipefail
venv=$(cd "${1:-.venv}" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
py="$venv/bin/python"

# The wheels' exported CMake targets name the wheel builder's Python and numpy include folders;
# CMake refuses a target whose include folder does not exist, so point them at this venv's.
py_include=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_include=$("$py" -c 'import numpy; print(numpy.get_include())')
{ grep -rlZ --include='*.cmake' '/opt/python/cp3' "$venv/share" || true; } | xargs -0 -r sed -i -E \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$py_include#g" \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$np_include#g"

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
export PATH="$venv/bin:$PATH" AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
cmake -S "$here/msgs/vision_msgs" -B "$build" -DCMAKE_INSTALL_PREFIX="$venv" \
  -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build/configure.log" 2>&1 \
  || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1 || { tail -50 "$build/build.log" >&2; exit 1; }
cmake --install "$build" >/dev/null
"$py" -c 'from vision_msgs.msg import Classification, ObjectHypothesis'
echo "build_vision_msgs: vision_msgs built into $venv"
