"""Camera driver stand-ins: what realsense2_camera, usb_cam and v4l2_camera look like from
outside, for tests on a machine without cameras (written from each driver's source; see
docs/camera-drivers.md).

Each stand-in has the real driver's package and executable name (make_overlay installs them
into an ament prefix), default node name, declared parameters with their types, topics,
QoS, encodings, frame ids and free-running stamps (an arbitrary phase, the capture time).
Where the real driver silently ignores a parameter it does not declare, the stand-in exits 1
naming it, so a misspelt or wrong-release parameter fails a test instead of a robot's first
day; a parameter of the wrong type ends it as rclcpp ends the real one. Two drivers opening
one device fail as the real ones do (device busy). Attached devices come from
STANDIN_REALSENSE_DEVICES ("serial:model,...") and STANDIN_VIDEO_DEVICES ("/dev/video0,...").
"""
import dataclasses
import fcntl
import math
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import cv2
import numpy as np

STRING, INT, DOUBLE, BOOL, INTS = 'string', 'integer', 'double', 'bool', 'integer_array'
SENSOR_DATA, RELIABLE_100, RELIABLE_10, SYSTEM_DEFAULT = 'sensor', 'r100', 'r10', 'system'


@dataclasses.dataclass(frozen=True)
class Driver:
    package: str
    executable: str
    node_name: str
    parameters: Dict[str, Tuple[str, Any]]      # name -> (type, default)


REALSENSE_COMMON = {
    'camera_name': (STRING, 'camera'), 'serial_no': (STRING, ''), 'usb_port_id': (STRING, ''),
    'device_type': (STRING, ''), 'initial_reset': (BOOL, False),
    'wait_for_device_timeout': (DOUBLE, -1.0), 'reconnect_timeout': (DOUBLE, 6.0),
    'rosbag_filename': (STRING, ''), 'json_file_path': (STRING, ''),
    'enable_color': (BOOL, True), 'enable_depth': (BOOL, True), 'enable_infra1': (BOOL, False),
    'enable_infra2': (BOOL, False), 'enable_sync': (BOOL, False), 'publish_tf': (BOOL, True),
    'diagnostics_period': (DOUBLE, 0.0), 'depth_module.depth_profile': (STRING, '848x480x30'),
    'depth_module.depth_format': (STRING, 'Z16'), 'depth_module.exposure': (INT, 8500),
    'depth_module.enable_auto_exposure': (BOOL, True),
}
# Sensors by model (realsense2_camera >= 4.55.1): a D405's colour is the depth module's.
REALSENSE_RGB_SENSOR = {
    'rgb_camera.color_profile': (STRING, '1280x720x30'),
    'rgb_camera.color_format': (STRING, 'RGB8'),
    'rgb_camera.enable_auto_exposure': (BOOL, True), 'rgb_camera.exposure': (INT, 166),
    'rgb_camera.color_qos': (STRING, 'SYSTEM_DEFAULT')}
REALSENSE_D405_COLOUR = {
    'depth_module.color_profile': (STRING, '1280x720x30'),
    'depth_module.color_format': (STRING, 'RGB8'),
    'depth_module.exposure': (INT, 33000)}          # the D405's (realsense-ros#2612)
# The driver declares each sensor option with the sensor's range: the RGB sensor's exposure
# in 100 us steps (librealsense#8243), the depth module's in us. A value outside is refused
# by rclcpp; the driver logs "Failed to set parameter" and the sensor keeps its own value.
REALSENSE_RANGES = {'rgb_camera.exposure': (1, 10000), 'depth_module.exposure': (1, 165000)}
# A D405's colour is the depth module's: a manual exposure reaching within about 1.1 ms of
# the frame period makes it send every other frame (realsense-ros#2612, at 30 fps).
D405_EXPOSURE_HEADROOM_US = 1100
# The realsense2_camera release a stand-in plays (STANDIN_REALSENSE_RELEASE), and the one from
# which a D405's colour topic is color/image_raw (PR #3437; color/image_rect_raw before).
REALSENSE_RELEASE = '4.58.2'
D405_IMAGE_RAW_FROM = (4, 57, 4)
# Up to 4.54.1 a sensor has one `<sensor>.profile` and no format parameter (realsense-ros
# 4.54.1's profile_manager.cpp; PR #3052 in 4.55.1 made them per stream).
STREAM_PROFILES_FROM = (4, 55, 1)

