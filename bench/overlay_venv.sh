#!/usr/bin/env bash
# A venv for the benchmarks on a GPU machine that has CUDA JAX installed but no package index
# (an air-gapped lab machine): it sees the base Python's packages (jax, its CUDA plugin, torch)
# and adds a folder of wheels on top, taking precedence: the ROS 2 wheels for that Python and
# this project's pinned Flax stack (requirements/core.txt). Fetch the wheels where pip works:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --platform manylinux_2_28_x86_64 -d wheels -r <(grep '^ros-' requirements/lock-kilted.txt) \
#     flax==0.12.8 optax==0.2.8 orbax-checkpoint==0.12.8 rosbags==0.11.9 lz4==4.4.5 \
#     ruamel.yaml==0.19.1 backports.zstd==1.8.0 apsw==3.54.1.0
#   pip wheel --no-deps -w wheels empy==4.2.1 lark-parser==0.12.0 catkin-pkg==1.1.1 docutils==0.23
# (the second line: rosidl's tools for scripts/build_vision_msgs.sh, pure Python but some only
# as source archives; without empy that build failed on an H200 machine, 2026-12-04)
# then: bench/overlay_venv.sh <base-python> wheels <venv>, and run the benchmarks with
# <venv>/bin/python and PYTHONPATH at this checkout (README, Performance: On a GPU).
set -euo pipefail
base=$1 wheels=$2 venv=$3
"$base" -m venv --without-pip "$venv"
purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'
"$base" -c "$purelib" > "$("$venv/bin/python" -c "$purelib")/zz_base_site.pth"
"$venv/bin/python" -m pip install --quiet --no-index --no-deps --no-compile "$wheels"/*.whl
echo "overlay_venv: $venv over $("$base" -c "$purelib")"
