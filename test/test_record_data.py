"""record_data: live camera sets + a label topic -> hil-serl classifier_data the trainer reads."""
import datetime
import pickle
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.parameter import Parameter
from std_msgs.msg import Bool

from hil_serl_reward.data.classifier_data import ClassifierDataWriter, load_classifier_data
from hil_serl_reward.ros.record_data import DataRecorder
from hil_serl_reward.tools import train_classifier
from test_camera_sim import start_sim

KEYS = ('wrist_1', 'front')


def test_writer_chunks_with_upstream_names(tmp_path):
    times = iter([datetime.datetime(2026, 1, 1, 10, 0, s) for s in (0, 0, 5)])
    writer = ClassifierDataWriter(tmp_path, 'ram', flush_every=3, clock=lambda: next(times))
    item = {'observations': {'a': np.zeros((1, 128, 128, 3), np.uint8)}}
    for success in (True, False, False, True, True, False):
        writer.add(item, success)
    writer.add(item, False)
    writer.flush()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ['ram_1_success_images_2026-01-01_10-00-00.pkl',
                     'ram_2_success_images_2026-01-01_10-00-00.pkl',
                     'ram_failure_images_2026-01-01_10-00-00.pkl',
                     'ram_failure_images_2026-01-01_10-00-00_2.pkl',
                     'ram_failure_images_2026-01-01_10-00-05.pkl']
    total = sum(len(pickle.loads(p.read_bytes())) for p in tmp_path.iterdir())
    assert total == 7 and (writer.successes, writer.failures) == (3, 4)


