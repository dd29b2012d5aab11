"""review_dir: every set the node calls a success, kept as its model inputs in classifier_data
format, one file per set, readable by the trainer's reader; off by default."""
import numpy as np
import pytest

from hil_serl_reward.data.classifier_data import load_classifier_data
from hil_serl_reward.data.review import ReviewFolder
from hil_serl_reward.pipeline.preprocessing import parse_crop, preprocess
from hil_serl_reward.ros.camera_input import StartupError
from test_classifier_node import CROPS, KEYS, camera_params, frames, send_set


def test_review_folder_writes_one_classifier_data_file_per_set(tmp_path):
    review = ReviewFolder(tmp_path / 'review')
    images = [{k: np.full((128, 128, 3), i, np.uint8) for k in KEYS} for i in range(3)]
    for set_images in images:
        review.keep(set_images)
    review.close()
    assert review.kept == 3 and len(list((tmp_path / 'review').glob('*success*.pkl'))) == 3
    loaded, labels = load_classifier_data(tmp_path / 'review', KEYS)
    assert labels.tolist() == [1, 1, 1]
    assert sorted(int(loaded['front'][i, 0, 0, 0]) for i in range(3)) == [0, 1, 2]


def test_the_node_keeps_its_successes_for_review(bench, checkpoint_for, tmp_path):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0, threshold=0.0, review_dir=str(tmp_path / 'r'),
                            **camera_params(CROPS))
    bench.connect(list(KEYS))
    sent = [frames(i) for i in range(3)]
    for i, rgb in enumerate(sent):
        send_set(bench, rgb, (i + 1) * 100_000_000)
        bench.wait_outputs(i + 1)
    assert all(bench.outputs['success'])                   # threshold 0: every set a success
    bench.wait(lambda: node.rigs[0].review.kept == 3, 10, 'three review files')
    loaded, labels = load_classifier_data(tmp_path / 'r', KEYS)
    assert len(labels) == 3
    expected = [preprocess(rgb['wrist_1'], parse_crop(CROPS['wrist_1'])) for rgb in sent]
    assert all(any(np.array_equal(e, got) for got in loaded['wrist_1']) for e in expected)
    assert bench.latest_diagnostics()['review sets kept'] == '3'


def test_failures_are_not_kept_and_review_is_off_by_default(bench, checkpoint_for, tmp_path):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0, threshold=1.0, review_dir=str(tmp_path / 'r'))
    bench.connect(list(KEYS))
    send_set(bench, frames(0), 100_000_000)
    bench.wait_outputs(1)
    assert not any(bench.outputs['success'])
    assert node.rigs[0].review.kept == 0 and not list((tmp_path / 'r').glob('*.pkl'))
    bench.remove(node)
    bench.node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)),
                                  image_keys=list(KEYS))
    assert bench.node.rigs[0].review is None


def test_an_unwritable_review_dir_fails_at_start(bench, checkpoint_for, tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    with pytest.raises(StartupError, match='review_dir: output folder .* is not writable'):
        bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                         review_dir=str(blocker / 'sub'))
