"""realsense2_camera (IntelRealSense/realsense-ros 4.x): what the launch file gives it.

Read from the driver's source at 4.54.1, 4.55.1 and 4.56.1 (docs/camera-drivers.md has the
table). Node name = `camera_name` of rs_launch.py; topics are private (`~/color/image_raw`),
so with namespace `camera` and name `<key>` the image is `camera/<key>/color/image_raw`.
A D405 has no RGB sensor: colour comes from the depth module, rectified
(`depth_module.color_profile`, `~/color/image_rect_raw`). The profile parameter is
`rgb_camera.color_profile` from 4.55.1 (Humble, Jazzy and Kilted ship 4.55 or later); 4.54
and older call it `rgb_camera.profile` (pass it under `parameters:`). Images go out with the
SYSTEM_DEFAULT QoS (reliable on Fast DDS), frame id `<name>_color_optical_frame`, stamped by
the camera's clock translated to the host's (global time), encoding from
`rgb_camera.color_format` (default RGB8 -> rgb8). Without `serial_no` the driver opens the
first device it finds.
"""
import re
from typing import Any, Dict

from hil_serl_reward.ros.drivers.common import DriverError, DriverNode, DriverSettings

PACKAGE = 'realsense2_camera'
EXECUTABLE = 'realsense2_camera_node'
NAMESPACE = 'camera'
DEFAULTS = {'width': 1280, 'height': 720, 'fps': 15.0, 'model': 'd435'}   # hil-serl's rig
MODELS_WITHOUT_RGB_SENSOR = ('d405',)
# rs2 colour formats the driver maps to a ROS encoding (base_realsense_node.cpp)
FORMATS = {'RGB8': 'rgb8', 'BGR8': 'bgr8', 'RGBA8': 'rgba8', 'BGRA8': 'bgra8',
           'YUYV': 'yuv422_yuy2', 'UYVY': 'yuv422', 'Y8': 'mono8', 'Y16': 'mono16'}


def parse_profile(text: str) -> Dict[str, Any]:
    """'1280x720x15' (or '1280,720,15', also accepted by the driver) -> width, height, fps."""
    match = re.fullmatch(r'\s*(\d+)\s*[x,]\s*(\d+)\s*[x,]\s*(\d+(?:\.\d+)?)\s*', text)
    if not match:
        raise DriverError(f"realsense colour profile '{text}': expected WIDTHxHEIGHTxFPS, "
                          f"e.g. 1280x720x15")
    return {'width': int(match.group(1)), 'height': int(match.group(2)),
            'fps': float(match.group(3))}


def serial_number(settings: DriverSettings) -> str:
    """The serial without the '_' that realsense-ros's docs put before one given on the
    command line, where ROS would read its digits as an int (the driver strips it): the
    launch file passes the serial as a string, and `_0365...` and `0365...` are one camera."""
    return settings.serial.removeprefix('_')


def identity(settings: DriverSettings) -> str:
    return f'realsense:{serial_number(settings)}' if settings.serial else ''


def node(name: str, settings: DriverSettings) -> DriverNode:
    model = (settings.model or DEFAULTS['model']).lower()
    module = 'depth_module' if model in MODELS_WITHOUT_RGB_SENSOR else 'rgb_camera'
    width = settings.width or DEFAULTS['width']
    height = settings.height or DEFAULTS['height']
    fps = settings.fps or DEFAULTS['fps']
    colour_format = (settings.pixel_format or 'RGB8').upper()
    if colour_format not in FORMATS:
        raise DriverError(f"cameras.{settings.key}.driver.pixel_format: a realsense colour "
                          f"format ({', '.join(FORMATS)}), got '{settings.pixel_format}'")
    parameters: Dict[str, Any] = {
        'camera_name': name, 'enable_color': True, 'enable_depth': False,
        f'{module}.color_profile': f'{width}x{height}x{fps:g}',
        f'{module}.color_format': colour_format}
    if settings.serial:
        parameters['serial_no'] = serial_number(settings)
    parameters.update(settings.parameters)
    rectified = module == 'depth_module'
    return DriverNode(
        package=PACKAGE, executable=EXECUTABLE, name=name, namespace=NAMESPACE,
        parameters=parameters,
        image_topic=f"{NAMESPACE}/{name}/color/{'image_rect_raw' if rectified else 'image_raw'}",
        frame_id=f'{name}_color_optical_frame', encoding=FORMATS[colour_format],
        keys=(settings.key,), identity_free=frozenset({'camera_name'}))
