"""preview_crops: crop geometry on constructed frames, the PNGs it writes, its sources."""
import contextlib
import os
import threading
import uuid

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from hil_serl_reward.pipeline.preprocessing import CropError, parse_crop, preprocess
from hil_serl_reward.ros.bags import write_bag
from hil_serl_reward.tools import preview_crops
from ros_harness import image_msg


@pytest.mark.parametrize('text, box', [
    ('', (0, 480, 0, 640)),
    ('100:400, 200:500', (100, 400, 200, 500)),
    ('50:-50, 100:-100', (50, 430, 100, 540)),
    (':, 250:', (0, 480, 250, 640)),
    ('::-1, :-401:-1', (0, 480, 240, 640)),      # a flipped camera (it used to leave nothing)
])
def test_crop_box_in_pixels(text, box):
    resolved = preview_crops.crop_box(parse_crop(text), 640, 480)
    assert (resolved.top, resolved.bottom, resolved.left, resolved.right) == box
    assert resolved.warnings == []


def test_a_crop_past_the_frame_is_clipped_with_a_warning():
    box = preview_crops.crop_box(parse_crop('150:450, 350:1100'), 640, 480)
    assert (box.left, box.right) == (350, 640)
    assert any('cols bound 1100 (640 cols) reaches past the frame' in w for w in box.warnings)


def test_a_strided_crop_is_warned_about():
    """hil-serl applies a crop's step too: the model sees one row (or column) in `step`."""
    box = preview_crops.crop_box(parse_crop('::2, ::-3'), 640, 480)
    assert box.warnings == ['rows step 2: one row in 2 only', 'cols step -3: one column in 3 only']


def test_a_heavily_squeezed_crop_is_warned_about():
    box = preview_crops.crop_box(parse_crop('200:260, 0:640'), 640, 480)     # 640 x 60
    assert any('squeezed 10.7x horizontally' in w for w in box.warnings)
    box = preview_crops.crop_box(parse_crop('0:480, 0:100'), 640, 480)        # 100 x 480
    assert any('vertically' in w for w in box.warnings)


def test_a_crop_that_leaves_nothing_is_an_error():
    with pytest.raises(CropError, match='leaves nothing'):
        preview_crops.crop_box(parse_crop('500:600, :'), 640, 480)


def params_yaml(tmp_path, crops, topics=None):
    path = tmp_path / 'rig.yaml'
    cameras = ''.join(f'      {k}:\n        crop: "{c}"\n'
                      + (f'        topic: {topics[k]}\n' if topics else '')
                      for k, c in crops.items())
    path.write_text('/**/hil_serl_reward:\n  ros__parameters:\n'
                    f'    image_keys: {list(crops)}\n    cameras:\n{cameras}')
    return path


def frames(width=640, height=480):
    rng = np.random.default_rng(2)
    return {k: rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            for k in ('wrist_1', 'front')}


def frame_folder(folder):
    """frames() as PNGs in `folder`/<key>/ (preview_crops --folder)."""
    rgb = frames()
    for key, frame in rgb.items():
        (folder / key).mkdir(parents=True)
        cv2.imwrite(str(folder / key / '0001.png'), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return rgb


CROPS = {'wrist_1': '100:400, 200:500', 'front': '0:120, 0:640'}


def check_outputs(out, rgb, capsys):
    printed = capsys.readouterr().out
    assert "wrist_1: crop '100:400, 200:500' on 640x480 -> rows 100:400, cols 200:500 " \
           "(300x300 px, aspect 1.00)" in printed
    assert 'front' in printed and 'squeezed 5.3x horizontally' in printed
    for key, text in CROPS.items():
        preview = cv2.cvtColor(cv2.imread(str(out / f'{key}.png')), cv2.COLOR_BGR2RGB)
        assert preview.shape[0] == 480
        model_input = preview[:128 * 3:3, 640 + 8:640 + 8 + 128 * 3:3]     # scale 480 // 128
        assert np.array_equal(model_input, preprocess(rgb[key], parse_crop(text)))
    drawn = cv2.cvtColor(cv2.imread(str(out / 'wrist_1.png')), cv2.COLOR_BGR2RGB)
    assert tuple(drawn[100, 300]) == (255, 0, 255)                        # the top edge


def test_folder_source_writes_one_png_per_camera(tmp_path, capsys):
    rgb = frame_folder(tmp_path / 'frames')
    out = tmp_path / 'preview'
    assert preview_crops.main(['--params-file', str(params_yaml(tmp_path, CROPS)),
                               '--folder', str(tmp_path / 'frames'), '--output', str(out)]) == 0
    check_outputs(out, rgb, capsys)


def test_bag_source_takes_the_first_frame_of_each_camera(tmp_path, capsys):
    rgb = frames()
    bag = write_bag(tmp_path / 'bag', [
        (f'/{key}/image_raw', 1_000 + i, image_msg(frame, 1_000 + i, 'bgr8'))
        for i, (key, frame) in enumerate(rgb.items())])
    out = tmp_path / 'preview'
    assert preview_crops.main(['--params-file', str(params_yaml(tmp_path, CROPS)),
                               '--bag', str(bag), '--output', str(out)]) == 0
    check_outputs(out, rgb, capsys)


def test_an_output_that_cannot_be_a_folder_is_one_line(tmp_path, capsys):
    for key, frame in frames().items():
        (tmp_path / 'frames' / key).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / 'frames' / key / '0001.png'), frame)
    taken = tmp_path / 'preview'
    taken.write_text('a file, not a folder')
    assert preview_crops.main(['--params-file', str(params_yaml(tmp_path, CROPS)),
                               '--folder', str(tmp_path / 'frames'), '--output', str(taken)]) == 2
    assert f"preview_crops: [Errno 17] File exists: '{taken}'" in capsys.readouterr().err


