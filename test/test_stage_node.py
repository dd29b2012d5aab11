"""A multi-stage task served by one node (`stages`): one camera set, each stage's own
checkpoint and threshold, its results under its name, the shared backbone run once; a
stage reloads alone; what cannot be served together is refused at start-up."""
import threading
import time

import jax
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from std_msgs.msg import Float32

from conftest import params_for
from hil_serl_reward.model.checkpoint import save_checkpoint
from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.model.reward_classifier import ClassifierSpec
from hil_serl_reward.model.stages import split_backbones, staged_forward, with_backbones
from hil_serl_reward.ros import classification, config
from hil_serl_reward.ros.camera_input import StartupError
from ros_harness import OutputProbe

KEYS = ('wrist_1', 'front')
STAGES = ('grasp', 'place')


def stage_checkpoint(folder, seed, keys=KEYS, n_way=2, backbone_seed=0):
    """A checkpoint of `seed`'s encoders and head on seed 0's backbone (hil-serl's stages:
    one frozen ImageNet ResNet-10), or on `backbone_seed`'s."""
    spec = ClassifierSpec(keys, n_way=n_way)
    own, _ = split_backbones(jax.tree_util.tree_map(np.asarray, dict(params_for(spec, seed))),
                             spec)
    shared = split_backbones(params_for(ClassifierSpec(keys), backbone_seed),
                             ClassifierSpec(keys))[1]
    save_checkpoint(folder, with_backbones(own, shared, spec), spec, step=seed)
    return str(folder)


def frames(seed):
    rng = np.random.default_rng(seed)
    return {key: rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for key in KEYS}


def stage_probe(bench):
    """The node's cameras (every stage reads them) and each stage's outputs."""
    return OutputProbe(bench, STAGES, lambda stage: {key: f'{key}/image_raw' for key in KEYS})


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    return {name: stage_checkpoint(tmp_path_factory.mktemp(name), seed)
            for name, seed in (('grasp', 1), ('place', 2), ('place_v2', 3))}


def expected(checkpoint, images):
    return float(RewardClassifier.from_checkpoint(checkpoint, image_keys=KEYS, device='cpu')
                 .predict(images).probabilities[0])


def stage_params(checkpoints, **more):
    return {'image_keys': list(KEYS), 'stages': list(STAGES), 'camera_timeout': 60.0,
            'grasp.checkpoint_path': checkpoints['grasp'],
            'place.checkpoint_path': checkpoints['place'], **more}


def test_each_stage_publishes_its_own_classifiers_result_under_its_name(bench, checkpoints):
    probe = stage_probe(bench)
    node = bench.start_node(**stage_params(checkpoints, threshold=0.3,
                                           **{'place.threshold': 0.75}))
    assert node.stage_thresholds == {'grasp': 0.3, 'place': 0.75}
    assert node.classifier.backbone_passes == 1
    probe.connect(node)
    sent = frames(1)
    probe.send(STAGES[0], sent, 100_000_000)
    bench.wait(lambda: all(probe.probability[stage] for stage in STAGES), 15,
               'a result per stage')
    for stage, threshold in node.stage_thresholds.items():
        want = expected(checkpoints[stage], sent)
        assert probe.probability[stage][0].data == pytest.approx(want, abs=1e-5)
        assert probe.success[stage][0].data == (want > threshold)
        if not classification.UNAVAILABLE:
            bench.wait(lambda s=stage: probe.classifications[s], 5, f'{stage} classification')
            assert probe.classifications[stage][0].header.stamp.nanosec == 100_000_000
    assert probe.probability['grasp'][0].data != probe.probability['place'][0].data
    assert bench.outputs['probability'] == []       # nothing on the node's own topics
    statuses = probe.statuses(node.get_fully_qualified_name())
    for stage in STAGES:
        status = statuses[stage]
        assert status['level'] == DiagnosticStatus.OK, status['message']
        assert status['stage'] == stage and status['sets published'] == '1'
        assert status['checkpoint'].startswith(f'{stage}: {checkpoints[stage]}')
        assert status['threshold'] == f'{node.stage_thresholds[stage]:g}'
        assert status['backbone passes per set'] == '1' and status['stages'] == 'grasp, place'


def test_a_crop_past_the_frames_is_said_in_every_stages_status(bench, checkpoints):
    """The stages share one camera input: each stage's status says what the crop does."""
    probe = stage_probe(bench)
    node = bench.start_node(**stage_params(checkpoints, **{
        f'cameras.{KEYS[0]}.crop': '0:200, :'}))
    probe.connect(node)
    probe.send(STAGES[0], frames(1), 100_000_000)
    bench.wait(lambda: all(probe.probability[stage] for stage in STAGES), 15,
               'a result per stage')
    for rig in node.rigs:
        level, message = node.status(rig)
        assert level == DiagnosticStatus.WARN and message.startswith(
            f"stage {rig.name}: camera '{KEYS[0]}': crop '0:200, :' reaches past its 128x128 "
            f"frames (rows bound 200 (128 rows))"), message


