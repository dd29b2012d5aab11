"""Reward node plus, optionally, the camera drivers of the params file's `driver` blocks.

    ros2 launch hil_serl_reward classifier.launch.py \
        params_file:=/path/rig.yaml checkpoint_path:=/path/classifier_ckpt start_cameras:=true

Each camera key's `cameras.<key>.driver` block in the params file says which driver serves it
(realsense, usb_cam, v4l2_camera or none), which device, size, rate and format, plus extra
driver parameters passed through unchanged; hil_serl_reward.ros.drivers knows each driver.
The launch arguments below override every block, for the common two-camera case:

    ros2 launch hil_serl_reward classifier.launch.py start_cameras:=true \
        camera_driver:=realsense serials:="wrist_1=130322270001,front=130322270002"

The node's camera topics come from the params file (cameras.<key>.topic); this file remaps
them to the drivers' topics (and `<topic>/compressed` for compressed cameras), so the params
file does not change with the driver. With `rigs` in the params file each rig's drivers start
in its namespace, the devices that tell the rigs apart named per rig:

    ros2 launch hil_serl_reward classifier.launch.py params_file:=two_rigs.yaml \
        start_cameras:=true camera_driver:=realsense \
        serials:="left/wrist_1=1303...01,left/front=1303...02,right/wrist_1=...,right/front=..."

When the reward node exits with an error (a bad checkpoint or params file) the launch shuts
down and `ros2 launch` exits 1.
"""
import os

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument, GroupAction, LogInfo, OpaqueFunction, SetEnvironmentVariable)
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

from hil_serl_reward.ros import drivers
from hil_serl_reward.ros.config import transport_topic
from hil_serl_reward.ros.dds import PROFILE, profile_env
from hil_serl_reward.ros.launch_actions import shut_down_when_it_fails
from hil_serl_reward.ros.params_file import NODE_NAME, node_parameters

PACKAGE = 'hil_serl_reward'

ARGUMENTS = [
    ('params_file', '', 'node parameters YAML (default: config/classifier.yaml of the package)'),
    ('checkpoint_path', '', 'overrides checkpoint_path of the params file when not empty'),
    ('namespace', '', 'namespace of the reward node and the camera drivers'),
    ('stages', '', 'several reward nodes, one per name (e.g. "stage_1,stage_2": hil-serl\'s '
     'multi-stage tasks), each in <namespace>/<name> with its own section of the params file '
     '(/**/<name>/hil_serl_reward: its checkpoint, threshold, cameras, crops); the cameras '
     'once, shared. Stages on the same cameras and crops: one node, its `stages` parameter '
     '(one backbone pass per set)'),
    ('log_level', 'info', 'debug, info, warn, error or fatal'),
    ('start_cameras', 'false', "start the cameras' drivers (cameras.<key>.driver blocks)"),
    ('camera_driver', '', f'overrides every driver.kind: one of {", ".join(drivers.KINDS)} '
     '(without it and without a driver block: realsense)'),
    ('serials', '', 'realsense: key=serial pairs, e.g. "wrist_1=130322270001,front=1303..."; '
     'with rigs <rig>/<key>=serial'),
    ('realsense_model', '', 'overrides driver.model: d435 (and every model with an RGB '
     'sensor) or d405 (colour from the depth module; topic color/image_rect_raw before '
     'realsense2_camera 4.57.4)'),
    ('color_profile', '', 'realsense: overrides size and rate as WxHxFPS (hil-serl: '
     '1280x720x15)'),
    ('devices', '', 'usb_cam / v4l2_camera: key=device pairs, e.g. "wrist_1=/dev/video0"; '
     'with rigs <rig>/<key>=device'),
    ('image_width', '', 'overrides driver.width of every camera'),
    ('image_height', '', 'overrides driver.height of every camera'),
    ('framerate', '', 'overrides driver.fps of every camera (usb_cam framerate, v4l2_camera '
     'time_per_frame, realsense profile)'),
    ('use_large_image_profile', 'true',
     'load config/fastdds_large_images.xml: the default Fast DDS shared-memory segment drops '
     'best-effort camera images'),
]


