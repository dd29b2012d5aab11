"""Camera drivers the launch file can start, one module per driver (no launch, no rclpy).

Each camera key may carry a `driver` block in the params YAML (README "Camera drivers"):

    cameras:
      wrist_1:
        driver: {kind: realsense, serial: "218622270001", model: d405, fps: 15}
      front:
        driver:
          kind: usb_cam
          device: /dev/video2
          parameters: {brightness: 128}     # passed to the driver unchanged

`plan()` turns those blocks (with the launch arguments as overrides) into the driver nodes
to start and the topic each camera key is remapped to. Two keys naming one physical camera
(the same serial or device, or `same_as: <key>`) share one driver: two crops of one view.
`plan_rigs()` does it for a node serving several rigs (its `rigs` parameter): each rig's
drivers in the rig's namespace, its devices from the launch arguments' `<rig>/<key>` entries,
and no camera opened by two rigs. The installed drivers' releases (`installed_releases()`,
read by the launch file) decide where a release changed what a driver publishes, and
`check_installed()` refuses a driver that is not installed before any process starts.
What each driver is called, which parameters it declares and what it publishes lives in its
own module (realsense.py, usb_cam.py, v4l2_camera.py) and in docs/camera-drivers.md.
"""
import dataclasses
import difflib
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from hil_serl_reward.pipeline.preprocessing import CropError, parse_frame_size
from hil_serl_reward.ros.drivers import realsense, usb_cam, v4l2_camera
from hil_serl_reward.ros.drivers.common import DriverError, DriverNode, DriverSettings
from hil_serl_reward.ros.params_file import without_text

DRIVERS = {'realsense': realsense, 'usb_cam': usb_cam, 'v4l2_camera': v4l2_camera}
KINDS = (*DRIVERS, 'none')
DEFAULT_KIND = 'realsense'              # hil-serl's cameras
_TYPES = {field.name: field.type for field in dataclasses.fields(DriverSettings)}
_NOT_WRITTEN = ('key', 'parameters', 'release')
FIELDS = tuple(name for name in _TYPES if name not in _NOT_WRITTEN) + ('parameters',)
# A block's fields in one driver's own words (its format names, its parameters): never
# another driver's, even where both have a field of that name.
_ONE_DRIVERS_WORDS = ('pixel_format', 'parameters')
_EMPTY = DriverSettings(key='')

__all__ = ['DRIVERS', 'KINDS', 'DriverError', 'DriverNode', 'DriverSettings', 'Overrides',
           'check_installed', 'installed_releases', 'plan', 'plan_rigs', 'ros_name',
           'settings_from']