def test_a_stage_reloads_alone_while_the_other_keeps_its_model(bench, checkpoints):
    probe = stage_probe(bench)
    node = bench.start_node(**stage_params(checkpoints))
    probe.connect(node)
    grasp_model = node.classifier.stages['grasp']
    assert bench.set_parameter('place.checkpoint_path', checkpoints['place_v2']).successful
    bench.wait(lambda: node.counts['reloads'] == 1, 60, 'the reload of place')
    assert node.classifier.stages['grasp'] is grasp_model          # not read again
    assert node.stage_paths['place'] == checkpoints['place_v2']
    sent = frames(2)
    probe.send(STAGES[0], sent, 200_000_000)
    bench.wait(lambda: all(probe.probability[stage] for stage in STAGES), 15, 'results')
    assert probe.probability['place'][0].data == pytest.approx(
        expected(checkpoints['place_v2'], sent), abs=1e-5)
    assert probe.probability['grasp'][0].data == pytest.approx(
        expected(checkpoints['grasp'], sent), abs=1e-5)
    # runtime changes: a stage's threshold; the node's own checkpoint_path and threshold
    # would be every stage's, so they are refused
    assert bench.set_parameter('grasp.threshold', 0.9).successful
    assert node.stage_thresholds['grasp'] == 0.9
    for name, value in (('threshold', 0.6), ('checkpoint_path', checkpoints['grasp'])):
        result = bench.set_parameter(name, value)
        assert not result.successful
        assert f'{name}: {value!r} with stages: each stage has its own (grasp.{name}, ' \
            f'place.{name})' in result.reason


def test_two_stages_changed_back_to_back_load_in_turn(bench, checkpoints, tmp_path,
                                                      monkeypatch):
    """`ros2 param load` of a file with both stages' new checkpoints sets them one after the
    other within milliseconds: the second waits for the first load (held here until both are
    set), where it was refused as busy and left unloaded; then both serve their new ones."""
    grasp_v2 = stage_checkpoint(tmp_path / 'grasp_v2', 8)
    node = bench.start_node(**stage_params(checkpoints))
    probe = stage_probe(bench)
    probe.connect(node)
    read, both_set = RewardClassifier.from_checkpoint, threading.Event()
    monkeypatch.setattr(RewardClassifier, 'from_checkpoint', classmethod(
        lambda cls, *args, **kwargs: (both_set.wait(30), read(*args, **kwargs))[1]))
    assert bench.set_parameter('grasp.checkpoint_path', grasp_v2).successful
    assert bench.set_parameter('place.checkpoint_path', checkpoints['place_v2']).successful
    assert ', 1 waiting' in node._reloader.loading
    both_set.set()
    bench.wait(lambda: node.counts['reloads'] == 2, 60, 'both reloads')
    assert node.counts['reload_failures'] == 0
    assert node.stage_paths == {'grasp': grasp_v2, 'place': checkpoints['place_v2']}
    assert [node.get_parameter(f'{stage}.checkpoint_path').value for stage in STAGES] == [
        grasp_v2, checkpoints['place_v2']]
    sent = frames(9)
    probe.send(STAGES[0], sent, 300_000_000)
    bench.wait(lambda: all(probe.probability[stage] for stage in STAGES), 15, 'results')
    for stage, path in (('grasp', grasp_v2), ('place', checkpoints['place_v2'])):
        assert probe.probability[stage][0].data == pytest.approx(expected(path, sent), abs=1e-5)


def test_a_stage_reload_that_compiles_leaves_the_serving_stages_publishing(bench, checkpoints,
                                                                           tmp_path):
    """A new checkpoint for `place` on another backbone: the call is compiled anew (two
    backbone passes now), on the reload thread, while both stages go on publishing at 15 fps
    with the models they had; then `place` answers with its new model, `grasp` as before."""
    other = stage_checkpoint(tmp_path / 'other_backbone', 6, backbone_seed=7)
    staged_forward.cache_clear()    # compiled for two backbones by an earlier test: not here
    node = bench.start_node(**stage_params(checkpoints))
    probe = stage_probe(bench)
    probe.connect(node)
    rgb = frames(5)
    want = {name: expected(checkpoints[name], rgb) for name in STAGES}
    new_place = expected(other, rgb)
    received = {stage: [] for stage in STAGES}
    for stage in STAGES:
        bench.probe.create_subscription(Float32, f'{stage}/probability', lambda msg, s=stage:
                                        received[s].append((time.monotonic(), msg.data)),
                                        OutputProbe.QOS)
    stop = threading.Event()

    def camera_at_15_hz():
        stamp = 100_000_000
        while not stop.wait(1 / 15):
            probe.send(STAGES[0], rgb, stamp)
            stamp += 66_666_667
    camera = threading.Thread(target=camera_at_15_hz)
    camera.start()
    try:
        bench.wait(lambda: all(received.values()), 15, 'both stages publishing')
        requested = time.monotonic()
        assert bench.set_parameter('place.checkpoint_path', other).successful
        bench.wait(lambda: node.counts['reloads'] == 1, 120, 'the reload that compiles')
        loaded = time.monotonic()
        bench.wait(lambda: received['place'][-1][1] == pytest.approx(new_place, abs=1e-5),
                   10, "place's new model")
    finally:
        stop.set()
        camera.join()
    assert node.classifier.backbone_passes == 2
    for stage in STAGES:
        while_loading = [p for t, p in received[stage] if requested + 0.2 < t < loaded - 0.2]
        assert len(while_loading) >= 3, (stage, loaded - requested, len(while_loading))
        assert all(p == pytest.approx(want[stage], abs=1e-5) for p in while_loading), stage
    assert received['grasp'][-1][1] == pytest.approx(want['grasp'], abs=1e-5)


