"""The driver blocks of a params file become driver nodes and remaps (no launch needed), and
what those nodes are given is what the stand-ins, built from each driver's source, accept."""
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml

from hil_serl_reward.ros import drivers
from hil_serl_reward.ros.drivers import DriverError, Overrides, plan, plan_rigs
from hil_serl_reward.ros.params_file import flatten, read_node_parameters

HERE = Path(__file__).resolve().parent
KEYS = ['wrist_1', 'front']


def params(cameras: dict) -> dict:
    return flatten({'cameras': {key: {'driver': block} for key, block in cameras.items()}})


def test_a_mixed_d405_and_d435_rig():
    nodes, topics = plan(params({
        'wrist_1': {'kind': 'realsense', 'serial': 218622270001, 'model': 'd405'},
        'front': {'kind': 'realsense', 'serial': '130322270002', 'fps': 15,
                  'parameters': {'rgb_camera': {'exposure': 300}}}}), KEYS)
    wrist, front = nodes
    assert wrist.parameters['serial_no'] == '218622270001'   # unquoted YAML: an int, sent as str
    assert wrist.parameters['depth_module.color_profile'] == '1280x720x15'
    assert 'rgb_camera.color_profile' not in wrist.parameters
    assert front.parameters['rgb_camera.color_profile'] == '1280x720x15'
    assert front.parameters['rgb_camera.exposure'] == 300
    assert topics == {'wrist_1': 'camera/wrist_1/color/image_raw',
                      'front': 'camera/front/color/image_raw'}
    assert (wrist.name, wrist.namespace) == ('wrist_1', 'camera')


@pytest.mark.parametrize('release, topic', [
    ('4.56.1', 'image_rect_raw'), ('4.57.3', 'image_rect_raw'), ('4.57.4', 'image_raw'),
    ('4.58.2', 'image_raw')])
def test_a_d405s_colour_topic_follows_the_installed_release(release, topic):
    """realsense-ros PR #3437 (4.57.4): a D405's colour is no longer published as
    rectified. A D435's topic never changed."""
    _, topics = plan(params({'wrist_1': {'kind': 'realsense', 'serial': '1', 'model': 'd405'},
                             'front': {'kind': 'realsense', 'serial': '2'}}), KEYS,
                     releases={'realsense2_camera': release, 'usb_cam': '0.8.1'})
    assert topics == {'wrist_1': f'camera/wrist_1/color/{topic}',
                      'front': 'camera/front/color/image_raw'}


def test_a_driver_not_installed_is_named_with_its_apt_package():
    nodes, _ = plan(params({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0'},
                            'front': {'kind': 'realsense', 'serial': '2'}}), KEYS)
    drivers.check_installed(nodes, {'usb_cam': '0.8.1', 'realsense2_camera': ''})
    with pytest.raises(DriverError) as refused:
        drivers.check_installed(nodes, {'usb_cam': '0.8.1'})
    assert str(refused.value).startswith(
        'cameras front: realsense2_camera is not installed (not on AMENT_PREFIX_PATH): '
        '`sudo apt install ros-$ROS_DISTRO-realsense2-camera`; or `rosdep install '), refused


def test_the_installed_drivers_releases_are_read_from_their_package_xml(tmp_path, monkeypatch):
    import driver_standins
    monkeypatch.setenv('STANDIN_REALSENSE_RELEASE', '4.56.1')
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(driver_standins.make_overlay(tmp_path)))
    assert drivers.installed_releases() == {
        'realsense2_camera': '4.56.1', 'usb_cam': '0.0.0', 'v4l2_camera': '0.0.0'}
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path / 'nothing'))
    assert drivers.installed_releases() == {}


def test_hil_serls_exposure_in_us_goes_to_the_sensor_that_makes_the_colour():
    """hil-serl fixes each camera's exposure in us (ram_insertion: 40000). A D405's colour is
    its depth module's, whose exposure counts us; a D435's RGB sensor counts 100 us, so the
    same time is a hundredth of the number (10000 there would be 1 s)."""
    nodes, _ = plan(params({
        'wrist_1': {'kind': 'realsense', 'serial': '1', 'model': 'd405', 'exposure_us': 40000},
        'front': {'kind': 'realsense', 'serial': '2', 'exposure_us': 10000}}), KEYS)
    wrist, front = (node.parameters for node in nodes)
    assert (wrist['depth_module.enable_auto_exposure'], wrist['depth_module.exposure']) == (
        False, 40000)
    assert not any(name.startswith('rgb_camera.') for name in wrist)
    assert (front['rgb_camera.enable_auto_exposure'], front['rgb_camera.exposure']) == (
        False, 100)
    assert 'depth_module.exposure' not in front
    auto, _ = plan(params({'wrist_1': {'kind': 'realsense'}}), ['wrist_1'])
    assert not any('exposure' in name for name in auto[0].parameters)   # the driver's auto