def installed_releases() -> Dict[str, str]:
    """Each installed driver package's release, from its package.xml (ament index): what a
    driver publishes can change between releases (realsense.py)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    releases = {}
    for module in DRIVERS.values():
        try:
            share = get_package_share_directory(module.PACKAGE)
        except PackageNotFoundError:
            continue
        with open(f'{share}/package.xml', encoding='utf-8') as manifest:
            found = re.search(r'<version>\s*([^<\s]+)\s*</version>', manifest.read())
        releases[module.PACKAGE] = found.group(1) if found else ''
    return releases


def check_installed(nodes: Sequence[DriverNode], releases: Mapping[str, str]) -> None:
    """Refuses driver nodes whose package is not in `releases` (installed_releases(): not on
    AMENT_PREFIX_PATH). launch_ros would fail on the first such node only once the drivers
    before it had started, with `package 'realsense2_camera' not found, searching: [...]`,
    which names neither the camera nor the install command (the apt name differs)."""
    missing: Dict[str, List[str]] = {}
    for node in nodes:
        if node.package not in releases:
            missing.setdefault(node.package, []).extend(node.keys)
    if not missing:
        return
    said = '; '.join(
        f"cameras {', '.join(keys)}: {package} is not installed (not on AMENT_PREFIX_PATH): "
        f"`sudo apt install ros-$ROS_DISTRO-{package.replace('_', '-')}`"
        for package, keys in missing.items())
    raise DriverError(f'{said}; or `rosdep install --from-paths src --ignore-src -y` in the '
                      f'workspace (package.xml names every driver); a driver built from '
                      f'source: source its workspace first; camera_driver:=none starts no '
                      f'driver (cameras run by hand)')


def ros_name(key: str) -> str:
    """A camera key as a valid ROS node name / namespace token: 'left/side_classifier' ->
    'left_side_classifier' (a '/' is invalid in a node name)."""
    name = re.sub(r'[^A-Za-z0-9_]', '_', key)
    return name if name[:1].isalpha() else f'camera_{name}'


def _typed(key: str, field: str, value: Any) -> Any:
    kind = _TYPES[field]
    where = f"cameras.{key}.driver.{field}"
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DriverError(f'{where}: expected a whole number >= 0, got {value!r}')
        return int(value)                   # not a WrittenInt: launch_ros dumps it to YAML
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise DriverError(f'{where}: expected a number >= 0, got {value!r}')
        return float(value)
    if isinstance(value, (dict, list, bool)):
        raise DriverError(f'{where}: expected a string, got {value!r}')
    # a serial number written unquoted arrives as a number; with a leading zero, as the
    # octal (or decimal) number rcl reads (params_file.WrittenInt/WrittenFloat keep the text)
    return getattr(value, 'written', str(value))


def settings_from(values: Mapping[str, Any], key: str) -> Optional[DriverSettings]:
    """The `cameras.<key>.driver` block of flattened params, or None when there is none."""
    prefix = f'cameras.{key}.driver.'
    block = {name[len(prefix):]: value for name, value in values.items()
             if name.startswith(prefix)}
    if not block:
        return None
    fields: Dict[str, Any] = {}
    parameters: Dict[str, Any] = {}
    for name, value in block.items():
        if name.startswith('parameters.'):
            parameters[name[len('parameters.'):]] = without_text(value)
            continue
        if name not in _TYPES or name in _NOT_WRITTEN:
            nearest = difflib.get_close_matches(name, FIELDS, n=1)
            hint = f" (did you mean '{nearest[0]}'?)" if nearest else ''
            raise DriverError(f"cameras.{key}.driver.{name}: unknown field{hint}; a driver "
                              f"block takes {', '.join(FIELDS)}")
        fields[name] = _typed(key, name, value)
    return DriverSettings(key=key, parameters=parameters, **fields)


@dataclasses.dataclass(frozen=True)
class Overrides:
    """The launch arguments that override every camera's block (empty = not given)."""

    kind: str = ''
    serials: Mapping[str, str] = dataclasses.field(default_factory=dict)
    devices: Mapping[str, str] = dataclasses.field(default_factory=dict)
    model: str = ''
    color_profile: str = ''
    width: int = 0
    height: int = 0
    fps: float = 0.0

    def apply(self, settings: DriverSettings, rig: str = '') -> DriverSettings:
        """`rig`'s serial and device entries are `<rig>/<key>=...`; a plain `<key>=...`
        names one camera for every rig (which plan_rigs refuses, saying so)."""
        kind = self.kind or settings.kind or DEFAULT_KIND
        changes: Dict[str, Any] = {'kind': kind}
        changes.update({field: getattr(_EMPTY, field)
                        for field in _fields_for_another_driver(settings, kind)})
        for field, entries in (('serial', self.serials), ('device', self.devices)):
            for entry in (f'{rig}/{settings.key}', settings.key) if rig else (settings.key,):
                if entry in entries:
                    changes[field] = entries[entry]
                    break
        if self.model:
            changes['model'] = self.model
        for field in ('width', 'height', 'fps'):
            if getattr(self, field):
                changes[field] = getattr(self, field)
        if self.color_profile and kind == 'realsense':
            changes.update(realsense.parse_profile(self.color_profile))
        return dataclasses.replace(settings, **changes)


def _fields_for_another_driver(settings: DriverSettings, kind: str) -> List[str]:
    """The fields of a block written for another driver than `kind` (camera_driver:=usb_cam
    over config/classifier.yaml's RealSense blocks) that `kind`'s driver would misread or
    refuse: those it does not read (a serial, a RealSense exposure) and those in a driver's
    own words (pixel_format, parameters). Its size, rate and names stay. None where `kind` is
    the block's own."""
    if kind == (settings.kind or DEFAULT_KIND) or kind not in DRIVERS:
        return []
    reads = DRIVERS[kind].BLOCK_FIELDS | {'kind', 'name', 'same_as'}   # the planner's three
    return [field for field in FIELDS if getattr(settings, field) != getattr(_EMPTY, field)
            and (field in _ONE_DRIVERS_WORDS or field not in reads)]