def start_recorder(bench, **params):
    recorder = DataRecorder(namespace=bench.namespace, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    bench.add(recorder)
    return recorder


def test_records_until_enough_successes_and_the_trainer_reads_it(bench, tmp_path, capsys):
    out = tmp_path / 'classifier_data'
    recorder = start_recorder(bench, output_dir=str(out), experiment='scene',
                              label_topic='scene_success', successes_needed=6, flush_every=5,
                              state_dim=19, **{'cameras.wrist_1.crop': '20:-20, 40:-40'})
    sim = start_sim(bench, rate=30.0, width=320, height=240, scene_period=1.0)
    try:
        bench.wait(recorder.done.is_set, 40, 'six successes')
    finally:
        for node in (sim, recorder):
            bench.remove(node)
    images, labels = load_classifier_data(out, list(KEYS))
    assert labels.sum() == 6 and (labels == 0).sum() == recorder.writer.failures > 0
    assert images['front'].shape[1:] == (128, 128, 3) and images['front'].dtype == np.uint8
    first = pickle.loads(sorted(out.glob('*success*'))[0].read_bytes())[0]
    assert first['observations']['wrist_1'].shape == (1, 128, 128, 3)
    assert first['observations']['state'].shape == (1, 19)
    assert set(first) == {'observations', 'actions', 'next_observations', 'rewards', 'masks',
                          'dones'}
    assert train_classifier.main(['--data', str(out), '--image-keys', *KEYS, '--random-init',
                                  '--steps', '1', '--batch-per-class', '2', '--val-fraction',
                                  '0', '--output', str(tmp_path / 'ckpt')]) == 0
    assert 'wrote' in capsys.readouterr().out


def test_interrupted_recording_keeps_everything(bench, tmp_path):
    out = tmp_path / 'data'
    recorder = start_recorder(bench, output_dir=str(out), successes_needed=1000,
                              flush_every=10_000)
    label = bench.probe.create_publisher(Bool, 'success_label', 10)
    sim = start_sim(bench, rate=30.0, width=160, height=120)
    try:
        bench.wait(lambda: recorder.writer.failures >= 5, 20, 'five failures')
        label.publish(Bool(data=True))
        bench.wait(lambda: recorder.writer.successes >= 3, 20, 'three successes')
        assert not list(out.glob('*.pkl'))         # nothing flushed yet
    finally:
        bench.remove(sim)
        bench.remove(recorder)                    # what Ctrl-C does
    images, labels = load_classifier_data(out, list(KEYS))
    assert labels.sum() == recorder.writer.successes
    assert (labels == 0).sum() == recorder.writer.failures


def test_a_recorder_without_frames_says_which_camera_and_why(bench, tmp_path):
    """A recorder on the wrong topic used to say 'recording' while it recorded nothing."""
    recorder = start_recorder(bench, output_dir=str(tmp_path / 'data'), camera_timeout=0.5,
                              **{'cameras.front.topic': 'front/color/image_raw'})
    sim = start_sim(bench, rate=30.0, width=160, height=120)     # publishes front/image_raw
    try:
        bench.wait(lambda: recorder.status()[0] == DiagnosticStatus.WARN, 10, 'a warning')
        bench.wait(lambda: 'front (' in recorder.status()[1], 10, 'front named')
        level, message = recorder.status()
        assert message.startswith('cameras silent: front (no images yet: no publisher on '
                                  f'{bench.namespace}/front/color/image_raw; '
                                  'sensor_msgs/msg/Image is published on '
                                  f'{bench.namespace}/front/image_raw'), message
        assert 'wrist_1' not in message and recorder.writer.failures == 0
        refused = recorder.set_parameters([Parameter('camera_timeout', value=-1.0)])[0]
        assert not refused.successful and 'camera_timeout' in refused.reason
        assert recorder.set_parameters([Parameter('camera_timeout', value=3600.0)])[0].successful
        assert recorder.status() == (DiagnosticStatus.OK, 'recording')
    finally:
        bench.remove(sim)
        bench.remove(recorder)


def test_a_label_topic_nobody_publishes_is_said_and_where_bools_are(bench, tmp_path):
    """A typo in label_topic records every set as a failure: said, recording goes on."""
    recorder = start_recorder(bench, output_dir=str(tmp_path / 'data'), camera_timeout=0.5,
                              label_topic='scene_sucess')
    sim = start_sim(bench, rate=30.0, width=160, height=120)     # labels scene_success
    try:
        bench.wait(lambda: recorder.status()[0] == DiagnosticStatus.WARN, 10, 'a warning')
        level, message = recorder.status()
        assert message.startswith(
            f'no publisher on the label topic {bench.namespace}/scene_sucess: every set is '
            f'recorded as a failure; std_msgs/msg/Bool is published on {bench.namespace}/'
            f'scene_success'), message
        assert message.endswith(': set label_topic, or remap'), message
        bench.wait(lambda: recorder.writer.failures > 0, 10, 'recording goes on')
        bench.probe.create_publisher(Bool, 'scene_sucess', 10)
        bench.wait(lambda: recorder.status() == (DiagnosticStatus.OK, 'recording'), 10,
                   'the label publisher matched')
    finally:
        bench.remove(sim)
        bench.remove(recorder)


def test_a_crop_past_the_frame_is_said_and_one_that_leaves_nothing_too(bench, tmp_path):
    """hil-serl's ram_insertion crop on a 640x480 camera: recorded as hil-serl would (clipped),
    said in diagnostics; a crop that leaves nothing of the frame: every set refused, said (the
    recorder said 'recording' while it recorded nothing)."""
    recorder = start_recorder(bench, output_dir=str(tmp_path / 'data'), camera_timeout=0.5,
                              label_topic='scene_success',
                              **{'cameras.wrist_1.crop': '150:450, 350:1100'})
    sim = start_sim(bench, rate=30.0, width=640, height=480)
    try:
        bench.wait(lambda: recorder.writer.failures > 0, 20, 'recording')
        time.sleep(0.6)                     # past camera_timeout: every check has spoken
        assert recorder.status() == (
            DiagnosticStatus.WARN, "camera 'wrist_1': crop '150:450, 350:1100' reaches past "
            'its 640x480 frames (cols bound 1100 (640 cols)): the model sees rows 150:450, '
            'cols 350:640 of them; is the camera at the size the crop was written for '
            '(hil-serl: 1280x720)?')
    finally:
        bench.remove(recorder)
    recorder = start_recorder(bench, output_dir=str(tmp_path / 'data2'), camera_timeout=0.5,
                              label_topic='scene_success', **{'cameras.front.crop': '500:600, :'})
    try:
        bench.wait(lambda: recorder.status()[0] == DiagnosticStatus.WARN, 20, 'a warning')
        level, message = recorder.status()
        assert message.startswith('no set recorded for '), message
        assert message.endswith(": every set is refused: camera 'front' on front/image_raw: "
                                "crop '500:600, :' leaves nothing of a 640x480 frame "
                                '[encoding=rgb8 640x480 (921600 bytes)]'), message
        assert recorder.writer.failures == 0
    finally:
        bench.remove(sim)
        bench.remove(recorder)
