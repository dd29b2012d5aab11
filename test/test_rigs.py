"""Several rigs served by one node (`rigs`): each rig's cameras and outputs under its own
namespace, one model, the sets of the rigs waiting together classified as one batch."""
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.ros import classification, config
from hil_serl_reward.ros.camera_input import StartupError
from ros_harness import OutputProbe, SlowClassifier

KEYS = ('wrist_1', 'front')
RIGS = ('left', 'right')


def frames(seed):
    rng = np.random.default_rng(seed)
    return {key: rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for key in KEYS}


@pytest.fixture
def probe(bench):
    return OutputProbe(bench, RIGS, lambda rig: {key: f'{rig}/{key}/image_raw' for key in KEYS})


def test_each_rig_is_classified_on_its_own_cameras_and_published_under_its_namespace(
        bench, probe, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            rigs=list(RIGS), camera_timeout=60.0)
    assert [rig.name for rig in node.rigs] == list(RIGS)
    assert node.classifier.batch_sizes == (1, 2)
    probe.connect(node)
    direct = RewardClassifier.from_checkpoint(checkpoint_for(KEYS), device='cpu')
    sent = {'left': frames(1), 'right': frames(2)}
    for rig in RIGS:
        probe.send(rig, sent[rig], 100_000_000)
    bench.wait(lambda: all(probe.probability[rig] for rig in RIGS), 15, 'a result per rig')
    for rig in RIGS:
        expected = float(direct.predict(sent[rig]).probabilities[0])
        assert probe.probability[rig][0].data == pytest.approx(expected, abs=1e-5)
        assert probe.success[rig][0].data == (expected > 0.5)
        if not classification.UNAVAILABLE:
            bench.wait(lambda r=rig: probe.classifications[r], 5, f'{rig} classification')
            assert probe.classifications[rig][0].header.stamp.nanosec == 100_000_000
    assert bench.outputs['probability'] == []       # nothing on the node's own namespace
    name = node.get_fully_qualified_name()
    statuses = probe.statuses(name)
    for rig in RIGS:
        assert statuses[rig]['level'] == DiagnosticStatus.OK
        assert statuses[rig]['rig'] == rig and statuses[rig]['sets published'] == '1'
        assert statuses[rig]['rigs'] == '2' and statuses[rig]['batches compiled'] == '1, 2'
        assert f'/{rig}/wrist_1/image_raw' in node.resolve_topic_name(
            node.rigs[RIGS.index(rig)].cameras[0].topic)


class BatchRecorder(SlowClassifier):
    """The real classifier, slowed, recording the batch size of each call."""

    def __init__(self, inner, delay):
        super().__init__(inner, delay)
        self.batches = []
        self.busy = threading.Event()

    def predict(self, images):
        self.busy.set()
        self.batches.append(len(next(iter(images.values()))))
        return super().predict(images)


def test_sets_of_rigs_waiting_together_are_classified_in_one_batch(bench, probe,
                                                                   checkpoint_for):
    slow = BatchRecorder(RewardClassifier.from_checkpoint(checkpoint_for(KEYS), device='cpu',
                                                          batch_sizes=(1, 2)), delay=0.5)
    node = bench.start_node(loader=lambda path: slow, checkpoint_path='unused',
                            image_keys=list(KEYS), rigs=list(RIGS), camera_timeout=60.0)
    probe.connect(node)
    probe.send('left', frames(1), 100_000_000)
    bench.wait(slow.busy.is_set, 10, 'the first inference')
    probe.send('left', frames(3), 200_000_000)          # both wait behind the first
    probe.send('right', frames(4), 200_000_000)
    bench.wait(lambda: all(len(probe.probability[rig]) == (2 if rig == 'left' else 1)
                           for rig in RIGS), 15, 'the second batch')
    assert slow.batches == [1, 2]
    direct = RewardClassifier.from_checkpoint(checkpoint_for(KEYS), device='cpu')
    for rig, seed, got in (('left', 3, probe.probability['left'][1]),
                           ('right', 4, probe.probability['right'][0])):
        assert got.data == pytest.approx(float(direct.predict(frames(seed)).probabilities[0]),
                                         abs=1e-5)
    values = node.diagnostic_values(node.rigs[1])
    assert values['sets per batch p100'] == '2' and values['sets per batch p50'] != '-'


