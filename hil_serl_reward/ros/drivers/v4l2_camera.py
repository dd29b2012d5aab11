"""v4l2_camera (ros2_v4l2_camera): what the launch file gives it.

Read from the driver's source (docs/camera-drivers.md has the table). Node name
`v4l2_camera`; topics relative to its namespace (`image_raw`, plus image_transport's
`image_raw/compressed` where its plugin is installed), so each camera gets namespace
`camera/<key>`. There is no `framerate`: the rate is `time_per_frame`, [numerator,
denominator] seconds ([1, 15] = 15 fps). `image_size` is [width, height]; `pixel_format` is
the V4L2 FourCC it asks the camera for (default YUYV) and `output_encoding` what it
publishes (default rgb8, converted in the driver). QoS: reliable, depth 10 (sensor-data QoS
with use_sensor_data_qos). Frame id `camera` for every camera unless `camera_frame_id` is set.
It takes YUYV, UYVY and GREY only (no MJPEG): 1280x720 YUYV at 15 fps is more than a USB 2.0
camera sends, which the launch says.
"""
from fractions import Fraction
from typing import Any, Dict

from hil_serl_reward.ros.drivers.common import (
    DriverError, DriverNode, DriverSettings, device_identity, usb2_rate_note)

PACKAGE = 'v4l2_camera'
EXECUTABLE = 'v4l2_camera_node'
NODE_NAME = 'v4l2_camera'
DEFAULTS = {'width': 640, 'height': 480, 'fps': 30.0, 'pixel_format': 'YUYV'}
# the driver block's fields node() reads
BLOCK_FIELDS = frozenset({'device', 'width', 'height', 'fps', 'pixel_format', 'frame_id',
                          'parameters'})
OUTPUT_ENCODING = 'rgb8'
# pixel_format (the V4L2 FourCC asked of the camera) -> bytes per pixel sent over USB
WIRE_BYTES_PER_PIXEL = {'YUYV': 2, 'UYVY': 2, 'GREY': 1}


identity = device_identity


def time_per_frame(fps: float) -> list:
    """15 -> [1, 15]; 7.5 -> [2, 15]: the driver's [numerator, denominator] seconds."""
    period = Fraction(1 / fps).limit_denominator(1000)
    return [period.numerator, period.denominator]


def rate_of(time_per_frame: Any) -> float:
    """[1, 15] -> 15.0; 0.0 for what is not [numerator, denominator] seconds (the driver
    refuses it itself)."""
    try:
        numerator, denominator = time_per_frame
        return denominator / numerator
    except (TypeError, ValueError, ZeroDivisionError):
        return 0.0


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
    width, height = (int(n) for n in parameters['image_size'][:2])
    pixel_format = str(parameters['pixel_format'])
    return DriverNode(
        package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME, namespace=namespace,
        parameters=parameters, image_topic=f'{namespace}/image_raw', frame_id=frame_id,
        encoding=str(parameters['output_encoding']),
        frame_size=(width, height), keys=(settings.key,),
        identity_free=frozenset({'camera_frame_id'}),
        notes=usb2_rate_note(settings.key, 'v4l2_camera', pixel_format,
                             WIRE_BYTES_PER_PIXEL.get(pixel_format), width, height,
                             rate_of(parameters['time_per_frame']),
                             'fps 10 or less there, or usb_cam with pixel_format: mjpeg2rgb '
                             '(v4l2_camera takes no MJPEG)'))
