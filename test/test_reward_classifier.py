"""The model reproduces hil-serl's parameter tree, ownership rule, counts and input handling."""
import jax
import numpy as np
import pytest

from conftest import params_for
from hil_serl_reward.model.reward_classifier import (
    ClassifierSpec, build_classifier, count_params, expected_param_count, param_shapes)

# hil-serl-classifier.md §1.6, image_keys ['front', 'wrist_1'].
BACKBONE = 'encoder_def/encoder_front/pretrained_encoder/'
SPEC_TABLE = {
    BACKBONE + 'conv_init/kernel': (7, 7, 3, 64),
    BACKBONE + 'norm_init/scale': (64,), BACKBONE + 'norm_init/bias': (64,),
}
for i, (cin, cout) in enumerate([(64, 64), (64, 128), (128, 256), (256, 512)]):
    block = f'{BACKBONE}ResNetBlock_{i}/'
    SPEC_TABLE[block + 'Conv_0/kernel'] = (3, 3, cin, cout)
    SPEC_TABLE[block + 'Conv_1/kernel'] = (3, 3, cout, cout)
    for norm in ('MyGroupNorm_0', 'MyGroupNorm_1') + (('norm_proj',) if i else ()):
        SPEC_TABLE[f'{block}{norm}/scale'] = (cout,)
        SPEC_TABLE[f'{block}{norm}/bias'] = (cout,)
    if i:
        SPEC_TABLE[block + 'conv_proj/kernel'] = (1, 1, cin, cout)
for cam in ('front', 'wrist_1'):
    enc = f'encoder_def/encoder_{cam}/'
    SPEC_TABLE.update({
        enc + 'SpatialLearnedEmbeddings_0/kernel': (4, 4, 512, 8),
        enc + 'Dense_0/kernel': (4096, 256), enc + 'Dense_0/bias': (256,),
        enc + 'LayerNorm_0/scale': (256,), enc + 'LayerNorm_0/bias': (256,),
    })
SPEC_TABLE.update({
    'Dense_0/kernel': (512, 256), 'Dense_0/bias': (256,),
    'LayerNorm_0/scale': (256,), 'LayerNorm_0/bias': (256,),
    'Dense_1/kernel': (256, 1), 'Dense_1/bias': (1,),
})


def flat_shapes(tree):
    return {'/'.join(p.key for p in path): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.mark.parametrize('keys', [('front', 'wrist_1'), ('wrist_1', 'front')])
def test_parameter_tree_equals_hil_serl(keys):
    shapes = param_shapes(ClassifierSpec(keys))
    assert flat_shapes(shapes) == SPEC_TABLE
    assert all(leaf.dtype == np.float32 for leaf in jax.tree_util.tree_leaves(shapes))


@pytest.mark.parametrize('keys, owner', [
    (('wrist_1', 'front'), 'front'),
    (('front', 'wrist_1'), 'front'),
    (('b', 'a', 'c'), 'a'),
    (('wrist_2', 'wrist_1', 'side_classifier'), 'side_classifier'),
    (('left/side_classifier',), 'left/side_classifier'),
])
def test_shared_backbone_lives_under_smallest_key(keys, owner):
    encoders = param_shapes(ClassifierSpec(keys))['encoder_def']
    holders = [name for name, sub in encoders.items() if 'pretrained_encoder' in sub]
    assert holders == [f'encoder_{owner}']
    assert ClassifierSpec(keys).backbone_owners == (owner,)
    for key in keys:
        assert set(encoders[f'encoder_{key}']) >= {
            'SpatialLearnedEmbeddings_0', 'Dense_0', 'LayerNorm_0'}


def test_independent_backbones_one_per_camera():
    encoders = param_shapes(ClassifierSpec(('wrist_1', 'front'), backbone='independent'))[
        'encoder_def']
    assert all('pretrained_encoder' in sub for sub in encoders.values())
    assert flat_shapes(encoders['encoder_wrist_1']['pretrained_encoder']) == \
        flat_shapes(encoders['encoder_front']['pretrained_encoder'])


@pytest.mark.parametrize('keys, backbone, n_way, count', [
    (('wrist_1',), 'shared', 2, 6_087_233),
    (('wrist_1',), 'shared', 3, 6_087_747),
    (('wrist_1', 'front'), 'shared', 2, 7_267_649),
    (('wrist_1', 'front'), 'independent', 2, 12_173_441),
    (('a', 'b', 'c'), 'shared', 2, 8_448_065),
])
def test_parameter_counts(keys, backbone, n_way, count):
    spec = ClassifierSpec(keys, n_way=n_way, backbone=backbone)
    assert count_params(param_shapes(spec)) == count
    assert expected_param_count(len(keys), backbone, n_way) == count


def test_frozen_and_fine_tuned_share_one_tree():
    frozen = flat_shapes(param_shapes(ClassifierSpec(('a', 'b'))))
    tuned = flat_shapes(param_shapes(ClassifierSpec(('a', 'b'), frozen=False)))
    assert frozen == tuned


def test_spec_rejects_bad_options():
    with pytest.raises(ValueError, match='at least one'):
        ClassifierSpec(())
    with pytest.raises(ValueError, match='unique'):
        ClassifierSpec(('a', 'a'))
    with pytest.raises(ValueError, match='backbone'):
        ClassifierSpec(('a',), backbone='separate')


def test_batched_and_unbatched_inputs_agree(two_camera_spec, two_camera_params, images):
    """hil-serl accepts (H,W,C), (T=1,H,W,C) and (B,T=1,H,W,C); all give the same logits."""
    model = build_classifier(two_camera_spec)
    variables = {'params': two_camera_params}
    keys = two_camera_spec.image_keys
    batched = model.apply(variables, {k: images[k][:, None] for k in keys})
    assert batched.shape == (2, 1)
    for i in range(2):
        with_time = model.apply(variables, {k: images[k][i][None] for k in keys})
        bare = model.apply(variables, {k: images[k][i] for k in keys})
        assert with_time.shape == bare.shape == (1,)
        np.testing.assert_allclose(with_time, batched[i], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(bare, batched[i], rtol=1e-5, atol=1e-5)


def test_key_order_changes_logits(two_camera_params, images):
    """The concatenation order is part of the model: swapping keys gives other logits."""
    obs = {k: images[k][:, None] for k in ('wrist_1', 'front')}
    listed = build_classifier(ClassifierSpec(('wrist_1', 'front'))).apply(
        {'params': two_camera_params}, obs)
    swapped = build_classifier(ClassifierSpec(('front', 'wrist_1'))).apply(
        {'params': two_camera_params}, obs)
    assert not np.allclose(listed, swapped, atol=1e-4)


def test_n_way_head_outputs_n_logits(images):
    spec = ClassifierSpec(('wrist_1',), n_way=3)
    logits = build_classifier(spec).apply({'params': params_for(spec)},
                                          {'wrist_1': images['wrist_1'][:, None]})
    assert logits.shape == (2, 3)