def test_one_rigs_bad_frame_costs_that_rig_only(bench, probe, checkpoint_for):
    """A frame the crop does not fit (right's front camera sends 64x64) is refused, counted
    and logged for its rig; the other rig's set, taken with it, is classified and published."""
    slow = BatchRecorder(RewardClassifier.from_checkpoint(checkpoint_for(KEYS), device='cpu',
                                                          batch_sizes=(1, 2)), delay=0.5)
    node = bench.start_node(loader=lambda path: slow, checkpoint_path='unused',
                            image_keys=list(KEYS), rigs=list(RIGS), camera_timeout=60.0,
                            **{'cameras.front.crop': '100:128, 0:128'})
    probe.connect(node)
    probe.send('left', frames(9), 100_000_000)
    bench.wait(slow.busy.is_set, 10, 'the first inference')
    probe.send('right', {**frames(6), 'front': np.zeros((64, 64, 3), np.uint8)}, 200_000_000)
    probe.send('left', frames(7), 200_000_000)           # both wait behind the first
    right = node.rigs[RIGS.index('right')]
    bench.wait(lambda: right.input.rejected['front']['crop'] == 1, 10, 'the crop refusal')
    bench.wait(lambda: len(probe.probability['left']) == 2, 10, "left's second result")
    assert slow.batches == [1, 1] and probe.probability['right'] == []
    probe.send('right', frames(8), 300_000_000)         # the next good set is served
    bench.wait(lambda: probe.probability['right'], 10, "right's next result")
    assert node.rigs[RIGS.index('left')].input.rejected['front']['crop'] == 0
    assert node.counts['processing_errors'] == 0


def test_a_silent_rig_is_named_while_the_other_serves(bench, probe, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            rigs=list(RIGS), camera_timeout=0.5)
    probe.connect(node)
    stop = threading.Event()

    def left_camera_at_15_hz():
        stamp = 100_000_000
        while not stop.wait(1 / 15):
            probe.send('left', frames(5), stamp)
            stamp += 66_000_000
    camera = threading.Thread(target=left_camera_at_15_hz)
    camera.start()
    try:
        time.sleep(1.5)
        statuses = probe.statuses(node.get_fully_qualified_name())
    finally:
        stop.set()
        camera.join()
    assert statuses['left']['level'] == DiagnosticStatus.OK, statuses['left']['message']
    assert statuses['right']['level'] == DiagnosticStatus.WARN
    message = statuses['right']['message']
    assert message.startswith('rig right: cameras silent: wrist_1 (no images yet: 1 publisher '
                              'matched'), message
    assert 'front (no images yet: 1 publisher matched' in message
    assert '/right/wrist_1/image_raw`' in message and '/left/' not in message


def test_rig_names_and_camera_topics_are_checked_at_start_up(bench, checkpoint_for):
    assert config.check({'rigs': ['left', 'arm_2/top']}) == []
    for bad, reason in ((['/left'], 'relative namespace'), (['left', 'left'], 'unique'),
                        (['2nd'], 'relative namespace'), ('left', 'list of namespace')):
        assert reason in config.check({'rigs': bad})[0]
    with pytest.raises(StartupError, match=r"cameras.front.topic: '/front/image_raw' is "
                                           r"absolute; with rigs"):
        bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                         rigs=list(RIGS), **{'cameras.front.topic': '/front/image_raw'})


def test_each_rig_keeps_its_successes_in_a_review_folder_of_its_own(bench, probe,
                                                                    checkpoint_for, tmp_path):
    from hil_serl_reward.data.classifier_data import load_classifier_data
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            rigs=list(RIGS), camera_timeout=60.0, threshold=0.0,
                            review_dir=str(tmp_path / 'review'))
    probe.connect(node)
    sent = {'left': frames(11), 'right': frames(12)}
    for rig in RIGS:
        probe.send(rig, sent[rig], 100_000_000)
    bench.wait(lambda: all(rig.review.kept == 1 for rig in node.rigs), 15, 'one file per rig')
    for rig in RIGS:
        loaded, labels = load_classifier_data(tmp_path / 'review' / rig, KEYS)
        assert labels.tolist() == [1]
        assert np.array_equal(loaded['front'][0], sent[rig]['front'])   # 128x128, no crop
    assert not list((tmp_path / 'review').glob('*.pkl'))
    assert node.diagnostic_values(node.rigs[1])['review sets kept'] == '1'


def test_a_failing_review_folder_warns_for_its_rig_only(bench, checkpoint_for, tmp_path):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            rigs=list(RIGS), camera_timeout=60.0,
                            review_dir=str(tmp_path / 'review'))
    left, right = node.rigs
    right.review.last_error = 'No space left on device'     # as its writer thread records
    assert node.status(right) == (DiagnosticStatus.WARN,
                                  'rig right: review folder failing: No space left on device')
    assert node.status(left) == (DiagnosticStatus.OK, 'publishing rewards')