def test_a_failed_stage_reload_keeps_every_stage_serving(bench, checkpoints, tmp_path):
    node = bench.start_node(**stage_params(checkpoints))
    three_way = stage_checkpoint(tmp_path / 'flip', 4, n_way=3)
    assert bench.set_parameter('place.checkpoint_path', three_way).successful
    bench.wait(lambda: node.counts['reload_failures'] == 1, 60, 'the failed reload')
    assert node.stage_paths['place'] == checkpoints['place']
    values = node.diagnostic_values(node.rigs[1])
    assert "stage 'place'" in node._reload_problem and 'is 3-way: stages are binary' in \
        node._reload_problem
    assert values['checkpoint'].startswith(f"place: {checkpoints['place']}")


def test_stages_through_the_lifecycle_keep_their_successes_apart(bench, checkpoints, tmp_path):
    """autostart off: configure loads every stage, activate serves them on one subscription,
    deactivate stops both, cleanup and configure load them again; with review_dir each stage
    keeps the sets it called a success in a folder of its own (grasp's threshold 0: every set,
    place's 1: none)."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from hil_serl_reward.data.classifier_data import load_transitions
    ok = TransitionCallbackReturn.SUCCESS
    probe = stage_probe(bench)
    node = bench.start_node(**stage_params(checkpoints, autostart=False,
                                           review_dir=str(tmp_path / 'review'),
                                           **{'grasp.threshold': 0.0, 'place.threshold': 1.0}))
    assert node.classifier is None
    for round_ in range(2):
        assert node.trigger_configure() == ok
        assert node.classifier.backbone_passes == 1
        assert node.trigger_activate() == ok
        assert [rig.owns_input for rig in node.rigs] == [True, False]
        assert node.rigs[1].input is node.rigs[0].input
        probe.connect(node)
        sent = len(probe.probability['grasp'])
        probe.send(STAGES[0], frames(8 + round_), (round_ + 1) * 100_000_000)
        bench.wait(lambda: all(len(probe.probability[s]) > sent for s in STAGES), 15,
                   f'round {round_}: a result per stage')
        bench.wait(lambda: node.rigs[0].review.kept == 1, 10, "grasp's review file")
        assert node.rigs[1].review.kept == 0
        assert node.trigger_deactivate() == ok and node.trigger_cleanup() == ok
        assert node.classifier is None
    assert [s.data for s in probe.success['grasp']] == [True, True]
    assert [s.data for s in probe.success['place']] == [False, False]
    kept = sorted((tmp_path / 'review' / 'grasp').glob('*success*.pkl'))
    assert len(kept) == 2 and not list((tmp_path / 'review' / 'place').glob('*.pkl'))
    assert set(load_transitions(kept[0])[0]['observations']) == set(KEYS)


def test_what_one_node_cannot_serve_as_stages_is_refused_at_start_up(bench, checkpoints,
                                                                     tmp_path):
    assert config.check({'stages': ['grasp', 'place']}) == []
    for bad, reason in ((['grasp', 'grasp'], 'unique'), (['2nd'], 'starting with a letter'),
                        (['threshold'], 'not a parameter of the node'),
                        ('grasp', 'list of stage name strings')):
        assert reason in config.check({'stages': bad})[0]
    side = stage_checkpoint(tmp_path / 'side', 5, keys=('wrist_1', 'side'))
    refusals = (
        ({'rigs': ['left', 'right']}, r'with rigs .* not both'),
        ({'checkpoint_path': checkpoints['grasp']},
         r'with stages: each stage has its own \(grasp.checkpoint_path, '
         r'place.checkpoint_path\)'),
        ({'place.checkpoint_path': ''}, 'place.checkpoint_path is empty'),
        ({'place.checkpoint_path': side}, r"cannot load stage 'place': .*'side'"),
        ({'stages': ['grasp']}, r"'place.checkpoint_path' \(stage 'place' is not in stages "
                                r"\['grasp'\]\)"),
        ({'grasp.treshold': 0.4}, r"'grasp.treshold' \(did you mean 'grasp.threshold'\?\)"),
    )
    for more, message in refusals:
        with pytest.raises(StartupError, match=message):
            bench.start_node(**stage_params(checkpoints, **more))