def _pairs(text: str) -> dict:
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(','))):
        key, _, value = item.partition('=')
        if not value:
            raise RuntimeError(f"expected key=value, got '{item}'")
        pairs[key.strip()] = value.strip()
    return pairs


def _number(text: str, kind: type) -> float:
    try:
        return kind(text) if text else 0
    except ValueError:
        raise RuntimeError(f"expected a number, got '{text}'") from None


def overrides_from(get: callable) -> drivers.Overrides:
    return drivers.Overrides(
        kind=get('camera_driver'), serials=_pairs(get('serials')), devices=_pairs(get('devices')),
        model=get('realsense_model'), color_profile=get('color_profile'),
        width=_number(get('image_width'), int), height=_number(get('image_height'), int),
        fps=_number(get('framerate'), float))


def driver_action(driver: drivers.DriverNode) -> Node:
    return Node(package=driver.package, executable=driver.executable, name=driver.name,
                namespace=driver.namespace, parameters=[driver.parameters], output='screen')


def launch_setup(context, *args, **kwargs):
    def get(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    share = FindPackageShare(PACKAGE).perform(context)
    params_file = get('params_file') or os.path.join(share, 'config', 'classifier.yaml')
    namespace = '/' + get('namespace').strip('/')
    stages = [name.strip() for name in get('stages').split(',') if name.strip()]
    if stages and get('checkpoint_path'):
        raise RuntimeError('checkpoint_path:= would give every stage the same checkpoint: '
                           'give each stage its own in the params file '
                           '(/**/<stage>/hil_serl_reward: checkpoint_path: ...)')
    stage_params = {stage: node_parameters(params_file, NODE_NAME,
                                           f"{namespace.rstrip('/')}/{stage}" if stage
                                           else namespace)
                    for stage in stages or ['']}
    params = next(iter(stage_params.values()))      # the cameras: the first stage's blocks
    keys = params.get('image_keys', ['wrist_1', 'front'])
    actions = []
    if get('use_large_image_profile').lower() == 'true':
        for variable, value in profile_env(os.path.join(share, 'config', PROFILE)).items():
            actions.append(SetEnvironmentVariable(variable, value))
    driver_topics = {}                  # rig ('' without rigs) -> camera key -> topic
    if get('start_cameras').lower() == 'true' and get('camera_driver') != 'none':
        releases = drivers.installed_releases()
        try:
            nodes, driver_topics = drivers.plan_rigs(params, keys, params.get('rigs') or [''],
                                                     overrides_from(get), releases)
        except drivers.DriverError as exc:
            raise RuntimeError(f'{params_file}: {exc}') from None
        try:
            drivers.check_installed(nodes, releases)
        except drivers.DriverError as exc:
            raise RuntimeError(str(exc)) from None
        actions += [LogInfo(msg=note) for driver in nodes for note in driver.notes]
        actions += [driver_action(driver) for driver in nodes]
    overrides = [{'checkpoint_path': get('checkpoint_path')}] if get('checkpoint_path') else []
    for stage, values in stage_params.items():
        remappings = []
        for rig, topics in driver_topics.items():
            for key, topic in topics.items():
                own_topic = values.get(f'cameras.{key}.topic', f'{key}/image_raw')
                compressed = bool(values.get(f'cameras.{key}.compressed', False))
                # a stage's node sits one namespace below the drivers: their topics, absolute
                target = topic if not stage else f"{namespace.rstrip('/')}/{topic.lstrip('/')}"
                remappings.append((transport_topic(f'{rig}/{own_topic}' if rig else own_topic,
                                                   compressed),
                                   transport_topic(target, compressed)))
        reward_node = Node(
            package=PACKAGE, executable='classifier_node', name=PACKAGE, output='screen',
            namespace=stage or None, parameters=[params_file, *overrides],
            remappings=remappings, arguments=['--ros-args', '--log-level', get('log_level')])
        actions += [reward_node, shut_down_when_it_fails(reward_node)]
    if get('namespace'):
        return [GroupAction([PushRosNamespace(get('namespace')), *actions])]
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, default, description in ARGUMENTS]
    return LaunchDescription(declared + [OpaqueFunction(function=launch_setup)])
