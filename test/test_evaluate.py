"""evaluate: metrics are right on a labelled synthetic set; CSV and plot are written."""
import csv
import json

import numpy as np
import pytest

from hil_serl_reward.data.classifier_data import (
    file_names, load_classifier_data, transition, write_pickle)
from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.model.metrics import (
    binary_metrics, suggest_threshold, threshold_for_precision)
from hil_serl_reward.tools import evaluate
from hil_serl_reward.tools.contact_sheet import contact_sheet, review_rows


def test_binary_metrics_by_hand():
    probabilities = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1])
    labels = np.array([1, 1, 1, 0, 0, 0])
    m = binary_metrics(probabilities, labels, 0.5)
    assert (m.tp, m.fp, m.tn, m.fn) == (2, 1, 2, 1)
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3)


def test_threshold_for_precision_picks_the_lowest_that_reaches_it():
    probabilities = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1])
    labels = np.array([1, 1, 1, 0, 0, 0])
    chosen = threshold_for_precision(probabilities, labels, 1.0)
    assert chosen.threshold == pytest.approx(0.6) and chosen.recall == pytest.approx(2 / 3)
    assert threshold_for_precision(probabilities, labels, 0.75).threshold == pytest.approx(0.2)
    assert threshold_for_precision(np.array([0.9]), np.array([0]), 0.5) is None


def two_classes(seed, failures, successes):
    """Probabilities drawn uniformly in each class's (low, high, count); failures first."""
    rng = np.random.default_rng(seed)
    drawn = [rng.uniform(*failures), rng.uniform(*successes)]
    labels = np.array([0] * failures[2] + [1] * successes[2])
    return drawn[0], drawn[1], np.concatenate(drawn), labels


def test_suggestion_on_separated_classes_is_the_middle_of_the_gap():
    """The demo's case: the old rule said 0.0049, barely above the failures."""
    failures, successes, probabilities, labels = two_classes(0, (0.0, 0.0049, 200),
                                                             (0.96, 1.0, 60))
    chosen = suggest_threshold(probabilities, labels, 0.95)
    assert threshold_for_precision(probabilities, labels, 0.95).threshold < 0.005   # the old
    assert chosen.margin == (failures.max(), successes.min())
    assert chosen.threshold == pytest.approx((failures.max() + successes.min()) / 2)
    assert 0.4 < chosen.threshold < 0.6
    assert chosen.at_suggestion.precision == chosen.at_suggestion.recall == 1.0
    assert chosen.at_half.precision == 1.0


def test_suggestion_on_overlapping_classes_keeps_the_precision_target():
    _, _, probabilities, labels = two_classes(1, (0.0, 0.7, 300), (0.4, 1.0, 300))
    chosen = suggest_threshold(probabilities, labels, 0.95)
    low, high = chosen.margin
    assert low < chosen.threshold < high and high - low < 0.05      # a narrow gap
    assert chosen.at_suggestion.precision >= 0.95
    assert binary_metrics(probabilities, labels, low).as_dict()['confusion'] == \
        chosen.at_suggestion.as_dict()['confusion']                  # same decisions
    assert chosen.at_half.precision < 0.95 < chosen.at_suggestion.precision
    assert suggest_threshold(np.array([0.9]), np.array([0]), 0.5) is None


@pytest.fixture
def classifier_data(tmp_path):
    rng = np.random.default_rng(5)
    folder = tmp_path / 'classifier_data'
    folder.mkdir()
    success_name, failure_name = file_names('demo', 4, __import__('datetime').datetime(2026, 1, 2))
    for name, count in ((success_name, 4), (failure_name, 6)):
        write_pickle(folder / name, [transition(
            {k: rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for k in ('wrist_1', 'front')},
            {'state': np.zeros((1, 19), np.float32)}) for _ in range(count)])
    return folder


def test_classifier_data_names_and_loading(classifier_data):
    names = sorted(p.name for p in classifier_data.iterdir())
    assert names == ['demo_4_success_images_2026-01-02_00-00-00.pkl',
                     'demo_failure_images_2026-01-02_00-00-00.pkl']
    images, labels = load_classifier_data(classifier_data, ['wrist_1', 'front'])
    assert images['front'].shape == (10, 128, 128, 3) and labels.tolist() == [1] * 4 + [0] * 6


