"""Training: learns a visually defined task, keeps a frozen backbone bit-identical, and its
checkpoint loads in the node with the trainer's logits."""
import pickle

import jax
import numpy as np
import pytest

from conftest import params_for
from hil_serl_reward.data.classifier_data import ClassifierDataWriter, transition
from hil_serl_reward.data.scenes import labelled_samples
from hil_serl_reward.model.checkpoint import load_checkpoint
from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.model.reward_classifier import ClassifierSpec
from hil_serl_reward.model.training import (
    Recipe, balanced_batches, create_state, make_predict, random_crop, split, train)
from hil_serl_reward.tools import train_classifier

KEYS = ('wrist_1', 'front')


def backbone_leaves(params, owner):
    encoder = params['encoder_def'][f'encoder_{owner}']
    return jax.tree_util.tree_leaves(encoder['pretrained_encoder'])


def test_random_crop_pads_with_edges_and_shares_offsets():
    image = np.arange(2 * 8 * 8 * 1, dtype=np.float32).reshape(2, 8, 8, 1)
    out = random_crop({'a': image, 'b': image.copy()}, jax.random.PRNGKey(3), 2)
    np.testing.assert_array_equal(out['a'], out['b'])
    padded = np.pad(image, ((0, 0), (2, 2), (2, 2), (0, 0)), mode='edge')
    for i in range(2):
        windows = [padded[i, y:y + 8, x:x + 8] for y in range(5) for x in range(5)]
        assert any(np.array_equal(out['a'][i], w) for w in windows)


def test_balanced_batches_and_stratified_split():
    labels = np.array([1] * 10 + [0] * 30)
    images = {'a': np.arange(40)[:, None]}
    (train_i, train_l), (val_i, val_l) = split(images, labels, 0.2, 0)
    assert val_l.sum() == 2 and (val_l == 0).sum() == 6
    assert set(train_i['a'][:, 0]).isdisjoint(val_i['a'][:, 0])
    batch, batch_labels = next(balanced_batches(train_i, train_l, 16, 0))
    assert batch_labels.tolist() == [1.0] * 16 + [0.0] * 16
    assert all(train_l[np.searchsorted(train_i['a'][:, 0], batch['a'][:16, 0])] == 1)


@pytest.fixture(scope='module')
def scene_split():
    images, labels = labelled_samples(KEYS, 200, seed=1)
    return split(images, labels, 0.25, 0)


@pytest.mark.parametrize('frozen', [True, False], ids=['frozen', 'fine-tune'])
def test_learns_the_scene_and_freezing_is_exact(scene_split, frozen):
    (train_i, train_l), (val_i, val_l) = scene_split
    spec = ClassifierSpec(KEYS, frozen=frozen)
    params = params_for(ClassifierSpec(KEYS))
    predict = make_predict(spec)
    chance = max(val_l.mean(), 1 - val_l.mean())
    state = train(create_state(spec, params, 1e-3), balanced_batches(train_i, train_l, 16, 0),
                  Recipe(steps=16, batch_per_class=16, learning_rate=1e-3))
    accuracy = np.mean((predict(state.params, val_i) > 0.5) == val_l)
    assert accuracy >= 0.85 > chance + 0.15
    before, after = backbone_leaves(params, 'front'), backbone_leaves(state.params, 'front')
    identical = all(np.array_equal(a, b) for a, b in zip(before, after))
    assert identical == frozen


def test_independent_backbones_train_as_specified(scene_split):
    (train_i, train_l), _ = scene_split
    spec = ClassifierSpec(KEYS, backbone='independent', frozen=False)
    params = params_for(ClassifierSpec(KEYS, backbone='independent'))
    state = train(create_state(spec, params, 1e-3), balanced_batches(train_i, train_l, 8, 0),
                  Recipe(steps=2, batch_per_class=8, learning_rate=1e-3))
    for owner in KEYS:
        assert not all(np.array_equal(a, b) for a, b in zip(backbone_leaves(params, owner),
                                                            backbone_leaves(state.params, owner)))
    assert set(state.params['encoder_def']) == {'encoder_wrist_1', 'encoder_front'}


def write_scene_data(folder, count=200, seed=1):
    images, labels = labelled_samples(KEYS, count, seed=seed)
    writer = ClassifierDataWriter(folder, 'scene', flush_every=count + 1)
    for i, label in enumerate(labels):
        writer.add(transition({k: images[k][i] for k in KEYS}, {}), bool(label))
    writer.flush()
    return images, labels


def test_cli_trains_saves_and_the_node_reproduces_its_logits(tmp_path, capsys):
    images, labels = write_scene_data(tmp_path / 'classifier_data')
    out = tmp_path / 'classifier_ckpt'
    code = train_classifier.main([
        '--data', str(tmp_path / 'classifier_data'), '--image-keys', *KEYS, '--random-init',
        '--steps', '16', '--batch-per-class', '16', '--learning-rate', '1e-3',
        '--eval-every', '8', '--output', str(out), '--target-precision', '0.9'])
    assert code == 0
    printed = capsys.readouterr().out
    assert 'encoder_front/pretrained_encoder' in printed and '7,267,649 in all' in printed
    assert '2,361,857 trainable' in printed
    loaded = load_checkpoint(out)
    assert loaded.step == 16 and loaded.spec.image_keys == KEYS
    assert loaded.sidecar['threshold_suggestion'] is not None
    assert loaded.sidecar['validation_history'][-1]['accuracy'] >= 0.85
    trainer_probabilities = make_predict(loaded.spec)(loaded.params, images)
    served = RewardClassifier.from_checkpoint(out, device='cpu')
    np.testing.assert_allclose(served.predict(images).probabilities, trainer_probabilities,
                               atol=1e-5)


def test_cli_needs_weights_or_random_init(tmp_path, capsys):
    write_scene_data(tmp_path / 'data', count=20)
    code = train_classifier.main(['--data', str(tmp_path / 'data'), '--image-keys', *KEYS,
                                  '--resnet10', str(tmp_path / 'missing.pkl')])
    assert code == 2 and 'resnet10_params.pkl' in capsys.readouterr().err


def test_cli_loads_imagenet_weights_into_the_owner(tmp_path, capsys, two_camera_params):
    write_scene_data(tmp_path / 'data', count=20)
    weights = jax.tree_util.tree_map(
        lambda x: np.full_like(x, 0.01),
        two_camera_params['encoder_def']['encoder_front']['pretrained_encoder'])
    (tmp_path / 'r.pkl').write_bytes(pickle.dumps(weights))
    assert train_classifier.main(['--data', str(tmp_path / 'data'), '--image-keys', *KEYS,
                                  '--resnet10', str(tmp_path / 'r.pkl'), '--steps', '1',
                                  '--batch-per-class', '2', '--output',
                                  str(tmp_path / 'ckpt')]) == 0
    assert 'serves them all' in capsys.readouterr().out
    kernel = load_checkpoint(tmp_path / 'ckpt').params['encoder_def']['encoder_front'][
        'pretrained_encoder']['conv_init']['kernel']
    assert np.all(kernel == np.float32(0.01))
