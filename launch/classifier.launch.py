"""Reward node plus, optionally, one camera driver per camera key.

    ros2 launch hil_serl_reward classifier.launch.py \
        params_file:=/path/rig.yaml checkpoint_path:=/path/classifier_ckpt \
        start_cameras:=true camera_driver:=realsense \
        serials:="wrist_1=130322270001,front=130322270002"

The node's camera topics come from the params file (cameras.<key>.topic); when this file
starts drivers it remaps those names to the drivers' topics, so the params file does not
change with the driver. camera_driver:=none (or start_cameras:=false) leaves the topics to
whatever already publishes them. When the reward node exits with an error (a bad checkpoint
or params file) the launch shuts down and `ros2 launch` exits 1.
"""
import os

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument, GroupAction, OpaqueFunction, SetEnvironmentVariable)
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

from hil_serl_reward.ros.dds import PROFILE, profile_env
from hil_serl_reward.ros.launch_actions import shut_down_when_it_fails
from hil_serl_reward.ros.params_file import read_node_parameters

PACKAGE = 'hil_serl_reward'
DRIVERS = ('realsense', 'usb_cam', 'v4l2_camera', 'none')

ARGUMENTS = [
    ('params_file', '', 'node parameters YAML (default: config/classifier.yaml of the package)'),
    ('checkpoint_path', '', 'overrides checkpoint_path of the params file when not empty'),
    ('namespace', '', 'namespace of the reward node and the camera drivers'),
    ('log_level', 'info', 'debug, info, warn, error or fatal'),
    ('start_cameras', 'false', 'start one camera driver per camera key'),
    ('camera_driver', 'realsense', f'one of {", ".join(DRIVERS)}'),
    ('serials', '', 'realsense: key=serial pairs, e.g. "wrist_1=130322270001,front=1303..."'),
    ('realsense_model', 'd435', 'd435 (separate RGB sensor) or d405 (colour from the depth '
     'module: depth_module.color_profile, topic color/image_rect_raw)'),
    ('color_profile', '1280x720x15', 'realsense colour profile WxHxFPS (hil-serl: 1280x720, 15)'),
    ('devices', '', 'usb_cam / v4l2_camera: key=device pairs, e.g. "wrist_1=/dev/video0"'),
    ('image_width', '640', 'usb_cam / v4l2_camera width'),
    ('image_height', '480', 'usb_cam / v4l2_camera height'),
    ('framerate', '30.0', 'usb_cam frame rate'),
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


def camera_driver(driver: str, key: str, get: callable) -> tuple:
    """(driver Node, the topic its colour image appears on, relative to the namespace)."""
    if driver == 'realsense':
        serials = _pairs(get('serials'))
        d405 = get('realsense_model').lower() == 'd405'
        profile_param = 'depth_module.color_profile' if d405 else 'rgb_camera.color_profile'
        params = {'camera_name': key, 'enable_color': True, 'enable_depth': False,
                  profile_param: get('color_profile')}
        if key in serials:
            params['serial_no'] = serials[key]
        topic = f"camera/{key}/color/{'image_rect_raw' if d405 else 'image_raw'}"
        return Node(package='realsense2_camera', executable='realsense2_camera_node',
                    name=key, namespace='camera', parameters=[params], output='screen'), topic
    devices = _pairs(get('devices'))
    if key not in devices:
        raise RuntimeError(f"camera_driver:={driver} needs devices:=\"{key}=/dev/videoN,...\"")
    width, height = int(get('image_width')), int(get('image_height'))
    if driver == 'usb_cam':
        params = {'video_device': devices[key], 'image_width': width, 'image_height': height,
                  'framerate': float(get('framerate')), 'camera_name': key}
        return Node(package='usb_cam', executable='usb_cam_node_exe', name='usb_cam',
                    namespace=f'camera/{key}', parameters=[params], output='screen'), \
            f'camera/{key}/image_raw'
    params = {'video_device': devices[key], 'image_size': [width, height]}
    return Node(package='v4l2_camera', executable='v4l2_camera_node', name='v4l2_camera',
                namespace=f'camera/{key}', parameters=[params], output='screen'), \
        f'camera/{key}/image_raw'


def launch_setup(context, *args, **kwargs):
    def get(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    share = FindPackageShare(PACKAGE).perform(context)
    params_file = get('params_file') or os.path.join(share, 'config', 'classifier.yaml')
    params = read_node_parameters(params_file)
    keys = params.get('image_keys', ['wrist_1', 'front'])
    actions = []
    if get('use_large_image_profile').lower() == 'true':
        for variable, value in profile_env(os.path.join(share, 'config', PROFILE)).items():
            actions.append(SetEnvironmentVariable(variable, value))
    driver = get('camera_driver')
    if driver not in DRIVERS:
        raise RuntimeError(f"camera_driver must be one of {DRIVERS}, got '{driver}'")
    remappings = []
    if get('start_cameras').lower() == 'true' and driver != 'none':
        for key in keys:
            node, topic = camera_driver(driver, key, get)
            actions.append(node)
            own_topic = params.get(f'cameras.{key}.topic', f'{key}/image_raw')
            remappings.append((own_topic, topic))
    overrides = [{'checkpoint_path': get('checkpoint_path')}] if get('checkpoint_path') else []
    reward_node = Node(
        package=PACKAGE, executable='classifier_node', name=PACKAGE, output='screen',
        parameters=[params_file, *overrides], remappings=remappings,
        arguments=['--ros-args', '--log-level', get('log_level')])
    actions += [reward_node, shut_down_when_it_fails(reward_node)]
    if get('namespace'):
        return [GroupAction([PushRosNamespace(get('namespace')), *actions])]
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, default, description in ARGUMENTS]
    return LaunchDescription(declared + [OpaqueFunction(function=launch_setup)])