def plan(values: Mapping[str, Any], keys: Sequence[str], overrides: Overrides = Overrides(),
         releases: Mapping[str, str] = {}) -> Tuple[List[DriverNode], Dict[str, str]]:
    """(driver nodes to start, camera key -> the image topic its driver publishes, relative
    to the launch namespace). Keys whose driver kind is 'none' are left out of both.
    `releases`: the installed drivers' (installed_releases); a driver not in it is taken
    to be of the newest release read."""
    nodes, topics = plan_rigs(values, keys, [''], overrides, releases)
    return nodes, topics['']


def plan_rigs(values: Mapping[str, Any], keys: Sequence[str], rigs: Sequence[str],
              overrides: Overrides = Overrides(), releases: Mapping[str, str] = {}
              ) -> Tuple[List[DriverNode], Dict[str, Dict[str, str]]]:
    """plan() for each rig of a node serving several (rig '': a node without rigs): (every
    driver node, rig -> camera key -> image topic, relative to the launch namespace). A
    rig's drivers sit in its namespace (`left/camera/...`) and are named `<rig>_<key>`, so
    that two rigs' frame ids differ.
    The params file's driver blocks are every rig's; the devices that tell the rigs apart
    come from the launch arguments (`serials:="left/wrist_1=...,right/wrist_1=..."`)."""
    opened: Dict[str, Tuple[str, DriverNode]] = {}       # identity -> the rig opening it
    topics: Dict[str, Dict[str, str]] = {}
    for rig in rigs:
        try:
            nodes, topics[rig] = _plan(values, keys, overrides, releases, rig)
        except DriverError as exc:
            if not rig:
                raise
            raise DriverError(f"rig '{rig}': {exc} (with rigs, launch arguments name "
                              f"<rig>/<key>)") from None
        for identity, node in nodes.items():
            if identity in opened:
                other, first = opened[identity]
                raise DriverError(
                    f"rigs '{other}' and '{rig}' would both open {identity} (cameras "
                    f"{list(first.keys)}): give each rig's cameras their own, e.g. "
                    f'serials:="{other}/{first.keys[0]}=...,{rig}/{node.keys[0]}=..." '
                    f'(realsense) or devices:= (usb_cam, v4l2_camera)')
            opened[identity] = (rig, node)
    _check_unopened_devices([node for _, node in opened.values()])
    return [node for _, node in opened.values()], topics


def _plan(values: Mapping[str, Any], keys: Sequence[str], overrides: Overrides,
          releases: Mapping[str, str], rig: str = ''
          ) -> Tuple[Dict[str, DriverNode], Dict[str, str]]:
    """(driver nodes by the physical camera they open, camera key -> image topic)."""
    settings = {}
    left_out: Dict[str, str] = {}               # key -> what camera_driver:= left out of it
    for key in keys:
        written = settings_from(values, key) or DriverSettings(key=key)
        block = overrides.apply(written, rig)  # the launch arguments, then the default kind
        if block.kind not in KINDS:
            raise DriverError(f"cameras.{key}.driver.kind: one of {list(KINDS)}, got "
                              f"'{block.kind}'")
        dropped = _fields_for_another_driver(written, block.kind)
        if dropped:
            own = written.kind or DEFAULT_KIND
            left_out[key] = (f"cameras.{key}: camera_driver:={block.kind} over its {own} "
                             f"block: {', '.join(dropped)} left out (the {own} driver's)")
        size = _crop_frame_size(values, key)
        if size and not block.width and not block.height:   # not the driver's own default
            block = dataclasses.replace(block, width=size[0], height=size[1])
        settings[key] = block
    _check_names(keys)
    nodes: Dict[str, DriverNode] = {}           # by the physical camera it opens
    topics: Dict[str, str] = {}
    owner: Dict[str, str] = {}                  # key -> identity of its driver
    for key in keys:
        block = settings[key]
        if block.kind == 'none' or block.same_as:
            continue
        module = DRIVERS[block.kind]
        block = dataclasses.replace(block, release=releases.get(module.PACKAGE, ''))
        node = module.node(ros_name(f'{rig}_{block.name or key}' if rig else block.name or key),
                           block)
        if key in left_out:
            node = dataclasses.replace(node, notes=(left_out[key], *node.notes))
        if rig:
            node = dataclasses.replace(node, namespace=f'{rig}/{node.namespace}',
                                       image_topic=f'{rig}/{node.image_topic}')
        identity = module.identity(block) or f'{block.kind}:{rig}/{key}'
        if identity in nodes:
            _merge(nodes[identity], node, key, identity)
            nodes[identity] = dataclasses.replace(nodes[identity],
                                                  keys=nodes[identity].keys + (key,))
        else:
            nodes[identity] = node
        owner[key] = identity
    for key in keys:
        block = settings[key]
        if block.same_as:
            if block.same_as not in owner:
                raise DriverError(f"cameras.{key}.driver.same_as: '{block.same_as}' is not a "
                                  f'camera key with a driver of its own ({sorted(owner)})')
            owner[key] = owner[block.same_as]
            identity = owner[key]
            nodes[identity] = dataclasses.replace(nodes[identity],
                                                  keys=nodes[identity].keys + (key,))
    for key, identity in owner.items():
        topics[key] = nodes[identity].image_topic
        _check_frame_size(values, key, nodes[identity])
    return nodes, topics


