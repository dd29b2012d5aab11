#!/usr/bin/env bash
# The README's apt route ("The ROS 2 route (apt-installed ROS 2)"), run command for command on
# a stand-in for an apt-installed ROS 2 Jazzy on Ubuntu 24.04 (no ROS apt repository reaches
# the machines this is built on):   scripts/apt_route.sh     (make apt-route; CI)
#
# The stand-in, .apt-jazzy/ (rebuilt when its inputs change):
#   system/  Ubuntu's python3 with what apt and rosdep install for it: a Python 3.11 venv with
#            requirements/apt-standin-jazzy.txt (the Jazzy wheels, NumPy 1.26.4, OpenCV 4,
#            colcon, pytest 7.4), vision_msgs, upstream's launch, message_filters and ros2 CLI,
#            ROS 2's cv_bridge compiled against that NumPy, and the camera-driver stand-ins
#            (test/driver_standins.py) under the real drivers' package names;
#   opt/ros/jazzy/setup.bash  what the real one sets (PATH, LD_LIBRARY_PATH, AMENT_PREFIX_PATH,
#            ROS_DISTRO, ...);
#   bin/python3  the system python3; `python3 -m venv --system-site-packages DIR` makes a venv
#            that sees system/'s packages after its own, as Ubuntu's dist-packages are seen.
# The README block then runs as written in a fresh HOME, inside scripts/ros_isolated.sh, with
# these substitutions (printed): /opt/ros -> the stand-in's; <this repo> -> this checkout
# (its committed HEAD); rosdep is not run (it needs the rosdep database from the network);
# pip reads a folder of the same pinned wheels downloaded beforehand (no network in the
# namespace); /path/to/rig.yaml and /path/to/classifier_ckpt -> a two-camera usb_cam rig and a
# checkpoint written with the route's venv; `ros2 launch` runs until the first reward arrives,
# then gets Ctrl-C; `colcon test` runs the tests that check the installed package on this
# install (APT_ROUTE_TESTS). Then: the console script starts the venv's Python, the node ran on
# cv_bridge and message_filters, and NumPy is the stand-in's 1.26.4.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
standin=${APT_STANDIN:-$here/.apt-jazzy}
reqs="$here/requirements/apt-standin-jazzy.txt"
if [ ! -x "$here/../shared/ros2-upstream/install.sh" ]; then
  echo "apt_route: ../shared/ros2-upstream is absent: skipped (nothing to build the stand-in's launch, ros2 CLI and cv_bridge from)"
  exit 0
fi
tests=${APT_ROUTE_TESTS:-test_launch_drivers or test_cv_bridge_probe or test_image_conversion}

