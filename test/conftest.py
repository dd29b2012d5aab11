"""Shared fixtures: models are initialised once per session (each init compiles for seconds)."""
import atexit
import os
import shutil
import sys
import tempfile

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# Every node and classifier in the suite compiles the same few models: one persistent
# compilation cache per run (also inherited by the node and demo subprocesses) compiles
# each once. The default 1 s threshold would skip these sub-second compiles.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
    os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='hil_serl_jax_cache_')
    atexit.register(shutil.rmtree, os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hil_serl_reward.model.resnet_v1 import IMAGE_SIZE  # noqa: E402
from hil_serl_reward.model.reward_classifier import ClassifierSpec, init_params  # noqa: E402

_PARAMS = {}


def params_for(spec: ClassifierSpec, seed: int = 0):
    """Random-init params for `spec`, cached for the whole session."""
    key = (spec, seed)
    if key not in _PARAMS:
        _PARAMS[key] = init_params(spec, seed)
    return _PARAMS[key]


@pytest.fixture(scope='session')
def two_camera_spec() -> ClassifierSpec:
    return ClassifierSpec(('wrist_1', 'front'))


@pytest.fixture(scope='session')
def two_camera_params(two_camera_spec):
    return params_for(two_camera_spec)


@pytest.fixture
def images():
    """A reproducible batch of two RGB uint8 128x128 frames per camera."""
    rng = np.random.default_rng(7)
    return {key: rng.integers(0, 256, (2, *IMAGE_SIZE, 3), dtype=np.uint8)
            for key in ('wrist_1', 'front', 'side')}


@pytest.fixture(scope='session')
def ros():
    """One rclpy context for the session; DDS stays on loopback (make test sets the env).
    Skipped without rclpy: `make py310` runs the tests that need no ROS under Python 3.10."""
    rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (ROS-free test run)')
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture
def bench(ros, request):
    """The test bench. A test marked `own_participant` gets one with a DDS participant of its
    own (an rclpy context of its own): the tests whose cameras feed a child process. Late in
    two of seven whole Kilted runs, the session's participant stopped delivering to every new
    child: the child's subscriptions matched, its diagnostics came here, and not one image
    reached it for the rest of the run, while child processes fed each other (test_node_main)
    as usual."""
    import rclpy
    from ros_harness import Bench
    context = None
    if request.node.get_closest_marker('own_participant'):
        context = rclpy.Context()
        rclpy.init(context=context)
    try:
        bench = Bench(context)
        yield bench
        bench.close()
    finally:            # a bench that failed to start or close leaves no participant behind
        if context is not None:
            rclpy.shutdown(context=context)


@pytest.fixture(scope='session')
def checkpoint_for(tmp_path_factory):
    """Writes (once) a checkpoint for image keys and seed; returns its folder."""
    from hil_serl_reward.model.checkpoint import save_checkpoint
    written = {}

    def make(keys, seed=0):
        if (keys, seed) not in written:
            spec = ClassifierSpec(tuple(keys))
            folder = tmp_path_factory.mktemp('ckpt')
            save_checkpoint(folder, params_for(spec, seed), spec, step=150)
            written[(keys, seed)] = folder
        return written[(keys, seed)]
    return make


@pytest.fixture(autouse=True)
def own_synchroniser(request, monkeypatch):
    """Every test runs on the project's synchroniser, whose counts and rules the tests
    assert, also where message_filters is installed; tests that take the
    `message_filters` fixture get that instead."""
    if 'message_filters' not in request.fixturenames:
        monkeypatch.setitem(sys.modules, 'message_filters', None)     # import fails


@pytest.fixture
def message_filters(monkeypatch):
    """message_filters where it is installed (every ROS 2 install), else the stand-in
    written from its documented API (message_filters_standin.py)."""
    monkeypatch.delitem(sys.modules, 'message_filters', raising=False)
    try:
        import message_filters
    except ImportError:
        import message_filters_standin as message_filters
        monkeypatch.setitem(sys.modules, 'message_filters', message_filters)
    return message_filters
