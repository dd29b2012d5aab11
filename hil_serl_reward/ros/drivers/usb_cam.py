"""usb_cam (ros-drivers/usb_cam, ROS 2): what the launch file gives it.

Read from the driver's source at 0.6.0 and 0.8.1 (docs/camera-drivers.md has the table).
Node name `usb_cam`; topics relative to its namespace (`image_raw`; 0.8.1's node would publish
`image_raw/compressed` for pixel_format `mjpeg`, a name none of its formats has), so each
camera gets namespace `camera/<key>`. QoS: reliable, keep last 100. Stamps: the V4L2
buffer's capture time. `pixel_format` defaults to `yuyv`, published as `yuv422_yuy2`;
`yuyv2rgb` converts in the driver and publishes `rgb8` (every UVC camera offers YUYV;
`mjpeg2rgb` reaches higher rates at 1280x720 on USB 2: the launch says so where the raw
stream asked is more than USB 2.0 carries). Every camera gets frame id `default_cam` unless
`frame_id` is set, so it is set per camera here.
"""
from typing import Any, Dict

from hil_serl_reward.ros.drivers.common import (
    DriverError, DriverNode, DriverSettings, device_identity, usb2_rate_note)

PACKAGE = 'usb_cam'
EXECUTABLE = 'usb_cam_node_exe'
NODE_NAME = 'usb_cam'
DEFAULTS = {'width': 640, 'height': 480, 'fps': 30.0, 'pixel_format': 'yuyv2rgb'}
# the driver block's fields node() reads
BLOCK_FIELDS = frozenset({'device', 'width', 'height', 'fps', 'pixel_format', 'frame_id',
                          'parameters'})
# usb_cam pixel_format -> encoding of image_raw (include/usb_cam/formats/*.hpp, 0.6.0 to 0.8.1)
FORMATS = {'yuyv': 'yuv422_yuy2', 'yuyv2rgb': 'rgb8', 'uyvy': 'yuv422', 'uyvy2rgb': 'rgb8',
           'mjpeg2rgb': 'rgb8', 'mono8': 'mono8', 'mono16': 'mono16', 'y102mono8': 'mono8',
           'm4202rgb': 'rgb8'}
# usb_cam pixel_format -> bytes per pixel of what the camera sends over USB (the V4L2 format
# asked: YUYV, UYVY, Y10, M420, ...); None: compressed (MJPEG)
WIRE_BYTES_PER_PIXEL = {'yuyv': 2, 'yuyv2rgb': 2, 'uyvy': 2, 'uyvy2rgb': 2, 'mjpeg2rgb': None,
                        'mono8': 1, 'mono16': 2, 'y102mono8': 2, 'm4202rgb': 1.5}
# formats usb_cam accepts (or is documented with) whose images are not what they say
BROKEN_FORMATS = {
    'rgb8': "asks the camera for V4L2's RGB332 (one byte a pixel, which UVC cameras hardly "
            'offer) and publishes three bytes a pixel copied from it',
    'raw_mjpeg': "publishes the camera's JPEG bytes as a raw Image of encoding yuv422 (0.8.1), "
                 'which a subscriber would take for pixels',
    'mjpeg': 'is no format of usb_cam 0.6.0 or 0.8.1 (their raw MJPEG is raw_mjpeg, published '
             'as a raw yuv422 Image)'}


identity = device_identity


def node(name: str, settings: DriverSettings) -> DriverNode:
    if not settings.device:
        raise DriverError(f'cameras.{settings.key}: usb_cam needs driver.device '
                          f'(or devices:="{settings.key}=/dev/videoN,...")')
    if settings.exposure_us:
        raise DriverError(f'cameras.{settings.key}.driver.exposure_us is for RealSense cameras: '
                          f'usb_cam takes `autoexposure: false` and `exposure` (the V4L2 '
                          f"control's value, 100 us steps on UVC cameras) under parameters:")
    frame_id = settings.frame_id or f'{name}_optical_frame'
    parameters: Dict[str, Any] = {
        'video_device': settings.device, 'camera_name': name, 'frame_id': frame_id,
        'image_width': settings.width or DEFAULTS['width'],
        'image_height': settings.height or DEFAULTS['height'],
        'framerate': float(settings.fps or DEFAULTS['fps']),
        'pixel_format': settings.pixel_format or DEFAULTS['pixel_format']}
    parameters.update(settings.parameters)
    # what the driver gets, from the block's field or a usb_cam params file under parameters:
    pixel_format = str(parameters['pixel_format'])
    where = (f'cameras.{settings.key}.driver.parameters.pixel_format'
             if 'pixel_format' in settings.parameters
             else f'cameras.{settings.key}.driver.pixel_format')
    if pixel_format in BROKEN_FORMATS:
        raise DriverError(f"{where}: usb_cam's '{pixel_format}' {BROKEN_FORMATS[pixel_format]}: "
                          f'yuyv2rgb, or mjpeg2rgb (the camera compresses, usb_cam decodes to '
                          f'rgb8)')
    if pixel_format not in FORMATS:
        raise DriverError(f"{where}: one of usb_cam's {sorted(FORMATS)}, got '{pixel_format}'")
    namespace = f'camera/{name}'
    width, height = int(parameters['image_width']), int(parameters['image_height'])
    return DriverNode(
        package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME, namespace=namespace,
        parameters=parameters, image_topic=f'{namespace}/image_raw', frame_id=frame_id,
        encoding=FORMATS[pixel_format],
        frame_size=(width, height), keys=(settings.key,),
        identity_free=frozenset({'camera_name', 'frame_id'}),
        notes=usb2_rate_note(settings.key, 'usb_cam', pixel_format,
                             WIRE_BYTES_PER_PIXEL[pixel_format], width, height,
                             parameters['framerate'],
                             'pixel_format: mjpeg2rgb there (the camera compresses, usb_cam '
                             'decodes)'))
