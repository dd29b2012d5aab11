"""`ros2 launch hil_serl_reward classifier.launch.py start_cameras:=true` for each driver and a
mixed rig, under launch_testing, against the driver stand-ins (driver_standins.py) installed
under the real package and executable names in an ament overlay.

Each rig must deliver rewards within seconds of start-up and every process (the stand-ins
included: one given a parameter its driver lacks exits 1) must exit 0. Runs where
launch_testing and the installed package are (make upstream-test); skipped elsewhere.
"""
import os
import tempfile
import unittest
import uuid
from pathlib import Path

import pytest
import yaml

launch_testing = pytest.importorskip(
    'launch_testing', reason='launch_testing is not installed here (it is on every ROS 2 '
    'install; make upstream-test installs it)')
import launch  # noqa: E402
import launch_testing.asserts  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402

from driver_standins import REALSENSE_RELEASE, make_overlay  # noqa: E402
from launch_support import error_lines, installed_share, receive  # noqa: E402

NAMESPACE = f'/drivers_test_{uuid.uuid4().hex[:8]}'
SHARE = installed_share()
WORK = Path(tempfile.mkdtemp(prefix='hil_serl_drivers_'))
SMALL = {'width': 320, 'height': 240, 'fps': 15}


class Unquoted(str):
    """A number written into the params file as a user types it, without quotes."""


yaml.SafeDumper.add_representer(
    Unquoted, lambda dumper, text: dumper.represent_scalar('tag:yaml.org,2002:int', text))


def node_section(cameras: dict) -> dict:
    return {'ros__parameters': {
        'random_init': True, 'checkpoint_path': '', 'image_keys': list(cameras),
        'threshold': 0.5, 'camera_timeout': 5.0, 'cameras': cameras}}


# rig -> (params file, launch arguments, stand-in environment[, reward topics])
RIGS = {
    # serials as users write them: a number, one with a leading zero (YAML: octal), a string;
    # hil-serl's exposures (us) on the D405's depth module and the D435's RGB sensor
    'realsense_d405_d435': ({'/**': node_section({
        'wrist_1': {'crop': '20:-20, 40:-40', 'driver': {
            'kind': 'realsense', 'serial': Unquoted('036522070660'), 'model': 'd405',
            'exposure_us': 40000, **SMALL}},
        'front': {'driver': {'kind': 'realsense', 'serial': '130322270002', **SMALL,
                             'exposure_us': 10000}}})},
        {}, {'STANDIN_REALSENSE_DEVICES': '036522070660:d405,130322270002:d435'}),
    # a D405 on a realsense2_camera before 4.57.4, which published its colour as
    # color/image_rect_raw (the release is read from the installed package.xml)
    'realsense_d405_before_4_57_4': ({'/**': node_section({
        'wrist_1': {'driver': {'kind': 'realsense', 'serial': '11', 'model': 'd405', **SMALL}},
        'front': {'driver': {'kind': 'realsense', 'serial': '12', **SMALL}}})},
        {}, {'STANDIN_REALSENSE_DEVICES': '11:d405,12:d435',
             'STANDIN_REALSENSE_RELEASE': '4.56.1'}),
    'usb_cam_yuyv': ({'/**/hil_serl_reward': node_section({
        key: {'driver': {'kind': 'usb_cam', 'device': f'/dev/video{i}',
                         'pixel_format': 'yuyv', **SMALL}}
        for i, key in enumerate(('wrist_1', 'front'))})}, {}, {}),
    'v4l2_camera_one_compressed': ({'/**': node_section({
        'wrist_1': {'driver': {'kind': 'v4l2_camera', 'device': '/dev/video0', **SMALL}},
        'front': {'compressed': True, 'driver': {'kind': 'v4l2_camera',
                                                 'device': '/dev/video1', **SMALL}}})}, {}, {}),
    # object_handover's shape: one node per stage, each with its section (threshold here),
    # both on the same two cameras, started once
    'two_stages': ({'/**': node_section({
        key: {'driver': {'kind': 'usb_cam', 'device': f'/dev/video{i}', **SMALL}}
        for i, key in enumerate(('wrist_1', 'front'))}),
        '/**/stage_2/hil_serl_reward': {'ros__parameters': {'threshold': 0.75}}},
        {'stages': 'stage_1,stage_2'}, {}, ('stage_1/reward', 'stage_2/reward')),
    # the same task as one node serving both stages: one backbone pass per set; checkpoints
    # written at launch (STAGE_CHECKPOINTS), each stage's threshold its own
    'stages_in_one_node': ({'/**': {'ros__parameters': {
        **node_section({key: {'driver': {'kind': 'usb_cam', 'device': f'/dev/video{i}', **SMALL}}
                        for i, key in enumerate(('wrist_1', 'front'))})['ros__parameters'],
        'stages': ['grasp', 'place'], 'place': {'threshold': 0.75}}}},
        {}, {}, ('grasp/reward', 'place/reward')),
    'launch_arguments_only': ({'/**': node_section({k: {'topic': f'{k}/image_raw'}
                                                    for k in ('wrist_1', 'front')})},
                              {'camera_driver': 'realsense', 'color_profile': '320x240x15',
                               'serials': 'wrist_1=11,front=12'},
                              {'STANDIN_REALSENSE_DEVICES': '11:d435,12:d435'}),
    # two robots on one node: each rig's RealSense pair in its namespace, serials per rig
    'two_rigs': ({'/**': {'ros__parameters': {
        **node_section({k: {'driver': {'kind': 'realsense', **SMALL}}
                        for k in ('wrist_1', 'front')})['ros__parameters'],
        'rigs': ['left', 'right']}}},
        {'serials': 'left/wrist_1=21,left/front=22,right/wrist_1=23,right/front=24'},
        {'STANDIN_REALSENSE_DEVICES': '21:d435,22:d435,23:d435,24:d435'},
        ('left/reward', 'right/reward')),
}


