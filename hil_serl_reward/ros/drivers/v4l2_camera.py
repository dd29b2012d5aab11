"""v4l2_camera (ros2_v4l2_camera): what the launch file gives it.

Read from the driver's source (docs/camera-drivers.md has the table). Node name
`v4l2_camera`; topics relative to its namespace (`image_raw`, plus image_transport's
`image_raw/compressed` where its plugin is installed), so each camera gets namespace
`camera/<key>`. There is no `framerate`: the rate is `time_per_frame`, [numerator,
denominator] seconds ([1, 15] = 15 fps). `image_size` is [width, height]; `pixel_format` is
the V4L2 FourCC it asks the camera for (default YUYV) and `output_encoding` what it
publishes (default rgb8, converted in the driver). QoS: reliable, depth 10 (sensor-data QoS
with use_sensor_data_qos). Frame id `camera` for every camera unless `camera_frame_id` is set.
"""
from fractions import Fraction
from typing import Any, Dict

from hil_serl_reward.ros.drivers.common import (
    DriverError, DriverNode, DriverSettings, device_identity)

PACKAGE = 'v4l2_camera'
EXECUTABLE = 'v4l2_camera_node'
NODE_NAME = 'v4l2_camera'
DEFAULTS = {'width': 640, 'height': 480, 'fps': 30.0, 'pixel_format': 'YUYV'}
OUTPUT_ENCODING = 'rgb8'


identity = device_identity


def time_per_frame(fps: float) -> list:
    """15 -> [1, 15]; 7.5 -> [2, 15]: the driver's [numerator, denominator] seconds."""
    period = Fraction(1 / fps).limit_denominator(1000)
    return [period.numerator, period.denominator]


def node(name: str, settings: DriverSettings) -> DriverNode:
    if not settings.device:
        raise DriverError(f'cameras.{settings.key}: v4l2_camera needs driver.device '
                          f'(or devices:="{settings.key}=/dev/videoN,...")')
    if settings.exposure_us:
        raise DriverError(f'cameras.{settings.key}.driver.exposure_us is for RealSense cameras: '
                          f"v4l2_camera declares the camera's own V4L2 controls as parameters "
                          f'(`v4l2-ctl -d DEVICE -l` lists them, e.g. auto_exposure and '
                          f'exposure_time_absolute in 100 us steps): give them under parameters:')
    frame_id = settings.frame_id or f'{name}_optical_frame'
    parameters: Dict[str, Any] = {
        'video_device': settings.device, 'camera_frame_id': frame_id,
        'image_size': [settings.width or DEFAULTS['width'], settings.height or DEFAULTS['height']],
        'time_per_frame': time_per_frame(settings.fps or DEFAULTS['fps']),
        'pixel_format': settings.pixel_format or DEFAULTS['pixel_format'],
        'output_encoding': OUTPUT_ENCODING}
    parameters.update(settings.parameters)
    namespace = f'camera/{name}'
    return DriverNode(
        package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME, namespace=namespace,
        parameters=parameters, image_topic=f'{namespace}/image_raw', frame_id=frame_id,
        encoding=str(parameters['output_encoding']),
        frame_size=tuple(int(n) for n in parameters['image_size'][:2]),
        keys=(settings.key,), identity_free=frozenset({'camera_frame_id'}))