def test_a_serial_number_with_a_leading_zero_goes_to_the_driver_as_written(tmp_path):
    """Some RealSense serial numbers start with 0 (librealsense#11864). Written unquoted,
    YAML 1.1 and rcl read 036522070660 as the octal number 4115165616: that serial opens no
    camera. The driver gets the serial as written; the value read stays YAML's (rcl's)."""
    path = tmp_path / 'rig.yaml'
    path.write_text('/**:\n  ros__parameters:\n    cameras:\n'
                    '      wrist_1: {driver: {kind: realsense, serial: 036522070660}}\n'
                    '      front: {driver: {kind: realsense, serial: 0389123456,\n'
                    '                       parameters: {rgb_camera.exposure: 0100}}}\n')
    values = read_node_parameters(path)
    assert values['cameras.wrist_1.driver.serial'] == 0o36522070660
    assert values['cameras.front.driver.serial'] == 389123456.0     # rcl: strtod's decimal
    nodes, _ = plan(values, KEYS)
    assert [n.parameters['serial_no'] for n in nodes] == ['036522070660', '0389123456']
    # what launch_ros writes for the drivers (yaml.dump) holds plain values, rcl's numbers
    assert nodes[1].parameters['rgb_camera.exposure'] == 0o100
    assert '!!python' not in yaml.dump([n.parameters for n in nodes])


def test_a_serial_number_written_as_realsense_ros_documents_it_names_the_same_camera():
    """realsense-ros's docs put a '_' before a serial given on the command line (the driver
    strips it): with and without it, one camera and one driver, given the bare serial."""
    nodes, topics = plan(params({'wrist_1': {'kind': 'realsense', 'serial': '_036522070660'},
                                 'front': {'kind': 'realsense', 'serial': '036522070660'}}),
                         KEYS)
    assert [(n.keys, n.parameters['serial_no']) for n in nodes] == [
        (('wrist_1', 'front'), '036522070660')]
    assert topics['wrist_1'] == topics['front']


