"""The demo under ros2 launch: simulated cameras + reward node, no hardware.

    ros2 launch hil_serl_reward demo.launch.py [checkpoint_path:=/path/classifier_ckpt]

Without a checkpoint the node serves an untrained, randomly initialised classifier and
says so. `make demo` runs the same pipeline without the launch package.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from hil_serl_reward.ros.dds import PROFILE, profile_env
from hil_serl_reward.ros.launch_actions import shut_down_when_it_fails

PACKAGE = 'hil_serl_reward'


def launch_setup(context, *args, **kwargs):
    share = FindPackageShare(PACKAGE).perform(context)
    params_file = os.path.join(share, 'config', 'demo.yaml')
    checkpoint = LaunchConfiguration('checkpoint_path').perform(context)
    overrides = [{'checkpoint_path': checkpoint, 'random_init': False}] if checkpoint else []
    profile = profile_env(os.path.join(share, 'config', PROFILE))
    reward_node = Node(package=PACKAGE, executable='classifier_node', name=PACKAGE,
                       output='screen', parameters=[params_file, *overrides])
    return [
        *(SetEnvironmentVariable(name, value) for name, value in profile.items()),
        Node(package=PACKAGE, executable='camera_sim', name='camera_sim', output='screen',
             parameters=[params_file]),
        reward_node,
        shut_down_when_it_fails(reward_node),
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('checkpoint_path', default_value='',
                              description='trained classifier; empty = untrained demo model'),
        OpaqueFunction(function=launch_setup),
    ])
