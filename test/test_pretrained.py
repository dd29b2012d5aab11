"""ImageNet ResNet-10 weights from a synthetic pkl of the documented structure (§3)."""
import pickle

import jax
import numpy as np
import pytest

from conftest import params_for
from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.model.pretrained import (
    PretrainedWeightsError, apply_resnet10_weights, load_resnet10_weights)
from hil_serl_reward.model.resnet_v1 import BACKBONE_MODULES
from hil_serl_reward.model.reward_classifier import ClassifierSpec


def synthetic_weights(spec_params, owner='front', seed=3):
    """Random arrays shaped like the backbone, keyed as hil-serl's pickle is."""
    rng = np.random.default_rng(seed)
    backbone = spec_params['encoder_def'][f'encoder_{owner}']['pretrained_encoder']
    return jax.tree_util.tree_map(
        lambda x: (0.05 * rng.standard_normal(x.shape)).astype(np.float32), backbone)


def write_pkl(path, obj):
    path.write_bytes(pickle.dumps(obj))
    return path


def test_shared_weights_go_to_owner_and_serve_every_camera(tmp_path, two_camera_spec,
                                                           two_camera_params, images):
    weights = synthetic_weights(two_camera_params)
    pkl = write_pkl(tmp_path / 'resnet10_params.pkl', {**weights, 'head': {'w': np.zeros(3)}})
    logged = []
    loaded = load_resnet10_weights(pkl)
    assert set(loaded) == set(BACKBONE_MODULES)
    new = apply_resnet10_weights(two_camera_params, two_camera_spec, loaded, log=logged.append)
    backbone = new['encoder_def']['encoder_front']['pretrained_encoder']
    for module in BACKBONE_MODULES:
        for a, b in zip(jax.tree_util.tree_leaves(backbone[module]),
                        jax.tree_util.tree_leaves(weights[module])):
            np.testing.assert_array_equal(a, b)
    assert 'pretrained_encoder' not in new['encoder_def']['encoder_wrist_1']
    assert 'pretrained_encoder' in two_camera_params['encoder_def']['encoder_front']
    assert len(logged) == 1 and 'encoder_front/pretrained_encoder' in logged[0]
    assert 'lexicographically smallest' in logged[0] and 'wrist_1' in logged[0]
    # both cameras' embeddings now come from the new backbone: logits of each change
    before = RewardClassifier(two_camera_spec, two_camera_params, device='cpu', warm_up=False)
    after = RewardClassifier(two_camera_spec, new, device='cpu', warm_up=False)
    assert not np.allclose(before.predict(images).logits, after.predict(images).logits)


def test_independent_weights_fill_every_backbone(tmp_path):
    spec = ClassifierSpec(('wrist_1', 'front'), backbone='independent')
    params = params_for(spec)
    pkl = write_pkl(tmp_path / 'w.pkl', synthetic_weights(params))
    logged = []
    new = apply_resnet10_weights(params, spec, load_resnet10_weights(pkl), log=logged.append)
    a = new['encoder_def']['encoder_front']['pretrained_encoder']['conv_init']['kernel']
    b = new['encoder_def']['encoder_wrist_1']['pretrained_encoder']['conv_init']['kernel']
    np.testing.assert_array_equal(a, b)
    assert 'encoder_wrist_1/pretrained_encoder' in logged[0]


def test_missing_file_names_the_download(tmp_path):
    with pytest.raises(PretrainedWeightsError, match='resnet10_params.pkl'):
        load_resnet10_weights(tmp_path / 'resnet10_params.pkl')


@pytest.mark.parametrize('payload, message', [
    ([1, 2, 3], 'holds a list'),
    ({'conv_init': {}}, 'lacks backbone modules'),
])
def test_wrong_structure_is_rejected(tmp_path, payload, message):
    with pytest.raises(PretrainedWeightsError, match=message):
        load_resnet10_weights(write_pkl(tmp_path / 'w.pkl', payload))


def test_wrong_shapes_are_rejected(tmp_path, two_camera_params):
    weights = synthetic_weights(two_camera_params)
    weights['conv_init'] = {'kernel': np.zeros((3, 3, 3, 64), np.float32)}
    with pytest.raises(PretrainedWeightsError, match='conv_init/kernel'):
        load_resnet10_weights(write_pkl(tmp_path / 'w.pkl', weights))


def test_not_a_pickle(tmp_path):
    (tmp_path / 'w.pkl').write_bytes(b'not a pickle at all')
    with pytest.raises(PretrainedWeightsError, match='not a readable pickle'):
        load_resnet10_weights(tmp_path / 'w.pkl')
