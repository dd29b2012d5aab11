"""Is the installed cv_bridge usable? Asked in a child process, because the ways it breaks
kill the asker.

Measured with ROS 2's real cv_bridge (../shared/ros2-upstream/cv_bridge): built against
NumPy 1.x and imported beside NumPy 2 (every apt install after `pip install numpy>=2`), the
import succeeds and the first conversion ends the process with a segmentation fault; beside
a pip OpenCV 5.x its Python layer raises KeyError on every colour conversion. An import in
try/except catches neither. The child converts a few small images of the encodings cameras
send; cv_bridge is used only when it survives and gives our conversion's pixels (which
follow cv_bridge's code), else the node says why, how to fix the install, and converts
itself.
"""
import dataclasses
import importlib.util
import json
import signal
import subprocess
import sys
from typing import Optional

from hil_serl_reward.pipeline.image_conversion import (
    DEFAULT_MAX_PIXELS, ImageConverter, numpy_to_rgb)

PROBE_TIMEOUT_S = 30.0
PROBE_ENCODINGS = ('rgb8', 'bgr8', 'mono16', 'yuv422_yuy2')
_CHILD = '''
import json, sys
import numpy as np
from sensor_msgs.msg import Image
from cv_bridge import CvBridge
out = {}
bridge = CvBridge()
for encoding, (height, width, step, data) in json.loads(sys.stdin.read()).items():
    msg = Image(height=height, width=width, encoding=encoding, step=step, data=bytes(data))
    out[encoding] = bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8').tolist()
print(json.dumps(out))
'''
FIX = ('build or install a cv_bridge for this NumPy and OpenCV (apt cv_bridge is built '
       "against NumPy 1.x and OpenCV 4: in the venv, pip install 'numpy<2' "
       "'opencv-python-headless<4.12'; docs/install.md)")


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    usable: bool
    reason: str                     # why not, or '' when usable


def _samples() -> dict:
    """Small images of the encodings cameras send, with distinct pixel values."""
    samples = {}
    for encoding, bytes_per_pixel in zip(PROBE_ENCODINGS, (3, 3, 2, 2)):
        height, width = 2, 4
        step = (width + 1) * bytes_per_pixel     # whole-pixel row padding (see whole_pixel_rows)
        data = [(7 * i + 13) % 256 for i in range(step * height)]
        samples[encoding] = (height, width, step, data)
    return samples


def probe(timeout_s: float = PROBE_TIMEOUT_S) -> Optional[ProbeResult]:
    """None when no cv_bridge is installed; else whether it converts correctly."""
    if importlib.util.find_spec('cv_bridge') is None:
        return None
    from sensor_msgs.msg import Image
    samples = _samples()
    try:
        done = subprocess.run([sys.executable, '-c', _CHILD], input=json.dumps(samples),
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f'a test conversion took over {timeout_s:g} s')
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return ProbeResult(False, f'a test conversion killed its process ({name}): cv_bridge '
                                  f'was built against another NumPy ({_numpy()} here) or OpenCV')
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ['no output'])[-1]
        return ProbeResult(False, f'a test conversion failed: {last}')
    try:
        converted = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return ProbeResult(False, 'a test conversion printed no result')
    for encoding, (height, width, step, data) in samples.items():
        msg = Image(height=height, width=width, encoding=encoding, step=step, data=bytes(data))
        if converted.get(encoding) != numpy_to_rgb(msg).tolist():
            return ProbeResult(False, f'its {encoding} -> rgb8 conversion gives other pixels '
                                      'than cv_bridge\'s own code should')
    return ProbeResult(True, '')


def _numpy() -> str:
    import numpy
    return f'NumPy {numpy.__version__}'


def make_converter(max_pixels: int = DEFAULT_MAX_PIXELS, warn=None) -> ImageConverter:
    """cv_bridge where installed and working, our conversion elsewhere; `warn` (a logger
    method) hears once why an installed cv_bridge is not used."""
    result = probe()
    if result is not None and result.usable:
        from cv_bridge import CvBridge
        return ImageConverter(CvBridge(), max_pixels)
    converter = ImageConverter(max_pixels=max_pixels)
    if result is not None:
        converter.backend = f'numpy (cv_bridge unusable: {result.reason})'
        if warn is not None:
            warn(f'cv_bridge is installed but unusable: {result.reason}; converting images '
                 f'without it (same pixels). To use it, {FIX}')
    return converter
