"""The node uses cv_bridge only when a conversion in a child process survives and gives the
right pixels: an apt cv_bridge built for NumPy 1 beside NumPy 2 segfaults on its first
conversion (measured with the real one), which no import check can catch. Here fake
cv_bridge packages play the broken installs; the real one, where installed, must pass."""
import sys

import numpy as np
import pytest

from hil_serl_reward.ros import cv_bridge_probe
from ros_harness import image_msg

BROKEN = {
    'segfault': 'import os, signal\n'
                'class CvBridge:\n'
                '    def imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):\n'
                '        os.kill(os.getpid(), signal.SIGSEGV)\n',
    'keyerror': 'class CvBridge:\n'
                '    def imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):\n'
                '        raise KeyError(16)\n',
    'wrong_pixels': 'import numpy as np\n'
                    'class CvBridge:\n'
                    '    def imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):\n'
                    '        return np.zeros((msg.height, msg.width, 3), np.uint8)\n',
}
REASONS = {'segfault': 'killed its process (SIGSEGV)', 'keyerror': 'KeyError: 16',
           'wrong_pixels': 'gives other pixels'}


@pytest.fixture(params=sorted(BROKEN))
def broken_cv_bridge(request, tmp_path, monkeypatch):
    package = tmp_path / 'cv_bridge'
    package.mkdir()
    (package / '__init__.py').write_text(BROKEN[request.param])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv('PYTHONPATH', f"{tmp_path}:{':'.join(sys.path)}")
    monkeypatch.delitem(sys.modules, 'cv_bridge', raising=False)
    return request.param


def test_a_broken_cv_bridge_is_found_out_and_not_used(broken_cv_bridge):
    warnings = []
    converter = cv_bridge_probe.make_converter(warn=warnings.append)
    assert converter.backend.startswith('numpy (cv_bridge unusable')
    assert len(warnings) == 1 and REASONS[broken_cv_bridge] in warnings[0]
    assert 'numpy<2' in warnings[0]                         # and how to fix the install
    rgb = np.random.default_rng(2).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    np.testing.assert_array_equal(converter.to_rgb(image_msg(rgb, 1, 'bgr8')), rgb)


def test_the_node_warns_and_classifies_beside_a_crashing_cv_bridge(
        tmp_path, monkeypatch, bench, checkpoint_for):
    package = tmp_path / 'cv_bridge'
    package.mkdir()
    (package / '__init__.py').write_text(BROKEN['segfault'])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv('PYTHONPATH', f"{tmp_path}:{':'.join(sys.path)}")
    keys = ('wrist_1', 'front')
    node = bench.start_node(checkpoint_path=str(checkpoint_for(keys)), image_keys=list(keys))
    assert 'SIGSEGV' in node.diagnostic_values()['image conversion']
    bench.connect(list(keys))
    rgb = np.zeros((48, 64, 3), np.uint8)
    for key in keys:
        bench.publish(key, image_msg(rgb, 100_000_000))
    bench.wait_outputs(1)


def test_no_cv_bridge_means_our_conversion_without_a_word(monkeypatch):
    monkeypatch.setattr(cv_bridge_probe.importlib.util, 'find_spec', lambda name: None)
    warnings = []
    assert cv_bridge_probe.make_converter(warn=warnings.append).backend == 'numpy'
    assert warnings == []


def test_the_real_cv_bridge_passes_where_installed():
    pytest.importorskip('cv_bridge')
    result = cv_bridge_probe.probe()
    assert result is not None and result.usable, result