def test_missing_frames_are_one_line(tmp_path, capsys):
    bag = write_bag(tmp_path / 'bag', [('/front/image_raw', 1, image_msg(
        frames()['front'], 1))])
    assert preview_crops.main(['--params-file', str(params_yaml(tmp_path, CROPS)),
                               '--bag', str(bag)]) == 2
    assert "no image on ['wrist_1/image_raw']" in capsys.readouterr().err


@contextlib.contextmanager
def live_cameras(rgb, topics, rate=20.0):
    """Camera drivers stand-in: real sensor_msgs/Image publishers over DDS, in a context and
    executor of their own, each publishing its frame at `rate` Hz until the block ends."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('cameras', context=context)
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    publishers = {key: node.create_publisher(Image, topics[key], qos) for key in rgb}

    def publish():
        stamp = node.get_clock().now().nanoseconds
        for key, frame in rgb.items():
            publishers[key].publish(image_msg(frame, stamp, 'bgr8'))
    node.create_timer(1 / rate, publish)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        executor.shutdown()
        thread.join(5)
        node.destroy_node()
        context.try_shutdown()


def unique_topics():
    prefix = f'/preview_{uuid.uuid4().hex[:8]}'
    return {key: f'{prefix}/{key}/image_raw' for key in CROPS}


def test_topics_source_listens_to_live_cameras(tmp_path, capsys):
    rgb, topics = frames(), unique_topics()
    out = tmp_path / 'preview'
    with live_cameras(rgb, topics):
        assert preview_crops.main(['--params-file', str(params_yaml(tmp_path, CROPS, topics)),
                                   '--topics', '--seconds', '3', '--output', str(out)]) == 0
    check_outputs(out, rgb, capsys)


def test_a_silent_live_camera_is_one_line_naming_where_images_are(tmp_path, capsys):
    """The wrist camera's driver publishes under another name: the one line says which
    camera, that its topic has no publisher, and where images are published instead."""
    rgb, topics = frames(), unique_topics()
    elsewhere = topics['wrist_1'].replace('/wrist_1/', '/wrist/')
    with live_cameras(rgb, {**topics, 'wrist_1': elsewhere}):
        assert preview_crops.main(['--params-file', str(params_yaml(tmp_path, CROPS, topics)),
                                   '--topics', '--seconds', '1.5',
                                   '--output', str(tmp_path / 'preview')]) == 2
    err = capsys.readouterr().err
    assert f"no image in 1.5 s from wrist_1: no publisher on {topics['wrist_1']}; " \
           f"sensor_msgs/msg/Image is published on {elsewhere}" in err, err
    assert err.count('\n') == 1 and 'front' not in err
    assert not (tmp_path / 'preview').exists()


def test_with_no_driver_running_the_question_comes_once(tmp_path, capsys, monkeypatch):
    """Neither camera's driver runs (a DDS domain of its own: no other test's publishers):
    the one line names each camera's topic and asks once whether the driver runs."""
    monkeypatch.setenv('ROS_DOMAIN_ID', str(int(os.environ.get('ROS_DOMAIN_ID', '0')) + 101))
    topics = unique_topics()
    assert preview_crops.main(['--params-file', str(params_yaml(tmp_path, CROPS, topics)),
                               '--topics', '--seconds', '0.5',
                               '--output', str(tmp_path / 'preview')]) == 2
    err = capsys.readouterr().err
    assert (f"no image in 0.5 s from wrist_1: no publisher on {topics['wrist_1']}; front: no "
            f"publisher on {topics['front']}; no sensor_msgs/msg/Image topic in the ROS graph: "
            f'is the driver running, on this ROS_DOMAIN_ID and discovery range?\n') in err, err
    assert err.count('\n') == 1


