# hil_serl_reward: one entry point for set-up, demo, tests and checks.
# DISTRO=jazzy (default, the LTS) or DISTRO=kilted; each distro gets its own venv.
# STACK=numpy1: the NumPy-1 stack of apt-installed ROS 2 (requirements/core-numpy1.txt).
DISTRO ?= jazzy
STACK ?=
VENV ?= $(if $(filter jazzy,$(DISTRO)),.venv,.venv-$(DISTRO))$(if $(STACK),-$(STACK))
PY := $(VENV)/bin/python
ISOLATED := scripts/ros_isolated.sh
## What a venv of distro $(1) and stack $(2) is built from.
reqs = requirements/core$(if $(2),-$(2)).txt requirements/dev.txt requirements/rl.txt requirements/ros-$(1).txt \
	requirements/rosidl-$(1).txt setup.py scripts/build_vision_msgs.sh $(wildcard msgs/vision_msgs/*.* msgs/vision_msgs/msg/*)
REQS := $(call reqs,$(DISTRO),$(STACK))

.PHONY: venv test cv-bridge colcon-test apt-route upstream-test upstream-test-run py310 demo inspect compat bench bench-e2e fuzz lock clean

venv: $(VENV)/.installed

$(VENV)/.installed: $(REQS)
	scripts/build_venv.sh $(DISTRO) $(VENV) $(STACK)

## The whole test suite (pytest), DDS kept on loopback. HIL_SERL_TESTED_STACKS="core numpy1" (CI,
## after `make py310` and `make test`): the tests that need no ROS (PY310_TESTS) already ran on
## those Python stacks (requirements/core.txt, core-numpy1.txt), so a later run on one of them
## (Kilted; the upstream venv, NumPy 1) leaves them out.
no_ros_ignores = $(if $(filter $(1),$(HIL_SERL_TESTED_STACKS)),$(addprefix --ignore=,$(PY310_TESTS)))
test: venv
	$(ISOLATED) $(PY) -m pytest -q test $(call no_ros_ignores,$(or $(STACK),core))

## ROS 2's real cv_bridge compiled into the venv (../shared/ros2-upstream/cv_bridge), as an
## apt install has it (`make STACK=numpy1 cv-bridge test`; CI runs it in `make upstream-test`).
CV_BRIDGE := ../shared/ros2-upstream/cv_bridge/build_cv_bridge.sh
cv-bridge: $(VENV)/.cv_bridge

$(VENV)/.cv_bridge: $(VENV)/.installed
	@if [ -x $(CV_BRIDGE) ]; then $(CV_BRIDGE) $(VENV) && touch $@; \
	else echo "cv-bridge: $(CV_BRIDGE) is absent: the venv stays without cv_bridge"; fi

## The ROS 2 route: colcon build + colcon test (the tests of the installed package and of the
## colcon set-up; the whole suite runs in `make test`); a failing test fails the command.
COLCON_TESTS := test_launch_files or test_readme or test_layers or test_params_file or test_camera_drivers or test_optional_dependencies
colcon-test: venv
	rm -rf build install log
	. $(VENV)/bin/activate && colcon build --packages-select hil_serl_reward
	. $(VENV)/bin/activate && $(ISOLATED) colcon test --packages-select hil_serl_reward --return-code-on-test-failure --event-handlers console_direct+ --pytest-args -k "$(COLCON_TESTS)"
	. $(VENV)/bin/activate && colcon test-result --verbose

## The README's apt route, command for command, on a stand-in for an apt-installed ROS 2 Jazzy
## (.apt-jazzy/: the Jazzy wheels, NumPy 1.26.4, ROS 2's cv_bridge, upstream's launch and ros2
## CLI, the camera-driver stand-ins): venv, pip, colcon build, ros2 launch until a reward, colcon
## test of the install-specific tests. Skips, saying so, where ../shared/ros2-upstream is absent.
apt-route:
	scripts/apt_route.sh

## Humble's Python: every module compiles under a real Python 3.10, and the tests that need no
## ROS (model, pipeline, data) pass there with the NumPy-1 stack (skipped where none is).
PY310_TESTS := $(addprefix test/,test_checkpoint.py test_inference.py test_preprocessing.py \
	test_convolutions.py test_reward_classifier.py test_synchronizer.py test_mailbox.py \
	test_layers.py test_sync_phases.py test_training.py test_xla_flags.py test_introspection.py \
	test_set_timing.py test_cpu_tickers.py test_xla_threads.py test_cpu_latency.py test_stages.py \
	test_model_reload.py)
py310:
	scripts/check_py310.sh $(PY310_TESTS)

## The real ROS 2 install path: a Jazzy venv of its own on the NumPy-1 stack of apt installs
## (requirements/core-numpy1.txt) with upstream's message_filters, launch, launch_testing and
## ros2 CLI and ROS 2's cv_bridge compiled against that NumPy (../shared/ros2-upstream), the
## whole suite on it, then colcon build + colcon test of what needs the installed package: the
## launch_testing test of classifier.launch.py, the ros2 CLI commands and the launch
## descriptions. Skips, saying so, where ../shared/ros2-upstream is absent (a user's clone: a
## real ROS 2 install has these).
UPSTREAM := ../shared/ros2-upstream
UPSTREAM_VENV := .venv-upstream
UPSTREAM_STAMP := $(UPSTREAM_VENV)/.upstream-numpy1
UPSTREAM_COLCON := --build-base build-upstream --install-base install-upstream
upstream-test:
	@if [ ! -x $(UPSTREAM)/install.sh ]; then \
	  echo "upstream-test: $(UPSTREAM) is absent: skipped (nothing to install upstream's message_filters, launch and ros2 CLI from)"; \
	else $(MAKE) --no-print-directory upstream-test-run; fi

upstream-test-run: $(UPSTREAM_STAMP)
	$(ISOLATED) $(UPSTREAM_VENV)/bin/python -m pytest -q test $(call no_ros_ignores,numpy1)
	rm -rf build-upstream install-upstream log-upstream
	. $(UPSTREAM_VENV)/bin/activate && colcon --log-base log-upstream build --packages-select hil_serl_reward $(UPSTREAM_COLCON)
	. $(UPSTREAM_VENV)/bin/activate && . install-upstream/setup.sh && $(ISOLATED) colcon --log-base log-upstream test --packages-select hil_serl_reward $(UPSTREAM_COLCON) --return-code-on-test-failure --event-handlers console_direct+ --pytest-args -k "test_launch_classifier or test_launch_drivers or test_ros2_cli or test_launch_files"

$(UPSTREAM_STAMP): $(call reqs,jazzy,numpy1) requirements/upstream.txt $(UPSTREAM)/sources.tar.gz $(UPSTREAM)/install.sh
	rm -rf $(UPSTREAM_VENV)
	$(MAKE) --no-print-directory VENV=$(UPSTREAM_VENV) DISTRO=jazzy STACK=numpy1 venv
	$(UPSTREAM)/install.sh $(UPSTREAM_VENV)
	$(UPSTREAM_VENV)/bin/python -m pip install --quiet -r requirements/upstream.txt
	$(MAKE) --no-print-directory VENV=$(UPSTREAM_VENV) DISTRO=jazzy STACK=numpy1 cv-bridge
	touch $@

## The main job: train a classifier on simulated scenes, then camera simulator + reward node,
## printing what was published. DEMO_ARGS="--checkpoint DIR" serves your own instead.
DEMO_ARGS ?= --train
demo: venv
	$(ISOLATED) $(VENV)/bin/hil_serl_demo $(DEMO_ARGS)

## Print the parameter tree and sharing checks of a fresh two-camera model (or CKPT=path).
inspect: venv
	$(VENV)/bin/inspect_checkpoint $(if $(CKPT),$(CKPT),--image-keys wrist_1 front)

## Cross-version checkpoint compatibility with the flax/orbax releases hil-serl pinned.
compat: venv
	scripts/compat.sh $(PY)

## Benchmarks (JSON on stdout): model vs PyTorch, synchroniser, end to end over DDS, the gym
## wrapper's cost per env step, each at
## high priority in its own scheduler group where allowed (scripts/high_priority.sh).
PRIORITY := scripts/high_priority.sh
## A set's latency budget at 2 x 1280x720, 15 and 30 Hz, with the large-image DDS profile, and
## the longest gap in results while the checkpoint changes three times at 15 Hz, 1, 4 and 8
## rigs on one node, and two stages on one node against a node each.
bench-e2e: venv
	@$(PRIORITY) $(ISOLATED) $(PY) bench/e2e_bench.py --configs 1280x720@15 1280x720@30 --profile on --keep-cpus-awake both --reload 3 --rigs 1 4 8 --stages 2 $(BENCH_ARGS)

bench: venv
	@$(PY) -m pip install --quiet -r requirements/bench.txt
	@$(PRIORITY) $(ISOLATED) $(PY) bench/model_bench.py $(BENCH_ARGS)
	@$(PRIORITY) $(PY) bench/sync_bench.py
	@$(PRIORITY) $(ISOLATED) $(PY) bench/e2e_bench.py --flood --debug-image $(BENCH_ARGS)
	@$(PRIORITY) $(ISOLATED) $(PY) bench/wrapper_bench.py

## Seeded random mutations of every file kind the node and tools read (test/fuzz_inputs.py):
## counts per kind as JSON; fails on a crash, hang, unbounded allocation or traceback.
FUZZ_ARGS ?= --seed 0 --cases 200
fuzz: venv
	$(ISOLATED) $(PY) test/fuzz_inputs.py $(FUZZ_ARGS)

## Re-pin every transitive package of the current venv into the distro's lock file (vision_msgs
## is built here, not installed from an index: not pinned).
lock: venv
	$(PY) -m pip freeze --exclude-editable | grep -v -e '^-e' -e '^vision_msgs==' > requirements/lock-$(DISTRO)$(if $(STACK),-$(STACK)).txt

clean:
	rm -rf build install log build-upstream install-upstream log-upstream .pytest_cache