build_standin() {
  local sys="$standin/system" prefix="$standin/opt/ros/jazzy"
  rm -rf "$standin"
  python3.11 -m venv "$sys"
  "$sys/bin/python" -m pip install --quiet --upgrade pip==25.3
  "$sys/bin/python" -m pip install --quiet -r "$reqs"
  "$here/scripts/build_vision_msgs.sh" "$sys"
  "$here/../shared/ros2-upstream/install.sh" "$sys"
  "$here/../shared/ros2-upstream/cv_bridge/build_cv_bridge.sh" "$sys"
  "$sys/bin/python" -c "import numpy, cv2; assert numpy.__version__ == '1.26.4' and cv2.__version__.startswith('4.'), (numpy.__version__, cv2.__version__)"
  mkdir -p "$prefix" "$standin/bin"
  "$sys/bin/python" -c "import sys; sys.path.insert(0, '$here/test'); from pathlib import Path; import driver_standins; driver_standins.make_overlay(Path('$prefix'), '$sys/bin/python')"
  local site libs
  site=$("$sys/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  libs=$(printf '%s:' "$site"/ros_*.libs)
  cat > "$prefix/setup.bash" <<EOF
# stand-in for /opt/ros/jazzy/setup.bash (scripts/apt_route.sh)
export ROS_DISTRO=jazzy ROS_VERSION=2 ROS_PYTHON_VERSION=3
export AMENT_PREFIX_PATH="$prefix:$sys\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$prefix:$sys\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}"
export LD_LIBRARY_PATH="$sys/lib:$libs\${LD_LIBRARY_PATH:-}"
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
export PATH="$standin/bin:$sys/bin:\$PATH"
EOF
  cat > "$standin/bin/python3" <<EOF
#!/usr/bin/env bash
# the stand-in's system python3 (scripts/apt_route.sh)
if [ "\${1:-}" = -m ] && [ "\${2:-}" = venv ] && [[ " \$* " == *" --system-site-packages "* ]]; then
  python3.11 "\$@"
  venv="\${!#}"
  site=\$("\$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "import site; site.addsitedir('$site')" > "\$site/zz_dist_packages.pth"
  exit 0
fi
exec "$sys/bin/python" "\$@"
EOF
  chmod +x "$standin/bin/python3"
  standin_stamp > "$standin/.built"
}

# What the stand-in is built from: its requirements and this script's STANDIN_VERSION (raise it
# when build_standin changes).
STANDIN_VERSION=1
standin_stamp() { echo "stand-in $STANDIN_VERSION $here $(sha256sum < "$reqs")"; }
if [ "$(cat "$standin/.built" 2>/dev/null)" != "$(standin_stamp)" ]; then
  echo "apt_route: building the stand-in for apt's ROS 2 Jazzy in $standin"
  build_standin
fi

work=$(mktemp -d /tmp/apt_route.XXXXXX)
[ "${APT_ROUTE_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home" "$work/path/to"
# The pinned wheels the route's `pip install` asks for, fetched while the network is there.
block=$(awk '/^## The ROS 2 route/{on=1} on&&/^```bash/{grab=1; next} grab&&/^```/{exit} grab' \
        "$here/README.md" | sed -e ':a' -e '/\\$/N; s/\\\n *//; ta')
[ -n "$block" ] || { echo "apt_route: no bash block under '## The ROS 2 route' in README.md" >&2; exit 1; }
pip_line=$(grep -m1 '^pip install ' <<<"$block") || { echo "apt_route: no 'pip install' line" >&2; exit 1; }
mkdir -p "$work/download/src"
ln -s "$here" "$work/download/src/hil_serl_reward"
(cd "$work/download" && "$standin/system/bin/python" -m pip download --quiet --dest "$work/wheels" \
   ${pip_line#pip install })

cat > "$work/path/to/rig.yaml" <<'EOF'
/**:
  ros__parameters:
    image_keys: [wrist_1, front]
    cameras:
      wrist_1: {driver: {kind: usb_cam, device: /dev/video0, pixel_format: yuyv, width: 320, height: 240, fps: 15}}
      front: {driver: {kind: usb_cam, device: /dev/video1, pixel_format: yuyv, width: 320, height: 240, fps: 15}}
EOF

prelude=$(cat <<EOF
set -eo pipefail    # not -u: ROS's and colcon's setup.bash read unset variables
export HOME="$work/home" PATH="$standin/bin:\$PATH"
export PIP_NO_INDEX=1 PIP_FIND_LINKS="$work/wheels" PIP_DISABLE_PIP_VERSION_CHECK=1
export STANDIN_VIDEO_DEVICES=/dev/video0,/dev/video1 STANDIN_LOCK_DIR="$work"
write_checkpoint() {
  python -c "from hil_serl_reward.model.checkpoint import save_checkpoint; from hil_serl_reward.model.reward_classifier import ClassifierSpec, init_params; spec = ClassifierSpec(('wrist_1', 'front')); save_checkpoint('$work/path/to/classifier_ckpt', init_params(spec), spec, step=1)"
}
launch_until_reward() {
  set -m     # the launch gets a process group of its own, as in a terminal
  "\$@" > "$work/launch.log" 2>&1 &
  local launch=\$!
  set +m
  timeout 240 ros2 topic echo --once /reward std_msgs/msg/Float32 > "$work/reward.txt" &
  local echo=\$!
  while kill -0 \$launch 2>/dev/null && kill -0 \$echo 2>/dev/null; do sleep 0.5; done
  local got=0 rc=0
  kill -0 \$echo 2>/dev/null && kill \$echo
  wait \$echo || got=\$?
  kill -INT -\$launch 2>/dev/null || true     # Ctrl-C
  wait \$launch || rc=\$?
  cat "$work/launch.log"
  [ \$got = 0 ] || { echo "apt_route: no reward arrived (ros2 topic echo exit \$got)" >&2; exit 1; }
  [ \$rc = 0 ] || { echo "apt_route: ros2 launch exited \$rc after Ctrl-C" >&2; exit 1; }
  ! grep -E 'Traceback|\\[ERROR\\]|\\[FATAL\\]' "$work/launch.log" || { echo "apt_route: an error line in ros2 launch's output" >&2; exit 1; }
  grep -q 'image conversion: cv_bridge' "$work/launch.log" || { echo "apt_route: the node did not convert with cv_bridge" >&2; exit 1; }
  grep -q 'synchroniser: message_filters' "$work/launch.log" || { echo "apt_route: the node did not synchronise with message_filters" >&2; exit 1; }
  echo "apt_route: reward received: \$(tr '\\n' ' ' < "$work/reward.txt")"
  ros2 daemon stop > /dev/null     # the one ros2 topic echo spawned: nothing outlives the route
}
EOF
)
route=$(sed -e "s|/opt/ros/|$standin/opt/ros/|g" \
            -e "s|<this repo>|$here|" \
            -e 's|^rosdep install .*|echo "apt_route: rosdep not run here (it needs the rosdep database from the network): &"|' \
            -e "s|^ros2 launch \(.*\)|write_checkpoint; launch_until_reward ros2 launch \1|" \
            -e "s|/path/to/|$work/path/to/|g" \
            -e "s|^python -m colcon test \(.*\)|& --event-handlers console_direct+ --pytest-args -k \"$tests\"|" \
            <<<"$block")
printf '%s\n%s\n' "$prelude" "$route" > "$work/route.sh"
echo "apt_route: the README's route, as run here:"
printf '%s\n' "$route" | sed 's/^/    /'
"$here/scripts/ros_isolated.sh" bash "$work/route.sh"

ws="$work/home/ws"
shebang=$(head -1 "$ws/install/hil_serl_reward/lib/hil_serl_reward/classifier_node")
[ "$shebang" = "#!$ws/venv/bin/python" ] || { echo "apt_route: classifier_node starts '$shebang', not the venv's Python" >&2; exit 1; }
numpy=$("$ws/venv/bin/python" -c 'import numpy; print(numpy.__version__)')
[ "$numpy" = 1.26.4 ] || { echo "apt_route: the venv has NumPy $numpy, not the apt cv_bridge's 1.26.4" >&2; exit 1; }
echo "apt_route: passed (console scripts start $ws/venv/bin/python; NumPy $numpy; cv_bridge and message_filters in the node)"