def test_launch_arguments_override_the_blocks():
    nodes, topics = plan(params({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0'}}),
                         KEYS, Overrides(kind='realsense', serials={'wrist_1': '1', 'front': '2'},
                                         color_profile='640x480x30'))
    assert [n.package for n in nodes] == ['realsense2_camera'] * 2
    assert nodes[0].parameters['rgb_camera.color_profile'] == '640x480x30'


def test_camera_driver_over_the_shipped_realsense_blocks_starts_usb_cameras():
    """`camera_driver:=usb_cam devices:=...` with config/classifier.yaml (RealSense blocks with
    a serial, a model and an exposure in us): what usb_cam cannot take is left out and said,
    the size and rate the crops are written for stay. It was refused (exposure_us)."""
    values = read_node_parameters(Path(__file__).parents[1] / 'config' / 'classifier.yaml')
    devices = {'wrist_1': '/dev/video0', 'front': '/dev/video2'}
    for kind in ('usb_cam', 'v4l2_camera'):
        nodes, _ = plan(values, KEYS, Overrides(kind=kind, devices=devices))
        assert [(n.package, n.frame_size) for n in nodes] == [(kind, (1280, 720))] * 2
        assert nodes[0].notes[0] == (
            f'cameras.wrist_1: camera_driver:={kind} over its realsense block: serial, model, '
            f"exposure_us left out (the realsense driver's)"), nodes[0].notes
        assert nodes[1].notes[0].startswith(f'cameras.front: camera_driver:={kind} over its '
                                            f'realsense block: serial left out')
        assert not any('exposure' in name or 'serial' in name for name in nodes[0].parameters)
    nodes, _ = plan(values, KEYS, Overrides(kind='realsense'))   # the blocks' own kind
    assert [n.notes for n in nodes] == [(), ()]
    assert nodes[0].parameters['rgb_camera.exposure'] == 100


def test_camera_driver_leaves_out_another_drivers_formats_and_parameters():
    """A pixel_format and parameters are in one driver's own words (usb_cam's mjpeg2rgb is
    no v4l2_camera FourCC, no RealSense format); a device means the same to both V4L2
    drivers; a block of the same kind keeps everything."""
    values = params({key: {'kind': 'usb_cam', 'device': f'/dev/video{i}',
                           'pixel_format': 'mjpeg2rgb', 'parameters': {'brightness': 128}}
                     for i, key in enumerate(KEYS)})
    nodes, _ = plan(values, KEYS, Overrides(kind='v4l2_camera'))
    assert [n.parameters['video_device'] for n in nodes] == ['/dev/video0', '/dev/video1']
    assert nodes[0].parameters['pixel_format'] == 'YUYV' and 'brightness' not in \
        nodes[0].parameters
    assert nodes[0].notes[0] == ('cameras.wrist_1: camera_driver:=v4l2_camera over its usb_cam '
                                 "block: pixel_format, parameters left out (the usb_cam "
                                 "driver's)")
    nodes, _ = plan(values, KEYS, Overrides(kind='realsense', serials={'wrist_1': '1',
                                                                       'front': '2'}))
    assert [n.parameters['serial_no'] for n in nodes] == ['1', '2']
    assert nodes[0].notes == ('cameras.wrist_1: camera_driver:=realsense over its usb_cam '
                              "block: device, pixel_format, parameters left out (the usb_cam "
                              "driver's)",)
    nodes, _ = plan(values, KEYS, Overrides(kind='usb_cam'))
    assert nodes[0].parameters['brightness'] == 128 and not nodes[0].notes


def test_usb_cam_gets_types_its_declarations_take_and_a_frame_id_per_camera():
    nodes, _ = plan(params({k: {'kind': 'usb_cam', 'device': f'/dev/video{i}', 'fps': 15}
                            for i, k in enumerate(KEYS)}), KEYS)
    assert [n.parameters['frame_id'] for n in nodes] == ['wrist_1_optical_frame',
                                                         'front_optical_frame']
    assert isinstance(nodes[0].parameters['framerate'], float)
    assert nodes[0].parameters['pixel_format'] == 'yuyv2rgb' and nodes[0].encoding == 'rgb8'


def test_a_usb_cam_format_under_parameters_is_the_one_the_driver_gets():
    nodes, _ = plan(params({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0',
                                        'parameters': {'pixel_format': 'yuyv'}},
                            'front': {'kind': 'none'}}), KEYS)
    assert nodes[0].parameters['pixel_format'] == 'yuyv'
    assert nodes[0].encoding == 'yuv422_yuy2'


def test_v4l2_camera_rate_is_time_per_frame():
    nodes, _ = plan(params({'wrist_1': {'kind': 'v4l2_camera', 'device': '/dev/video0',
                                        'fps': 7.5, 'width': 1280, 'height': 720},
                            'front': {'kind': 'none'}}), KEYS)
    assert nodes[0].parameters['time_per_frame'] == [2, 15]
    assert nodes[0].parameters['image_size'] == [1280, 720]
    assert 'framerate' not in nodes[0].parameters


@pytest.mark.parametrize('kind, block, rate', [
    ('usb_cam', {}, 27.6),                                      # yuyv2rgb, the default here
    ('usb_cam', {'pixel_format': 'uyvy'}, 27.6),
    ('usb_cam', {'parameters': {'framerate': 30.0}}, 55.3),     # the driver's own name wins
    ('usb_cam', {'parameters': {'framerate': '15'}}, 27.6),     # a number as text: printed
    ('v4l2_camera', {}, 27.6),                                  # YUYV, its default
], ids=['usb_cam', 'usb_cam-uyvy', 'usb_cam-parameters', 'usb_cam-text-rate', 'v4l2_camera'])
def test_a_raw_stream_more_than_usb2_carries_is_said_at_launch(kind, block, rate):
    """hil-serl's 1280x720 at 15 fps in YUYV: more than a USB 2.0 webcam sends, so V4L2
    gives it a lower rate without a word; the launch says so and how to get 15 fps."""
    nodes, _ = plan(params({'front': {'kind': kind, 'device': '/dev/video0', 'width': 1280,
                                      'height': 720, 'fps': 15, **block},
                            'wrist_1': {'kind': 'none'}}), KEYS)
    [note] = nodes[0].notes
    assert note.startswith(f"cameras.front: {kind}'s ") and f'is {rate} MB/s' in note, note
    assert "more than USB 2.0 carries (24.6 MB/s)" in note and "'front rate (Hz)'" in note
    assert 'mjpeg2rgb' in note


@pytest.mark.parametrize('kind, block', [
    ('usb_cam', {'pixel_format': 'mjpeg2rgb'}),                 # compressed by the camera
    ('usb_cam', {'fps': 10}),                                   # 18.4 MB/s
    ('usb_cam', {'width': 640, 'height': 480, 'fps': 30}),      # 18.4 MB/s
    ('v4l2_camera', {'pixel_format': 'GREY'}),                  # 13.8 MB/s
    ('v4l2_camera', {'parameters': {'time_per_frame': [0, 1]}}),    # the driver's to refuse
    ('usb_cam', {'parameters': {'framerate': 'fast'}}),                 # the same
    ('v4l2_camera', {'parameters': {'pixel_format': ['YUYV']}}),        # the same
], ids=['mjpeg', 'yuyv-10fps', 'yuyv-vga', 'v4l2-grey', 'v4l2-no-rate', 'usb_cam-no-rate',
        'v4l2-list-format'])
def test_a_stream_usb2_carries_or_its_driver_refuses_gets_no_note(kind, block):
    nodes, _ = plan(params({'front': {'kind': kind, 'device': '/dev/video0', 'width': 1280,
                                      'height': 720, 'fps': 15, **block},
                            'wrist_1': {'kind': 'none'}}), KEYS)
    assert nodes[0].notes == ()


def test_every_usb_cam_format_has_its_bytes_on_the_wire():
    from hil_serl_reward.ros.drivers import usb_cam
    assert set(usb_cam.WIRE_BYTES_PER_PIXEL) == set(usb_cam.FORMATS)


def test_two_keys_cropped_from_one_camera_share_its_driver():
    blocks = {'left/side_classifier': {'kind': 'realsense', 'serial': '1'},
              'left/wrist': {'kind': 'realsense', 'serial': '1'},
              'right': {'same_as': 'left/wrist'}}
    nodes, topics = plan(params(blocks), list(blocks))
    assert len(nodes) == 1 and nodes[0].keys == tuple(blocks)
    assert nodes[0].name == 'left_side_classifier'      # '/' is invalid in a node name
    assert set(topics.values()) == {'camera/left_side_classifier/color/image_raw'}


@pytest.mark.parametrize('blocks, message', [
    ({'wrist_1': {'kind': 'realsense'}, 'front': {'kind': 'realsense'}}, 'without a serial'),
    ({'wrist_1': {'kind': 'usb_cam'}}, 'needs driver.device'),
    ({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0', 'framerate': 15}},
     "unknown field \\(did you mean 'frame_id'\\?\\)|unknown field"),
    ({'wrist_1': {'kind': 'gige'}}, 'one of'),
    ({'wrist_1': {'kind': 'realsense', 'serial': '1', 'fps': 'fast'}}, 'number'),
    ({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0'},
      'front': {'kind': 'usb_cam', 'device': '/dev/video0', 'fps': 10}}, 'same camera'),
    ({'wrist_1': {'same_as': 'elbow'}}, "'elbow' is not a camera key"),
    # exposures: hil-serl's us written where the D435 counts 100 us (1 s at 15 fps), one that
    # halves a D405's 30 fps, odd steps, two settings, a D405's absent RGB sensor, wrong driver
    ({'wrist_1': {'kind': 'realsense', 'parameters': {'rgb_camera.enable_auto_exposure': False,
                                                      'rgb_camera.exposure': 10000}}},
     r'rgb_camera.exposure 10000 \(1000000 us: it counts 100 us\) does not fit in a frame at '
     r'15 fps \(at most 65566 us\).*give it as exposure_us'),
    ({'wrist_1': {'kind': 'realsense', 'model': 'd405', 'fps': 30, 'exposure_us': 40000}},
     r'exposure_us 40000 does not fit in a frame at 30 fps \(at most 32233 us\)'),
    ({'wrist_1': {'kind': 'realsense', 'model': 'd405', 'fps': 30, 'parameters': {
        'depth_module.enable_auto_exposure': False}}}, r"false \(the sensor's 33000 us\)"),
    ({'wrist_1': {'kind': 'realsense', 'exposure_us': 10050}}, 'steps of 100 us'),
    ({'wrist_1': {'kind': 'realsense', 'parameters': {'rgb_camera.exposure': 0}}},
     r'whole number in \[1, 10000\]'),
    ({'wrist_1': {'kind': 'realsense', 'exposure_us': 10000,
                  'parameters': {'rgb_camera.exposure': 100}}}, 'both set the exposure'),
    ({'wrist_1': {'kind': 'realsense', 'model': 'd405',
                  'parameters': {'rgb_camera.exposure': 100}}}, 'a D405 has no RGB sensor'),
    ({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0', 'exposure_us': 10000}},
     'exposure_us is for RealSense cameras: usb_cam takes `autoexposure: false`'),
    ({'wrist_1': {'kind': 'v4l2_camera', 'device': '/dev/video0', 'exposure_us': 10000}},
     'exposure_us is for RealSense cameras: v4l2_camera declares'),
    ({'wrist_1': {'kind': 'realsense', 'exposure': 10000}}, "did you mean 'exposure_us'"),
    # usb_cam's formats whose images are not what they say (0.6.0 to 0.8.1), and one it lacks
    ({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0', 'pixel_format': 'rgb8'}},
     r"usb_cam's 'rgb8' asks the camera for V4L2's RGB332 .*: yuyv2rgb, or mjpeg2rgb"),
    ({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0', 'pixel_format': 'raw_mjpeg'}},
     r"'raw_mjpeg' publishes the camera's JPEG bytes as a raw Image of encoding yuv422"),
    ({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0', 'pixel_format': 'mjpeg'}},
     r"'mjpeg' is no format of usb_cam 0.6.0 or 0.8.1"),
    ({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0', 'pixel_format': 'bgr8'}},
     r"pixel_format: one of usb_cam's \[.*\], got 'bgr8'"),
    ({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0',           # usb_cam's own file
                  'parameters': {'pixel_format': 'rgb8'}}},
     r"cameras.wrist_1.driver.parameters.pixel_format: usb_cam's 'rgb8' asks"),
])
def test_blocks_that_cannot_start_say_why(blocks, message):
    with pytest.raises(DriverError, match=message):
        plan(params(blocks), list(blocks))
    with pytest.raises(DriverError, match=message) as raised:     # the launch file's call
        plan_rigs(params(blocks), list(blocks), [''])
    assert "rig ''" not in str(raised.value)


def test_a_driver_asked_for_another_size_than_the_crop_is_written_for_stops_the_launch():
    """cameras.<key>.frame_size (the size the crop is written for) against what each driver
    is asked for, a profile given under `parameters:` or a launch argument included: the node
    would refuse every frame of another size."""
    def sized(blocks, overrides=Overrides()):
        values = {**params(blocks), **{f'cameras.{key}.frame_size': '1280x720' for key in KEYS}}
        nodes, _ = plan(values, KEYS, overrides)
        return [node.frame_size for node in nodes]

    usb = {'kind': 'usb_cam', 'device': '/dev/video0', 'width': 1280, 'height': 720}
    v4l2 = {'kind': 'v4l2_camera', 'device': '/dev/video1', 'width': 1280, 'height': 720}
    d405 = {'kind': 'realsense', 'serial': '1', 'model': 'd405'}
    assert sized({'wrist_1': usb, 'front': v4l2}) == [(1280, 720)] * 2
    assert sized({'wrist_1': d405, 'front': {'kind': 'none'}}) == [(1280, 720)]
    for blocks, overrides, asked in [
            ({'wrist_1': {**usb, 'width': 640}, 'front': {'kind': 'none'}},
             Overrides(), '640x720'),
            ({'wrist_1': {**v4l2, 'parameters': {'image_size': [848, 480]}},
              'front': {'kind': 'none'}}, Overrides(), '848x480'),
            ({'wrist_1': {**d405, 'parameters': {'depth_module.color_profile': '640,480,30'}},
              'front': {'kind': 'none'}}, Overrides(), '640x480'),
            ({'wrist_1': d405, 'front': {'kind': 'none'}},
             Overrides(color_profile='848x480x15'), '848x480')]:
        with pytest.raises(DriverError, match=f'cameras.wrist_1.driver asks the camera for '
                                              f'{asked} frames, but cameras.wrist_1.frame_size '
                                              f'is 1280x720, the size its crop is written for'):
            sized(blocks, overrides)
    two_crops = {'wrist_1': d405, 'front': {'same_as': 'wrist_1'}}
    values = {**params(two_crops), 'cameras.wrist_1.frame_size': '1280x720',
              'cameras.front.frame_size': '640x480'}
    with pytest.raises(DriverError, match='cameras.front.driver asks the camera for 1280x720'):
        plan(values, KEYS)


def test_a_block_without_a_size_asks_for_the_frames_its_crop_is_written_for():
    """usb_cam and v4l2_camera default to 640x480: an example config (frame_size 1280x720, no
    driver block) with camera_driver:=usb_cam was refused for it. A block without width and
    height now asks for frame_size; one with a size, or without frame_size, keeps its own."""
    bare = {'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0'},
            'front': {'kind': 'v4l2_camera', 'device': '/dev/video1'}}
    values = {**params(bare), 'cameras.wrist_1.frame_size': '1280x720',
              'cameras.front.frame_size': '960x540'}
    wrist, front = plan(values, KEYS)[0]
    assert (wrist.parameters['image_width'], wrist.parameters['image_height']) == (1280, 720)
    assert front.parameters['image_size'] == [960, 540]
    assert [n.frame_size for n in plan(params(bare), KEYS)[0]] == [(640, 480)] * 2
    example = read_node_parameters(Path(__file__).parents[1] / 'config' / 'examples' /
                                   'ram_insertion.yaml')
    nodes, _ = plan(example, example['image_keys'],
                    Overrides(kind='usb_cam', devices={'wrist_1': '/dev/video0',
                                                       'wrist_2': '/dev/video2'}))
    assert [n.frame_size for n in nodes] == [(1280, 720)] * 2


@pytest.mark.parametrize('task', ['ram_insertion', 'usb_pickup_insertion', 'object_handover',
                                  'egg_flip'])
def test_each_hil_serl_example_starts_its_cameras_as_its_comment_says(task):
    """config/examples/<task>.yaml carries no driver block (the camera model is the user's);
    its comment says how hil-serl's cameras start: the serials:= it names, and for a D405 the
    block it gives, with hil-serl's exposure (which must fit a 15 fps frame)."""
    import re
    path = Path(__file__).parents[1] / 'config' / 'examples' / f'{task}.yaml'
    text = path.read_text()
    values = read_node_parameters(path)
    keys = values['image_keys']
    named = re.search(r'serials:=(\S+)', text).group(1)
    assert [entry.split('=')[0] for entry in named.split(',')] == keys
    serials = {key: str(i) for i, key in enumerate(keys)}
    nodes, _ = plan(values, keys, Overrides(serials=serials))
    assert [n.parameters['rgb_camera.color_profile'] for n in nodes] == ['1280x720x15'] * len(keys)
    block = yaml.safe_load(re.search(r'`driver: (\{[^}]*\})`', text).group(1))
    d405 = {**values, **flatten({'cameras': {key: {'driver': block} for key in keys}})}
    nodes, _ = plan(d405, keys, Overrides(serials=serials))
    assert [n.parameters['depth_module.exposure'] for n in nodes] == \
        [block['exposure_us']] * len(keys)
    assert f"`exposure` {block['exposure_us']} us" in text


def test_keys_that_collide_as_ros_names_are_refused():
    with pytest.raises(DriverError, match="both become the ROS name 'a_b'"):
        plan(params({'a/b': {'kind': 'none'}, 'a_b': {'kind': 'none'}}), ['a/b', 'a_b'])
    assert drivers.ros_name('2nd') == 'camera_2nd'


def test_each_rig_gets_its_drivers_in_its_namespace_from_its_own_launch_arguments():
    """`rigs: [left, right]`: a driver per rig and camera, in the rig's namespace, named
    <rig>_<key> (distinct frame ids), each rig's serial from `<rig>/<key>` entries."""
    serials = {f'{rig}/{key}': f'{i}{j}' for i, rig in enumerate(('left', 'right'))
               for j, key in enumerate(KEYS)}
    nodes, topics = plan_rigs(params({k: {'kind': 'realsense', 'fps': 15} for k in KEYS}), KEYS,
                              ['left', 'right'], Overrides(serials=serials))
    assert [(n.namespace, n.name, n.parameters['serial_no']) for n in nodes] == [
        ('left/camera', 'left_wrist_1', '00'), ('left/camera', 'left_front', '01'),
        ('right/camera', 'right_wrist_1', '10'), ('right/camera', 'right_front', '11')]
    assert topics == {rig: {key: f'{rig}/camera/{rig}_{key}/color/image_raw' for key in KEYS}
                      for rig in ('left', 'right')}
    assert nodes[0].frame_id == 'left_wrist_1_color_optical_frame'
    usb, _ = plan_rigs(params({k: {'kind': 'usb_cam'} for k in KEYS}), KEYS, ['a', 'b'],
                       Overrides(devices={f'{r}/{k}': f'/dev/video{i}' for i, (r, k) in
                                          enumerate((r, k) for r in 'ab' for k in KEYS)}))
    assert [n.parameters['frame_id'] for n in usb][:2] == ['a_wrist_1_optical_frame',
                                                           'a_front_optical_frame']


@pytest.mark.parametrize('blocks, overrides, message', [
    ({'wrist_1': {'kind': 'usb_cam', 'device': '/dev/video0'}}, Overrides(),
     r"rigs 'left' and 'right' would both open v4l2:/dev/video0 .*left/wrist_1=\.\.\."),
    ({'wrist_1': {'kind': 'realsense'}}, Overrides(serials={'wrist_1': '5'}),
     "both open realsense:5"),             # a plain key names one camera for every rig
    ({'wrist_1': {'kind': 'realsense'}}, Overrides(),
     r"\['left/wrist_1', 'right/wrist_1'\] are RealSense cameras without a serial"),
    ({'wrist_1': {'kind': 'usb_cam'}}, Overrides(), "rig 'left': .*needs driver.device"),
])
def test_rigs_that_would_share_or_miss_a_camera_say_which(blocks, overrides, message):
    with pytest.raises(DriverError, match=message):
        plan_rigs(params(blocks), list(blocks), ['left', 'right'], overrides)


# ---- the stand-ins refuse what the real driver would not use --------------------------

def standin(kind: str, *ros_args: str, env: dict = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HERE / 'driver_standins.py'), kind, '--ros-args',
                           *ros_args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_a_standin_fails_on_a_parameter_the_driver_does_not_have(tmp_path):
    """v4l2_camera has no `framerate`: the real one would ignore it and run at 30 fps."""
    done = standin('v4l2_camera', '-p', 'framerate:=15.0',
                   env={'STANDIN_VIDEO_DEVICES': '/dev/video0', 'STANDIN_LOCK_DIR': str(tmp_path)})
    assert done.returncode == 1 and "['framerate']" in done.stderr


def test_a_standin_fails_on_a_parameter_of_the_wrong_type(tmp_path):
    done = standin('usb_cam', '-p', 'framerate:=15',
                   env={'STANDIN_VIDEO_DEVICES': '/dev/video0', 'STANDIN_LOCK_DIR': str(tmp_path)})
    assert done.returncode != 0 and "'framerate'" in done.stderr and 'DOUBLE' in done.stderr


def test_a_realsense_standin_refuses_an_exposure_out_of_its_sensors_range(tmp_path):
    """The real driver declares rgb_camera.exposure as 1-10000 (100 us steps): 20000 is
    refused, logged, and the camera runs on its own exposure; the stand-in exits instead."""
    done = standin('realsense', '-p', 'rgb_camera.exposure:=20000',
                   env={'STANDIN_REALSENSE_DEVICES': '12:d435', 'STANDIN_LOCK_DIR': str(tmp_path)})
    assert done.returncode == 1 and 'rgb_camera.exposure = 20000[1, 10000]' in done.stderr


@pytest.mark.parametrize('exposure, rate', [(30000, '30'), (33000, '15')])
def test_a_d405_standin_halves_its_rate_when_the_exposure_fills_the_frame(
        tmp_path, exposure, rate):
    """realsense-ros#2612: a D405 at 30 fps with auto exposure off and its default manual
    exposure (33000 us) sends 15 frames a second."""
    line = d405_publishing_line(tmp_path, '-p', 'depth_module.enable_auto_exposure:=false',
                                '-p', f'depth_module.exposure:={exposure}')
    assert f'at {rate} Hz' in line, line


def d405_publishing_line(tmp_path: Path, *ros_args: str, release: str = '4.58.2') -> str:
    """The line a D405 stand-in of `release` starts with ("publishing <topic> ... at N Hz")."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / 'driver_standins.py'), 'realsense', '--ros-args',
         *ros_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, 'STANDIN_REALSENSE_DEVICES': '11:d405',
             'STANDIN_REALSENSE_RELEASE': release, 'STANDIN_LOCK_DIR': str(tmp_path)})
    try:
        return process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=30)


def accepted_by_standins(values: dict, keys: list, models: dict, realsense: str = '') -> None:
    """Every parameter name, type and range of a plan, for each driver, against the
    stand-in's declarations (written from the driver's source, independently of drivers/);
    `realsense`: the realsense2_camera release both play ('' = the stand-in's default)."""
    import driver_standins
    types = {bool: 'bool', int: 'integer', float: 'double', str: 'string', list: 'integer_array'}
    release = realsense or driver_standins.REALSENSE_RELEASE
    for node in plan(values, keys, releases={'realsense2_camera': release})[0]:
        kind = {'realsense2_camera': 'realsense'}.get(node.package, node.package)
        model = models.get(node.parameters.get('serial_no'), '')
        with mock.patch.dict(os.environ, {'STANDIN_REALSENSE_RELEASE': release}):
            declared = driver_standins._declared(driver_standins.DRIVERS[kind], model)
        for name, value in node.parameters.items():
            assert name in declared, (node.package, name)
            assert types[type(value)] == declared[name][0], (node.package, name, value)
            lowest, highest = driver_standins.REALSENSE_RANGES.get(name, (value, value))
            assert lowest <= value <= highest, (name, value)


@pytest.mark.parametrize('release, topic', [('4.56.1', 'image_rect_raw'),
                                            ('4.58.2', 'image_raw')])
def test_a_d405_standin_publishes_its_colour_where_its_release_does(tmp_path, release, topic):
    line = d405_publishing_line(tmp_path, '-r', '__node:=wrist_1', release=release)
    assert f'publishing /wrist_1/color/{topic} ' in line, line


def test_an_old_realsense_release_gets_its_one_profile_per_sensor(tmp_path):
    """realsense2_camera 4.54.1 and older: `<sensor>.profile`, no format parameter (RGB8);
    `rgb_camera.color_profile` there would be dropped unsaid, the camera at its default
    profile."""
    blocks = {'wrist_1': {'kind': 'realsense', 'serial': '11', 'model': 'd405',
                          'exposure_us': 40000},
              'front': {'kind': 'realsense', 'serial': '12', 'width': 640, 'height': 480}}
    wrist, front = plan(params(blocks), KEYS, releases={'realsense2_camera': '4.54.1'})[0]
    assert {k: v for k, v in wrist.parameters.items() if 'profile' in k or 'format' in k} == \
        {'depth_module.profile': '1280x720x15'}
    assert {k: v for k, v in front.parameters.items() if 'profile' in k or 'format' in k} == \
        {'rgb_camera.profile': '640x480x15'}
    assert (wrist.frame_size, front.frame_size) == ((1280, 720), (640, 480))
    accepted_by_standins(params(blocks), KEYS, {'11': 'd405', '12': 'd435'}, realsense='4.54.1')
    newer, _ = plan(params(blocks), KEYS, releases={'realsense2_camera': '4.55.1'})[0]
    assert newer.parameters['depth_module.color_profile'] == '1280x720x15'
    with pytest.raises(DriverError, match='realsense2_camera 4.54.1 sends its colour in RGB8'):
        plan(params({'wrist_1': {'kind': 'realsense', 'pixel_format': 'bgr8'}}), ['wrist_1'],
             releases={'realsense2_camera': '4.54.1'})
    line = d405_publishing_line(tmp_path, '-p', 'depth_module.profile:=640x480x15',
                                release='4.54.1')
    assert ' 640x480 rgb8 at 15 Hz' in line, line


def test_what_plan_gives_each_driver_is_accepted_by_its_standin():
    blocks = {'a': {'kind': 'realsense', 'serial': '11', 'model': 'd405', 'exposure_us': 40000},
              'b': {'kind': 'realsense', 'serial': '12', 'pixel_format': 'bgr8',
                    'exposure_us': 10000},
              'c': {'kind': 'usb_cam', 'device': '/dev/video0', 'pixel_format': 'yuyv'},
              'd': {'kind': 'v4l2_camera', 'device': '/dev/video1'}}
    accepted_by_standins(params(blocks), list(blocks), {'11': 'd405', '12': 'd435'})


def test_the_shipped_params_files_driver_blocks_start_their_cameras():
    """config/classifier.yaml's driver blocks, as a user copies them (it once gave a D435
    rgb_camera.exposure 10000: a 1 s exposure)."""
    values = read_node_parameters(HERE.parent / 'config' / 'classifier.yaml')
    accepted_by_standins(values, values['image_keys'],
                         {values[f'cameras.{key}.driver.serial']: values.get(
                             f'cameras.{key}.driver.model', 'd435')
                          for key in values['image_keys']})


def test_the_docs_driver_blocks_start_their_cameras():
    """README's mixed D405 + D435 rig and docs/camera-drivers.md's translation of one of
    hil-serl's REALSENSE_CAMERAS, as written."""
    readme = (HERE.parent / 'README.md').read_text().split('### Camera drivers')[1]
    section = yaml.safe_load(readme.split('```yaml')[1].split('```')[0])['/**']
    values = flatten(section['ros__parameters'])
    accepted_by_standins(values, values['image_keys'],
                         {'218622270001': 'd405', '130322270002': 'd435'})
    text = (HERE.parent / 'docs' / 'camera-drivers.md').read_text()
    snippet = text.split('**From a hil-serl config.**')[1].split('```yaml')[1].split('```')[0]
    cameras = yaml.safe_load(snippet)
    values = flatten({'cameras': cameras})
    accepted_by_standins(values, list(cameras), {'127122270146': 'd405'})
    assert values['cameras.wrist_1.driver.exposure_us'] == 40000


def test_the_node_leaves_driver_blocks_to_the_launch_file():
    """The node ignores `driver` blocks (the launch file's), it does not refuse them."""
    from hil_serl_reward.ros import config
    names = flatten({'cameras': {'wrist_1': {'driver': {'kind': 'usb_cam', 'parameters': {
        'brightness': 3}}}}})
    assert all(config.is_driver_parameter(name, ['wrist_1']) for name in names)
    assert not config.is_driver_parameter('cameras.wrist_1.crop', ['wrist_1'])


@pytest.mark.parametrize('signals', [('SIGINT',), ('SIGTERM',), ('SIGINT', 'SIGINT')],
                         ids=['sigint', 'sigterm', 'sigint-twice'])
def test_a_streaming_standin_stops_cleanly_on_any_signal(tmp_path, signals):
    """As the real drivers do when `ros2 launch` or a terminal stops them: exit 0, at once,
    however often and while it publishes (rclpy's own handler once hung a stand-in through
    SIGINT and SIGTERM until launch killed it)."""
    import signal
    import time
    process = subprocess.Popen(
        [sys.executable, str(HERE / 'driver_standins.py'), 'usb_cam', '--ros-args', '-p',
         'framerate:=60.0'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, 'STANDIN_VIDEO_DEVICES': '/dev/video0',
             'STANDIN_LOCK_DIR': str(tmp_path)})
    try:
        line = process.stdout.readline()                 # its "publishing ..." line
        assert 'publishing' in line, line
        time.sleep(0.3)                                  # streaming
        for name in signals:
            process.send_signal(getattr(signal, name))
        output, _ = process.communicate(timeout=5)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert 'Traceback' not in output, output