def test_a_decompression_bomb_in_the_folder_is_refused_from_its_header(tmp_path, capsys):
    """A 100000 x 100000 PNG (a few KB on disk, 30 GB decoded): one line, nothing decoded."""
    import struct
    import zlib
    for key, frame in frames().items():
        (tmp_path / 'frames' / key).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / 'frames' / key / '0001.png'), frame)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack('>I', len(body)) + kind + body + \
            struct.pack('>I', zlib.crc32(kind + body))
    bomb = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 100_000, 100_000,
                                                             8, 2, 0, 0, 0)) + \
        chunk(b'IDAT', zlib.compress(b'\x00' * 1000)) + chunk(b'IEND', b'')
    (tmp_path / 'frames' / 'front' / '0001.png').write_bytes(bomb)
    assert preview_crops.main(['--params-file', str(params_yaml(tmp_path, CROPS)),
                               '--folder', str(tmp_path / 'frames'),
                               '--output', str(tmp_path / 'preview')]) == 2
    err = capsys.readouterr().err
    assert 'preview_crops: ' in err and '100000x100000' in err and 'max_image_pixels' in err
    assert not (tmp_path / 'preview').exists()


# ---- hostile recordings: one line, never a traceback ---------------------------------------

def bag_of(tmp_path, rgb, encoding='rgb8'):
    return write_bag(tmp_path / 'bag', [
        (f'/{key}/image_raw', 1_000 + i, image_msg(frame, 1_000 + i, encoding))
        for i, (key, frame) in enumerate(rgb.items())])


def test_frames_lower_than_the_model_input_are_previewed(tmp_path, capsys):
    """100-row frames: the 128-row model input is taller than the frame (it was a numpy
    broadcast error)."""
    rgb = frames(width=160, height=100)
    out = tmp_path / 'preview'
    assert preview_crops.main(['--params-file', str(params_yaml(tmp_path, {
        'wrist_1': '', 'front': ''})), '--bag', str(bag_of(tmp_path, rgb)),
        '--output', str(out)]) == 0
    preview = cv2.imread(str(out / 'front.png'))
    assert preview.shape == (128, 160 + 8 + 128, 3)
    inside = (slice(2, 98), slice(2, 158))                     # within the drawn rectangle
    assert np.array_equal(cv2.cvtColor(preview[:100, :160], cv2.COLOR_BGR2RGB)[inside],
                          rgb['front'][inside])


def truncated_db3(bag):
    [db3] = bag.glob('*.db3')
    db3.write_bytes(db3.read_bytes()[:3000])


def nested_metadata(bag):
    (bag / 'metadata.yaml').write_text('[' * 100_000)


def huge_declared_image(bag):
    """An Image that declares 100000 x 100000 pixels over 12 bytes of data."""
    write_bag(bag, [(f'/{key}/image_raw', 1, Image(height=100_000, width=100_000,
                                                   encoding='rgb8', step=300_000,
                                                   data=bytes(12)))
                    for key in ('wrist_1', 'front')])


@pytest.mark.parametrize('spoil, message', [
    (truncated_db3, 'cannot read the recording'),
    (nested_metadata, 'cannot read the recording'),
    (huge_declared_image, '100000x100000'),
])
def test_a_hostile_recording_is_one_line(tmp_path, capsys, spoil, message):
    bag = bag_of(tmp_path, frames())
    if spoil is huge_declared_image:
        import shutil
        shutil.rmtree(bag)
    spoil(bag)
    assert preview_crops.main(['--params-file', str(params_yaml(tmp_path, CROPS)),
                               '--bag', str(bag), '--output', str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('preview_crops: ') and message in err and len(err.splitlines()) == 1, err


def test_a_params_file_as_users_write_it(tmp_path, capsys):
    """`sync_slop: 1e-9` (a double to rcl, text to YAML 1.1) is read as the node reads it;
    a number written as text (`threshold: 0.7x`) is one line naming it, not a traceback."""
    frame_folder(tmp_path / 'frames')
    params = params_yaml(tmp_path, CROPS)
    written = params.read_text()
    for extra, code in (('    sync_slop: 1e-9\n', 0), ('    threshold: 0.7x\n', 2)):
        params.write_text(written + extra)
        assert preview_crops.main(['--params-file', str(params), '--folder',
                                   str(tmp_path / 'frames'), '--output',
                                   str(tmp_path / 'preview')]) == code
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == ("preview_crops: threshold: must be a number in [0.0, 1.0], "
                                    "got '0.7x'"), err


def test_frames_of_another_size_than_frame_size_are_warned_about(tmp_path, capsys):
    """The node would refuse them: the preview says so before anything is recorded."""
    frame_folder(tmp_path / 'frames')
    params = params_yaml(tmp_path, CROPS)
    params.write_text(params.read_text().replace(
        '      front:\n', '      front:\n        frame_size: "1280x720"\n'))
    assert preview_crops.main(['--params-file', str(params), '--folder',
                               str(tmp_path / 'frames'), '--output',
                               str(tmp_path / 'preview')]) == 0
    printed = capsys.readouterr().out.split("front: crop '0:120, 0:640' on 640x480")
    assert 'frame_size' not in printed[0]
    assert printed[1].splitlines()[1] == ('  warning: cameras.front.frame_size is 1280x720: '
                                          'the node refuses these 640x480 frames')