def _crop_frame_size(values: Mapping[str, Any], key: str) -> Optional[Tuple[int, int]]:
    """cameras.<key>.frame_size, the (width, height) the key's crop is written for: what a
    block without a size asks the camera for (usb_cam's and v4l2_camera's own 640x480 would
    be refused below); None when not given, or not valid (the node refuses it at start-up,
    saying why)."""
    try:
        return parse_frame_size(values.get(f'cameras.{key}.frame_size'))
    except CropError:
        return None


def _check_frame_size(values: Mapping[str, Any], key: str, node: DriverNode) -> None:
    """The driver must ask the camera for the frame size the key's crop is written for
    (cameras.<key>.frame_size, when given): the node refuses frames of another size."""
    wanted = _crop_frame_size(values, key)
    if wanted is not None and wanted != node.frame_size:
        raise DriverError(
            f'cameras.{key}.driver asks the camera for {node.frame_size[0]}x'
            f'{node.frame_size[1]} frames, but cameras.{key}.frame_size is {wanted[0]}x'
            f'{wanted[1]}, the size its crop is written for (the node would refuse every '
            f'frame): give the driver block width {wanted[0]} and height {wanted[1]}, or '
            f'frame_size and the crop for the other size')


def _check_names(keys: Sequence[str]) -> None:
    seen: Dict[str, str] = {}
    for key in keys:
        name = ros_name(key)
        if name in seen:
            raise DriverError(f"camera keys '{seen[name]}' and '{key}' both become the ROS name "
                              f"'{name}': rename one, or set driver.name for one of them")
        seen[name] = key


def _merge(first: DriverNode, second: DriverNode, key: str, identity: str) -> None:
    differ = sorted(name for name in set(first.parameters) | set(second.parameters)
                    if name not in first.identity_free and
                    first.parameters.get(name) != second.parameters.get(name))
    if differ:
        raise DriverError(f"cameras '{first.keys[0]}' and '{key}' open the same camera "
                          f"({identity}) with different settings ({', '.join(differ)}): one "
                          f"driver serves both; give '{key}' `same_as: {first.keys[0]}`")


def _check_unopened_devices(nodes: List[DriverNode]) -> None:
    """Two RealSense drivers without serial_no both open the first device found."""
    anonymous = [n.keys[0] if n.namespace == realsense.NAMESPACE
                 else f"{n.namespace.split('/')[0]}/{n.keys[0]}"           # a rig's camera
                 for n in nodes if n.package == realsense.PACKAGE
                 and not n.parameters.get('serial_no')]
    if len(anonymous) > 1:
        raise DriverError(f'cameras {anonymous} are RealSense cameras without a serial: each '
                          f'driver would open the same first device; set driver.serial for '
                          f'each (or serials:="key=serial,...", with rigs "<rig>/<key>=..."); '
                          f'`rs-enumerate-devices -s` lists them')