USB_CAM = Driver('usb_cam', 'usb_cam_node_exe', 'usb_cam', {
    'camera_name': (STRING, 'default_cam'), 'camera_info_url': (STRING, ''),
    'framerate': (DOUBLE, 30.0), 'frame_id': (STRING, 'default_cam'),
    'image_height': (INT, 480), 'image_width': (INT, 640), 'io_method': (STRING, 'mmap'),
    'pixel_format': (STRING, 'yuyv'), 'av_device_format': (STRING, 'YUV422P'),
    'video_device': (STRING, '/dev/video0'), 'brightness': (INT, 50), 'contrast': (INT, -1),
    'saturation': (INT, -1), 'sharpness': (INT, -1), 'gain': (INT, -1),
    'auto_white_balance': (BOOL, True), 'white_balance': (INT, 4000),
    'autoexposure': (BOOL, True), 'exposure': (INT, 100), 'autofocus': (BOOL, False),
    'focus': (INT, -1)})
V4L2_CAMERA = Driver('v4l2_camera', 'v4l2_camera_node', 'v4l2_camera', {
    'video_device': (STRING, '/dev/video0'), 'use_sensor_data_qos': (BOOL, False),
    'use_image_transport': (BOOL, True), 'use_v4l2_buffer_timestamps': (BOOL, True),
    'timestamp_offset': (INT, 0), 'output_encoding': (STRING, 'rgb8'),
    'camera_info_url': (STRING, ''), 'camera_frame_id': (STRING, 'camera'),
    'pixel_format': (STRING, 'YUYV'), 'image_size': (INTS, [640, 480]),
    'time_per_frame': (INTS, [1, 30]), 'brightness': (INT, 128), 'contrast': (INT, 32)})
REALSENSE = Driver('realsense2_camera', 'realsense2_camera_node', 'camera', REALSENSE_COMMON)
DRIVERS = {'realsense': REALSENSE, 'usb_cam': USB_CAM, 'v4l2_camera': V4L2_CAMERA}

USB_CAM_ENCODINGS = {'yuyv': 'yuv422_yuy2', 'yuyv2rgb': 'rgb8', 'uyvy': 'yuv422',
                     'uyvy2rgb': 'rgb8', 'mjpeg2rgb': 'rgb8', 'rgb8': 'rgb8', 'mono8': 'mono8'}
REALSENSE_ENCODINGS = {'RGB8': 'rgb8', 'BGR8': 'bgr8', 'YUYV': 'yuv422_yuy2', 'Y8': 'mono8'}


def realsense_release() -> str:
    return os.environ.get('STANDIN_REALSENSE_RELEASE', REALSENSE_RELEASE)


class StandInError(RuntimeError):
    """What the real driver would print before exiting (or what it would silently ignore)."""


