"""realsense2_camera (IntelRealSense/realsense-ros 4.x): what the launch file gives it.

Read from the driver's source at 4.54.1, 4.55.1 and 4.56.1, and 4.57.3 to 4.58.2 for a
D405's topic (docs/camera-drivers.md has the table). Node name = `camera_name` of
rs_launch.py; topics are private (`~/color/image_raw`), so with namespace `camera` and name
`<key>` the image is `camera/<key>/color/image_raw`.
A D405 has no RGB sensor: colour comes from the depth module (`depth_module.color_profile`),
published as `~/color/image_rect_raw` up to 4.57.3 and as `~/color/image_raw` from 4.57.4
(realsense-ros PR #3437: the colour stream is not rectified); the launch file reads which
release is installed (`DriverSettings.release`). The profile parameter is
`<sensor>.color_profile` from 4.55.1 (realsense-ros PR #3052) beside `<sensor>.color_format`;
4.54.1 and older have one `<sensor>.profile` for the sensor's streams and no format parameter
(the colour comes as RGB8), so an old install gets those. Images go out with the
SYSTEM_DEFAULT QoS (reliable on Fast DDS), frame id `<name>_color_optical_frame`, stamped by
the camera's clock translated to the host's (global time), encoding from
`rgb_camera.color_format` (default RGB8 -> rgb8). Without `serial_no` the driver opens the
first device it finds.

Exposure: hil-serl's cameras run at a fixed `exposure` in us (7000-40000 in its configs), set
by its own pyrealsense code on the device's first sensor: a D405's colour, but on a D435 the
depth module (its colour stays on auto). Each sensor's `exposure` option has its own unit:
the RGB sensor's counts 100 us (1-10000, librealsense#8243), so hil-serl's 10000 written as
`rgb_camera.exposure` is a 1 s exposure; the depth module's counts us. `exposure_us` takes
the time in us and gives the colour's sensor its own value; a manual exposure that does not
fit in a frame period is refused here, where the camera would lose frames.
"""
import math
import re
from typing import Any, Dict, Tuple

from hil_serl_reward.ros.drivers.common import DriverError, DriverNode, DriverSettings

PACKAGE = 'realsense2_camera'
EXECUTABLE = 'realsense2_camera_node'
NAMESPACE = 'camera'
DEFAULTS = {'width': 1280, 'height': 720, 'fps': 15.0, 'model': 'd435'}   # hil-serl's rig
# the driver block's fields node() reads
BLOCK_FIELDS = frozenset({'serial', 'model', 'width', 'height', 'fps', 'pixel_format',
                          'exposure_us', 'parameters'})
MODELS_WITHOUT_RGB_SENSOR = ('d405',)
# The first release that publishes a D405's colour as color/image_raw, not image_rect_raw.
D405_IMAGE_RAW_FROM = (4, 57, 4)
# The first release with a profile and a format parameter per stream (`<sensor>.color_profile`,
# `<sensor>.color_format`); before it, one `<sensor>.profile` and the colour in RGB8.
STREAM_PROFILES_FROM = (4, 55, 1)
# The unit and range of each sensor's `exposure` option, which the driver declares so (a
# value outside is refused with a warning and the sensor keeps its own): the RGB sensor's
# from librealsense#8243, the depth module's is a D435's (realsense-ros#1428), taken for the
# D405's too.
EXPOSURE_UNIT_US = {'rgb_camera': 100, 'depth_module': 1}
EXPOSURE_RANGE = {'rgb_camera': (1, 10000), 'depth_module': (1, 165000)}
# A manual exposure must end this long before the next frame is due, or the camera sends
# every other frame (realsense-ros#2612: a D405 at 30 fps halves its rate from about 32200
# of the period's 33333 us).
FRAME_HEADROOM_US = 1100
# The exposure a sensor keeps when auto exposure is turned off and none is given: a D405's
# 33000 us, which halves 30 fps (realsense-ros#2612).
MANUAL_DEFAULT = {'depth_module': 33000}
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
    per_stream = _release(settings) >= STREAM_PROFILES_FROM
    profile = f'{module}.color_profile' if per_stream else f'{module}.profile'
    if not per_stream and colour_format != 'RGB8':
        raise DriverError(f"cameras.{settings.key}.driver.pixel_format: realsense2_camera "
                          f"{settings.release} sends its colour in RGB8 (a format parameter "
                          f"came in 4.55.1), got '{settings.pixel_format}'")
    parameters: Dict[str, Any] = {
        'camera_name': name, 'enable_color': True, 'enable_depth': False,
        profile: f'{width}x{height}x{fps:g}',
        **({f'{module}.color_format': colour_format} if per_stream else {})}
    if settings.serial:
        parameters['serial_no'] = serial_number(settings)
    _check_sensor_names(settings, module)
    parameters.update(exposure_parameters(settings, module))
    parameters.update(settings.parameters)
    check_exposure(settings, module, parameters, fps)
    rectified = module == 'depth_module' and _release(settings) < D405_IMAGE_RAW_FROM
    return DriverNode(
        package=PACKAGE, executable=EXECUTABLE, name=name, namespace=NAMESPACE,
        parameters=parameters,
        image_topic=f"{NAMESPACE}/{name}/color/{'image_rect_raw' if rectified else 'image_raw'}",
        frame_id=f'{name}_color_optical_frame', encoding=FORMATS[colour_format],
        frame_size=_frame_size(parameters[profile]),
        keys=(settings.key,), identity_free=frozenset({'camera_name'}))