def test_needs_the_package_installed():
    """launch_testing's collector imports every test module (a module-level skip would skip
    the whole folder): this says why the launch tests below are absent."""
    if SHARE is None:
        pytest.skip('hil_serl_reward is not installed in an ament prefix (colcon build, '
                    'then source install/setup.bash): no launch test')


def stage_checkpoints(params, folder):
    """`params` with a checkpoint written for each of its stages (random weights, one
    backbone: trained as hil-serl trains them)."""
    from hil_serl_reward.model.checkpoint import save_checkpoint
    from hil_serl_reward.model.reward_classifier import ClassifierSpec, init_params
    from hil_serl_reward.model.stages import split_backbones, with_backbones
    node = params['/**']['ros__parameters']
    spec = ClassifierSpec(tuple(node['image_keys']))
    backbone = split_backbones(init_params(spec, 0), spec)[1]
    for seed, stage in enumerate(node['stages'], start=1):
        path = folder / stage
        save_checkpoint(path, with_backbones(split_backbones(init_params(spec, seed), spec)[0],
                                             backbone, spec), spec, step=seed)
        node[stage] = {**node.get(stage, {}), 'checkpoint_path': str(path)}
    return params


def _launch_description(rig):
    params, arguments, env = RIGS[rig][:3]
    folder = WORK / rig
    folder.mkdir(exist_ok=True)
    params_file = folder / 'rig.yaml'
    if rig == 'stages_in_one_node':
        params = stage_checkpoints(params, folder)
    params_file.write_text(yaml.safe_dump(params))
    os.environ.update({'STANDIN_VIDEO_DEVICES': '/dev/video0,/dev/video1',
                       'STANDIN_LOCK_DIR': str(folder), 'STANDIN_REALSENSE_DEVICES': '',
                       'STANDIN_REALSENSE_RELEASE': REALSENSE_RELEASE, **env})
    overlay = make_overlay(WORK / 'overlay')        # the realsense release the rig plays
    os.environ['AMENT_PREFIX_PATH'] = f"{overlay}:{os.environ.get('AMENT_PREFIX_PATH', '')}"
    reward = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(SHARE, 'launch', 'classifier.launch.py')),
        launch_arguments={'params_file': str(params_file), 'start_cameras': 'true',
                          'namespace': NAMESPACE, **arguments}.items())
    return launch.LaunchDescription([reward, launch_testing.actions.ReadyToTest()])


if SHARE is not None:           # a launch test module only where the package is installed
    generate_test_description = pytest.mark.launch_test(
        launch_testing.parametrize('rig', list(RIGS))(_launch_description))

    class TestRewardsArrive(unittest.TestCase):
        def test_rewards_within_seconds(self, rig):
            topics = RIGS[rig][3] if len(RIGS[rig]) > 3 else ('reward',)
            received = receive(NAMESPACE, {topic: Float32 for topic in topics},
                               lambda got: all(len(got[t]) >= 10 for t in topics), 120)
            for topic in topics:
                self.assertGreaterEqual(len(received[topic]), 10,
                                        f'rig {rig}: too few messages on {topic}')

    @launch_testing.post_shutdown_test()
    class TestCleanShutdown(unittest.TestCase):
        def test_every_process_exits_0(self, proc_info, rig):
            launch_testing.asserts.assertExitCodes(proc_info)

        def test_no_error_line(self, proc_output, rig):
            self.assertEqual(error_lines(proc_output), [])