def _yuv(frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 video range, U and V averaged over each horizontal pair (4:2:2)."""
    rgb = frame_rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    pair = lambda c: (c[:, 0::2] + c[:, 1::2]) / 2  # noqa: E731
    clip = lambda c: np.clip(np.rint(c), 0, 255).astype(np.uint8)  # noqa: E731
    return clip(y), clip(pair(u)), clip(pair(v))


def encode(frame_rgb: np.ndarray, encoding: str) -> Tuple[bytes, int]:
    """(data, step) of `frame_rgb` in `encoding`, as a camera driver sends it."""
    height, width = frame_rgb.shape[:2]
    if encoding in ('yuv422_yuy2', 'yuv422'):
        y, u, v = _yuv(frame_rgb)
        packed = np.empty((height, width * 2), np.uint8)
        if encoding == 'yuv422_yuy2':       # Y0 U Y1 V
            packed[:, 0::4], packed[:, 1::4] = y[:, 0::2], u
            packed[:, 2::4], packed[:, 3::4] = y[:, 1::2], v
        else:                               # U Y0 V Y1
            packed[:, 0::4], packed[:, 1::4] = u, y[:, 0::2]
            packed[:, 2::4], packed[:, 3::4] = v, y[:, 1::2]
        return packed.tobytes(), width * 2
    codes = {'rgb8': None, 'bgr8': cv2.COLOR_RGB2BGR, 'mono8': cv2.COLOR_RGB2GRAY}
    data = frame_rgb if codes[encoding] is None else cv2.cvtColor(frame_rgb, codes[encoding])
    return np.ascontiguousarray(data).tobytes(), data.strides[0]


def test_frames(width: int, height: int, count: int = 4) -> List[np.ndarray]:
    """A few distinct frames, rendered once (a 1280x720 render per frame would cost CPU the
    node needs)."""
    rng = np.random.default_rng(width * height)
    base = cv2.resize(rng.integers(0, 256, (9, 16, 3), dtype=np.uint8), (width, height),
                      interpolation=cv2.INTER_LINEAR)
    return [np.roll(base, shift * width // (count * 2), axis=1) for shift in range(count)]


class DeviceLock:
    """One process a device, as V4L2 and librealsense enforce ('Device or resource busy')."""

    def __init__(self, device: str) -> None:
        folder = Path(os.environ.get('STANDIN_LOCK_DIR', tempfile.gettempdir()))
        self._file = open(folder / ('standin_' + re.sub(r'\W', '_', device) + '.lock'), 'w')
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StandInError(f'failed to open {device}: Device or resource busy') from None


def _realsense_device(serial: str) -> Tuple[str, str]:
    attached = [item.split(':') for item in
                filter(None, os.environ.get('STANDIN_REALSENSE_DEVICES', '').split(','))]
    if not attached:
        raise StandInError('No RealSense devices were found!')
    for found_serial, model in attached:
        if not serial or found_serial == serial:
            return found_serial, model.lower()
    raise StandInError(f"The requested device with serial number {serial} is NOT found. "
                       'Will Try again.')


def _release() -> Tuple[int, ...]:
    return tuple(int(n) for n in realsense_release().split('.'))


def _declared(driver: Driver, model: str) -> Dict[str, Tuple[str, Any]]:
    if driver is not REALSENSE:
        return dict(driver.parameters)
    extra = dict(REALSENSE_D405_COLOUR if model == 'd405' else REALSENSE_RGB_SENSOR)
    if _release() < STREAM_PROFILES_FROM:
        module = 'depth_module' if model == 'd405' else 'rgb_camera'
        extra[f'{module}.profile'] = extra.pop(f'{module}.color_profile')
        del extra[f'{module}.color_format']
    return {**driver.parameters, **extra}


def _profile(text: str) -> Tuple[int, int, float]:
    match = re.fullmatch(r'(\d+)[x,](\d+)[x,](\d+)', text)
    if not match:
        raise StandInError(f"Given value, {text} is invalid. Expected WIDTHxHEIGHTxFPS")
    return int(match.group(1)), int(match.group(2)), float(match.group(3))


def run(kind: str) -> int:
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CompressedImage, Image

    driver = DRIVERS[kind]
    # Ctrl-C / SIGTERM only ask the spin loop to end: rclpy's own handler shuts the context
    # down inside the signal handler, which once hung the process for good while the stream
    # thread was publishing (killed after SIGINT and SIGTERM went unanswered).
    requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: requested.set())
    rclpy.init(args=sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node = Node(driver.node_name, automatically_declare_parameters_from_overrides=False)
    given = dict(node._parameter_overrides)
    model, lock = '', None
    if driver is REALSENSE:
        serial = given['serial_no'].value if 'serial_no' in given else ''
        if not isinstance(serial, str):
            raise StandInError(f"parameter 'serial_no' has invalid type: expected [string] got "
                               f"[{type(serial).__name__}]")
        serial, model = _realsense_device(serial.removeprefix('_'))   # as the driver does
        lock = DeviceLock(f'realsense-{serial}')
    declared = _declared(driver, model)
    unknown = sorted(set(given) - set(declared) - {'use_sim_time'})
    if unknown:
        raise StandInError(f'{driver.package} does not declare {unknown} (the real driver '
                           f'would ignore them and run with its defaults)')
    values: Dict[str, Any] = {}
    for name, (_, default) in declared.items():
        value = node.declare_parameter(name, default).value   # wrong type: rclpy raises
        values[name] = value
        lowest, highest = REALSENSE_RANGES.get(name, (value, value))
        if name in given and not lowest <= value <= highest:
            raise StandInError(f'Failed to set parameter:{name} = {value}[{lowest}, {highest}] '
                               f"(the real driver goes on with the sensor's own value)")
    if driver is not REALSENSE:
        devices = os.environ.get('STANDIN_VIDEO_DEVICES', '').split(',')
        if values['video_device'] not in devices:
            raise StandInError(f"Device specified is not available or is not a valid V4L2 "
                               f"device: `{values['video_device']}`")
        lock = DeviceLock(values['video_device'])
    publisher, frame_id, encoding, fps, size, compressed_topic = _outputs(
        driver, values, model, node)
    profiles = {SENSOR_DATA: qos_profile_sensor_data,
                RELIABLE_100: QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
                RELIABLE_10: QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
                SYSTEM_DEFAULT: QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)}
    qos = profiles[publisher[1]]
    images = node.create_publisher(Image, publisher[0], qos)
    compressed = node.create_publisher(CompressedImage, compressed_topic, qos) \
        if compressed_topic else None
    frames = test_frames(*size)
    stop = threading.Event()

    def stream() -> None:
        try:
            publish_frames()
        except Exception:               # a publish racing the shutdown on Ctrl-C / SIGTERM
            if rclpy.ok() and not stop.is_set():
                raise

    def publish_frames() -> None:
        period = 1.0 / fps
        next_time = time.monotonic() + random.uniform(0, period)      # arbitrary phase
        index = 0
        while not stop.is_set():
            stop.wait(max(0.0, next_time - time.monotonic()))
            next_time += period
            frame = frames[index % len(frames)]
            index += 1
            msg = Image(height=size[1], width=size[0], encoding=encoding)
            msg.data, msg.step = encode(frame, encoding)
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.header.frame_id = frame_id
            images.publish(msg)
            if compressed is not None and compressed.get_subscription_count():
                ok, jpeg = cv2.imencode('.jpg', cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                out = CompressedImage(format=f'{encoding}; jpeg compressed bgr8',
                                      data=jpeg.tobytes())
                out.header = msg.header
                compressed.publish(out)

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    node.get_logger().info(f'stand-in {driver.package}: {node.get_fully_qualified_name()} '
                           f'publishing {images.topic_name} {size[0]}x{size[1]} {encoding} '
                           f'at {fps:g} Hz, frame {frame_id}')
    try:
        # A terminal's Ctrl-C reaches a launched driver twice (from the terminal and from
        # `ros2 launch`); the real drivers stop once, cleanly, and so does this.
        while not requested.is_set() and rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        stop.set()
        thread.join(timeout=2.0)
        node.destroy_node()
        rclpy.try_shutdown()
        del lock
    return 0


def _outputs(driver: Driver, values: Dict[str, Any], model: str, node: Any) -> tuple:
    """((image topic, QoS), frame id, encoding, fps, (width, height), compressed topic)."""
    if driver is REALSENSE:
        module = 'depth_module' if model == 'd405' else 'rgb_camera'
        old = _release() < STREAM_PROFILES_FROM
        width, height, fps = _profile(values[f"{module}.{'profile' if old else 'color_profile'}"])
        colour_format = 'RGB8' if old else values[f'{module}.color_format']
        if colour_format not in REALSENSE_ENCODINGS:
            raise StandInError(f'unsupported color format {colour_format}')
        if not values['enable_color']:
            raise StandInError('enable_color is false: no colour stream')
        if model == 'd405' and not values['depth_module.enable_auto_exposure']:
            frames = (values['depth_module.exposure'] + D405_EXPOSURE_HEADROOM_US) * fps / 1e6
            fps /= math.ceil(frames)                            # every other frame, or fewer
        rectified = model == 'd405' and _release() < D405_IMAGE_RAW_FROM
        raw = 'image_rect_raw' if rectified else 'image_raw'
        name = node.get_name()
        return ((f'~/color/{raw}', SYSTEM_DEFAULT), f'{name}_color_optical_frame',
                REALSENSE_ENCODINGS[colour_format], fps, (width, height), None)
    if driver is USB_CAM:
        if values['pixel_format'] not in USB_CAM_ENCODINGS:
            raise StandInError(f"Specified format `{values['pixel_format']}` is unsupported by "
                               'the selected device')
        return (('image_raw', RELIABLE_100), values['frame_id'],
                USB_CAM_ENCODINGS[values['pixel_format']], values['framerate'],
                (values['image_width'], values['image_height']), None)
    numerator, denominator = values['time_per_frame']
    qos = SENSOR_DATA if values['use_sensor_data_qos'] else RELIABLE_10
    if values['output_encoding'] not in ('rgb8', 'yuv422_yuy2', 'mono8', 'bgr8'):
        raise StandInError(f"Unsupported output encoding {values['output_encoding']}")
    return (('image_raw', qos), values['camera_frame_id'], values['output_encoding'],
            denominator / numerator, tuple(values['image_size']),
            'image_raw/compressed' if values['use_image_transport'] else None)


def main(kind: str) -> int:
    try:
        return run(kind)
    except StandInError as exc:
        print(f'[FATAL] [{DRIVERS[kind].package}] {exc}', file=sys.stderr, flush=True)
        return 1


def make_overlay(root: Path, python: str = sys.executable) -> Path:
    """An ament prefix holding the three stand-ins under the real package and executable
    names: put it on AMENT_PREFIX_PATH and launch_ros / ros2 run start them. The realsense
    one's package.xml carries the release it plays (realsense_release())."""
    here = Path(__file__).resolve().parent
    for kind, driver in DRIVERS.items():
        index = root / 'share' / 'ament_index' / 'resource_index' / 'packages'
        index.mkdir(parents=True, exist_ok=True)
        (index / driver.package).write_text('')
        share = root / 'share' / driver.package
        share.mkdir(parents=True, exist_ok=True)
        version = realsense_release() if driver is REALSENSE else '0.0.0'
        (share / 'package.xml').write_text(
            f'<?xml version="1.0"?>\n<package format="3"><name>{driver.package}</name>'
            f'<version>{version}</version><description>test stand-in</description>'
            '<maintainer email="t@example.org">t</maintainer><license>MIT</license></package>\n')
        lib = root / 'lib' / driver.package
        lib.mkdir(parents=True, exist_ok=True)
        executable = lib / driver.executable
        executable.write_text(f'#!{python}\nimport sys\nsys.path.insert(0, {str(here)!r})\n'
                              f'import driver_standins\nsys.exit(driver_standins.main({kind!r}))\n')
        executable.chmod(0o755)
    return root


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