def _frame_size(profile: Any) -> Tuple[int, int]:
    """The colour profile's (width, height), the one given under `parameters:` too."""
    parsed = parse_profile(str(profile))
    return parsed['width'], parsed['height']


def _release(settings: DriverSettings) -> Tuple[float, ...]:
    """'4.56.1' -> (4, 56, 1); not known: the newest (a launch without the driver installed
    starts no driver)."""
    numbers = re.findall(r'\d+', settings.release)
    return tuple(map(int, numbers)) if numbers else (math.inf,)


def _check_sensor_names(settings: DriverSettings, module: str) -> None:
    """A D405 declares no `rgb_camera.*`: the driver would drop such a parameter unsaid."""
    stray = sorted(name for name in settings.parameters if name.startswith('rgb_camera.'))
    if module == 'depth_module' and stray:
        raise DriverError(f'cameras.{settings.key}.driver.parameters: a D405 has no RGB sensor '
                          f'(its colour comes from the depth module), so the driver would '
                          f"ignore {stray}: use depth_module.* (an exposure: exposure_us)")


def exposure_parameters(settings: DriverSettings, module: str) -> Dict[str, Any]:
    """`exposure_us` as the colour sensor's own parameters: auto exposure off, the time in
    that sensor's unit ({} without it: the driver's auto exposure)."""
    if not settings.exposure_us:
        return {}
    names = (f'{module}.exposure', f'{module}.enable_auto_exposure')
    given = sorted(set(names) & set(settings.parameters))
    if given:
        raise DriverError(f'cameras.{settings.key}.driver: exposure_us and parameters {given} '
                          f'both set the exposure; keep one')
    unit = EXPOSURE_UNIT_US[module]
    if settings.exposure_us % unit:
        raise DriverError(f'cameras.{settings.key}.driver.exposure_us: this camera\'s colour '
                          f'exposure goes in steps of {unit} us ({module}.exposure), got '
                          f'{settings.exposure_us}')
    return {names[1]: False, names[0]: settings.exposure_us // unit}


def check_exposure(settings: DriverSettings, module: str, parameters: Dict[str, Any],
                   fps: float) -> None:
    """A manual colour exposure (`<module>.exposure` unless auto exposure is asked for too)
    must be the sensor's whole number and fit in a frame period (and so in its range: the
    driver refuses a value outside with a warning, and the sensor keeps its own)."""
    value, auto = (parameters.get(f'{module}.{name}')
                   for name in ('exposure', 'enable_auto_exposure'))
    default = value is None and auto is False
    if default:
        value = MANUAL_DEFAULT.get(module)
    if value is None or auto is True:
        return
    where = f'cameras.{settings.key}.driver'
    unit, (lowest, highest) = EXPOSURE_UNIT_US[module], EXPOSURE_RANGE[module]
    in_range = (f'{module}.exposure must be a whole number in [{lowest}, {highest}] (steps '
                f'of {unit} us), got {value!r}')
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise DriverError(f'{where}: {in_range}')
    longest = int(1e6 / fps) - FRAME_HEADROOM_US
    if value * unit > longest:
        if settings.exposure_us:
            what = f'exposure_us {settings.exposure_us}'
        elif default:
            what = f"{module}.enable_auto_exposure false (the sensor's {value} us)"
        else:
            what = f'{module}.exposure {value}' + (
                f' ({value * unit} us: it counts {unit} us)' if unit != 1 else ' us')
        hint = '' if settings.exposure_us else (
            " hil-serl's per-camera `exposure` is in us: give it as exposure_us.")
        raise DriverError(f'{where}: {what} does not fit in a frame at {fps:g} fps (at most '
                          f'{longest} us): the camera would lose frames.{hint}')
    if value > highest:
        raise DriverError(f'{where}: {in_range}')