def test_cli_on_classifier_data(tmp_path, capsys, classifier_data, checkpoint_for):
    ckpt = checkpoint_for(('wrist_1', 'front'))
    out = tmp_path / 'eval'
    assert evaluate.main([str(ckpt), '--classifier-data', str(classifier_data), '--output',
                          str(out), '--threshold', '0.5', '--target-precision', '0.5',
                          '--json', '--device', 'cpu']) == 0
    report = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader((out / 'probabilities.csv').open()))
    assert len(rows) == report['samples'] == 10
    probabilities = np.array([float(r['probability']) for r in rows])
    labels = np.array([int(r['label']) for r in rows])
    images, _ = load_classifier_data(classifier_data, ['wrist_1', 'front'])
    direct = RewardClassifier.from_checkpoint(ckpt, device='cpu').predict(images).probabilities
    np.testing.assert_allclose(probabilities, direct, atol=1e-6)
    expected = binary_metrics(probabilities, labels, 0.5)
    assert report['metrics']['confusion'] == {'tn': expected.tn, 'fp': expected.fp,
                                              'fn': expected.fn, 'tp': expected.tp}
    assert [int(r['decision']) for r in rows] == (probabilities > 0.5).astype(int).tolist()
    assert (out / 'probability.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert (out / 'review.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    false_positives, false_negatives, nearest = report['review_rows'].values()
    assert all(labels[i] == 0 and probabilities[i] > 0.5 for i in false_positives)
    assert all(labels[i] == 1 and probabilities[i] <= 0.5 for i in false_negatives)
    assert len(false_positives) == expected.fp and len(false_negatives) == expected.fn
    assert nearest[0] == int(np.argmin(np.abs(probabilities - 0.5)))


def test_review_rows_pick_the_worst_mistakes_and_the_closest_calls():
    probabilities = np.array([0.95, 0.10, 0.60, 0.45, 0.52, 0.05, 0.80])
    labels = np.array([0, 1, 0, 1, 1, 1, 0])
    false_positives, false_negatives, nearest = review_rows(probabilities, labels, 0.5, 3)
    assert false_positives.indices == [0, 6, 2]          # failures above 0.5, highest first
    assert false_negatives.indices == [5, 1, 3]          # successes at or below, lowest first
    assert nearest.indices == [4, 3, 2]
    [unlabelled] = review_rows(probabilities, None, 0.5, 2)
    assert unlabelled.indices == [4, 3]


def test_the_contact_sheet_shows_the_model_inputs():
    rng = np.random.default_rng(3)
    keys = ('wrist_1', 'front')
    images = {k: rng.integers(0, 256, (5, 128, 128, 3), dtype=np.uint8) for k in keys}
    probabilities = np.array([0.1, 0.9, 0.4, 0.6, 0.5])
    rows = review_rows(probabilities, np.array([1, 0, 1, 0, 1]), 0.5, per_row=4)
    sheet = contact_sheet(images, keys, probabilities, np.arange(5) * 10**8, 'stamp_ns', rows,
                          per_row=4)
    strip = sheet.shape[0] // 3
    first_fp = rows[0].indices[0]                        # top-left tile of the first row
    tile = sheet[24:24 + 128, 6:6 + 256]
    assert np.array_equal(tile, np.concatenate([images[k][first_fp] for k in keys], axis=1))
    assert sheet.shape == (3 * strip, 6 + 4 * (256 + 6), 3)


def test_cli_on_a_bag_with_labels(tmp_path, capsys, checkpoint_for):
    from test_camera_sim import recorded_bag
    bag, frames = recorded_bag(tmp_path / 'bag', count=6)
    params = tmp_path / 'params.yaml'
    params.write_text('hil_serl_reward:\n  ros__parameters:\n    image_keys: [wrist_1, front]\n')
    out = tmp_path / 'eval'
    assert evaluate.main([str(checkpoint_for(('wrist_1', 'front'))), '--bag', str(bag),
                          '--params-file', str(params), '--label-topic', '/scene_success',
                          '--output', str(out), '--json', '--device', 'cpu']) == 0
    report = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader((out / 'probabilities.csv').open()))
    assert report['samples'] == 6 and [int(r['label']) for r in rows] == [1, 0, 1, 0, 1, 0]
    assert [int(r['stamp_ns']) for r in rows] == [1_000_000_000 + i * 100_000_000 + 1_000_000
                                                  for i in range(6)]


def test_frames_of_another_size_than_frame_size_are_skipped_as_the_node_refuses_them(
        tmp_path, capsys, checkpoint_for):
    from test_camera_sim import recorded_bag
    bag, _ = recorded_bag(tmp_path / 'bag', count=3)                   # 80x60 frames
    params = tmp_path / 'params.yaml'

    def evaluate_with(size):
        params.write_text('hil_serl_reward:\n  ros__parameters:\n    image_keys: [wrist_1, '
                          f'front]\n    cameras:\n      front:\n        frame_size: {size}\n')
        return evaluate.main([str(checkpoint_for(('wrist_1', 'front'))), '--bag', str(bag),
                              '--params-file', str(params), '--output', str(tmp_path / 'out'),
                              '--json', '--device', 'cpu'])

    assert evaluate_with('80x60') == 0
    report = json.loads(capsys.readouterr().out)
    assert (report['samples'], report['skipped']) == (3, 0)
    assert evaluate_with('1280x720') == 2
    assert capsys.readouterr().err.startswith('evaluate: no usable samples (3 skipped: ')


def test_an_output_that_cannot_be_a_folder_fails_before_inference(tmp_path, capsys,
                                                                  classifier_data, checkpoint_for):
    taken = tmp_path / 'evaluation'
    taken.write_text('a file, not a folder')
    assert evaluate.main([str(checkpoint_for(('wrist_1', 'front'))), '--classifier-data',
                          str(classifier_data), '--output', str(taken)]) == 2
    assert f"evaluate: [Errno 17] File exists: '{taken}'" in capsys.readouterr().err
    assert taken.read_text() == 'a file, not a folder'


def test_cli_reports_missing_data(tmp_path, capsys, checkpoint_for):
    assert evaluate.main([str(checkpoint_for(('wrist_1', 'front'))), '--classifier-data',
                          str(tmp_path)]) == 2
    assert 'no *success*.pkl' in capsys.readouterr().err


def test_an_n_way_checkpoint_is_one_line(tmp_path, capsys):
    """evaluate's metrics, plot and review sheet are binary: an egg_flip-shaped 3-way
    checkpoint is refused before any data is read."""
    from conftest import params_for
    from hil_serl_reward.model.checkpoint import save_checkpoint
    from hil_serl_reward.model.reward_classifier import ClassifierSpec
    spec = ClassifierSpec(('wrist_1', 'front'), n_way=3)
    save_checkpoint(tmp_path / 'egg', params_for(spec, 3), spec, step=1)
    code = evaluate.main([str(tmp_path / 'egg'), '--classifier-data', str(tmp_path / 'none'),
                          '--output', str(tmp_path / 'out')])
    err = capsys.readouterr().err
    assert code == 2 and 'is a 3-way classifier; evaluate scores binary' in err, err
