"""The CPU inference form computes what the plain (hil-serl) form computes, from the same params."""
import flax.linen as nn
import jax
import numpy as np
import pytest

from conftest import params_for
from hil_serl_reward.model.convolutions import (
    space_to_depth_conv, winograd_conv3x3, winograd_kernel, winograd_params)
from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.model.resnet_v1 import max_pool_3x3_stride2
from hil_serl_reward.model.reward_classifier import ClassifierSpec, build_classifier, param_shapes

DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')


def direct(x, kernel, strides, padding):
    return np.asarray(jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                                   dimension_numbers=DIMENSIONS))


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize('shape', [(2, 32, 32, 64), (1, 4, 4, 16), (3, 7, 5, 8)])
def test_winograd_equals_direct_convolution(shape):
    x, kernel = random(shape), random((3, 3, shape[-1], 24), seed=1) * 0.1
    expected = direct(x, kernel, (1, 1), 'SAME')
    got = np.asarray(winograd_conv3x3(x, winograd_kernel(kernel)))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_winograd_runs_a_large_batch_in_chunks_with_the_same_result():
    """Chunks of images whose tiles fit in `chunk_bytes` (here 2 of 5 images: 16 x 4 x 4 tiles
    x 8 channels x 4 bytes = 8 KiB per image), each one matrix product per tile element."""
    x, kernel = random((5, 8, 8, 8)), winograd_kernel(random((3, 3, 8, 24), seed=1))
    whole = np.asarray(winograd_conv3x3(x, kernel, chunk_bytes=2**30))
    chunked = np.asarray(winograd_conv3x3(x, kernel, chunk_bytes=16 * 2**10))
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(chunked, direct(x, np.asarray(random((3, 3, 8, 24), seed=1)),
                                               (1, 1), 'SAME'), rtol=1e-5, atol=1e-5)

    def products(chunk_bytes):
        jaxpr = jax.make_jaxpr(lambda a: winograd_conv3x3(a, kernel, chunk_bytes))(x)
        return sum(eqn.primitive.name == 'dot_general' for eqn in jaxpr.jaxpr.eqns)
    assert (products(2**30), products(16 * 2**10)) == (1, 3)


def test_winograd_kernel_rejects_other_sizes():
    with pytest.raises(ValueError, match='3x3 kernel, got shape'):
        winograd_kernel(random((5, 5, 2, 2)))


@pytest.mark.parametrize('shape, kernel_size, padding', [
    ((2, 128, 128, 3), 7, [(3, 3), (3, 3)]),          # the stem
    ((1, 31, 30, 3), 7, [(3, 3), (3, 3)]),            # odd sizes
    ((2, 16, 16, 8), 3, [(0, 1), (0, 1)]),            # SAME of a stride-2 3x3, even input
    ((1, 9, 12, 4), 3, [(1, 1), (2, 0)]),             # asymmetric, cropping on one side
])
def test_space_to_depth_equals_direct_stride2_convolution(shape, kernel_size, padding):
    x = random(shape)
    kernel = random((kernel_size, kernel_size, shape[-1], 16), seed=1) * 0.1
    expected = direct(x, kernel, (2, 2), padding)
    got = np.asarray(space_to_depth_conv(x, kernel, (2, 2), padding,
                                         dimension_numbers=DIMENSIONS))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_space_to_depth_passes_other_convolutions_to_xla():
    x, kernel = random((1, 8, 8, 3)), random((3, 3, 3, 4), seed=1)
    for strides, padding in (((1, 1), [(1, 1), (1, 1)]), ((2, 2), 'SAME')):
        np.testing.assert_array_equal(
            space_to_depth_conv(x, kernel, strides, padding, dimension_numbers=DIMENSIONS),
            direct(x, kernel, strides, padding))


@pytest.mark.parametrize('shape', [(2, 64, 64, 8), (1, 9, 6, 3), (64, 64, 4)])
def test_max_pool_equals_flax_max_pool(shape):
    x = random(shape)
    expected = nn.max_pool(x if x.ndim == 4 else x[None], (3, 3), strides=(2, 2),
                           padding='SAME')
    got = max_pool_3x3_stride2(x)
    np.testing.assert_array_equal(got, expected if x.ndim == 4 else expected[0])


def flat(tree):
    return {jax.tree_util.keystr(path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.mark.parametrize('backbone, transformed', [('shared', 5), ('independent', 10)])
def test_winograd_params_transform_only_the_3x3_stride1_kernels(backbone, transformed):
    spec = ClassifierSpec(('wrist_1', 'front'), backbone=backbone)
    plain = params_for(spec)
    fast = flat(winograd_params(plain, param_shapes(spec, 'fast')))
    changed = [name for name, leaf in flat(plain).items() if leaf.shape != fast[name].shape]
    assert len(changed) == transformed
    assert all(name.endswith("['Conv_1']['kernel']") or "ResNetBlock_0']['Conv_0" in name
               for name in changed)
    for name, leaf in flat(plain).items():
        if name in changed:
            np.testing.assert_allclose(fast[name], winograd_kernel(np.asarray(leaf)))
        else:
            np.testing.assert_array_equal(fast[name], leaf)


def test_winograd_params_names_a_mismatched_shape():
    three_way = params_for(ClassifierSpec(('a', 'b'), n_way=3))
    with pytest.raises(ValueError,
                       match=r'Dense_1/bias has shape \(3,\), the model expects \(1,\)'):
        winograd_params(three_way, param_shapes(ClassifierSpec(('a', 'b')),
                                                'fast'))


@pytest.mark.parametrize('keys, backbone', [
    (('wrist_1', 'front'), 'shared'),
    (('b', 'a', 'c'), 'shared'),
    (('wrist_1', 'front'), 'independent'),
])
def test_fast_form_gives_the_plain_logits(keys, backbone, images):
    spec = ClassifierSpec(keys, backbone=backbone)
    params = params_for(spec)
    fast_params = winograd_params(params, param_shapes(spec, 'fast'))
    batch = {k: images[{'a': 'wrist_1', 'b': 'front', 'c': 'side'}.get(k, k)][:, None]
             for k in keys}
    plain = jax.jit(build_classifier(spec).apply)({'params': params}, batch)
    fast = jax.jit(build_classifier(spec, 'fast').apply)(
        {'params': fast_params}, batch)
    assert np.max(np.abs(plain)) > 0.05
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5)


def test_shared_backbone_batch_equals_camera_by_camera(two_camera_spec, two_camera_params,
                                                       images):
    """Running both cameras through the shared backbone as one batch changes nothing."""
    model = build_classifier(two_camera_spec)
    looped = model.clone(encoder_def=model.encoder_def.clone(shared_backbone=False))
    batch = {k: images[k][:, None] for k in two_camera_spec.image_keys}
    np.testing.assert_allclose(jax.jit(model.apply)({'params': two_camera_params}, batch),
                               jax.jit(looped.apply)({'params': two_camera_params}, batch),
                               rtol=1e-5, atol=1e-5)


def test_classifier_uses_the_fast_form_on_cpu_with_a_shared_backbone(
        two_camera_spec, two_camera_params, images):
    fast = RewardClassifier(two_camera_spec, two_camera_params, device='cpu')
    plain = RewardClassifier(two_camera_spec, two_camera_params, device='cpu',
                             form='direct')
    assert (fast.form, plain.form) == ('fast', 'direct')
    np.testing.assert_allclose(fast.predict(images).logits, plain.predict(images).logits,
                               rtol=1e-5, atol=1e-5)
    independent = ClassifierSpec(two_camera_spec.image_keys, backbone='independent')
    assert RewardClassifier(independent, params_for(independent), device='cpu',
                            warm_up=False).form == 'direct'


@pytest.mark.parametrize('keys, n_way', [
    (('wrist_1', 'front'), 2), (('wrist_1', 'front'), 3), (('b', 'a', 'c'), 2)])
def test_hil_serl_form_gives_hil_serls_logits_bit_for_bit(keys, n_way):
    """`form='hil-serl'` against hil-serl's model code form (test/hil_serl_model.py, compiled
    as its load_classifier_func compiles it) on hil-serl's observation shape: the same
    logits and sigmoid / softmax to the bit, also for a batch."""
    from hil_serl_model import classifier_func
    spec = ClassifierSpec(keys, n_way=n_way)
    params = params_for(spec, seed=3)
    upstream = classifier_func(params, keys, n_way)
    hil_serl = RewardClassifier(spec, params, device='cpu', form='hil-serl', warm_up=False)
    rng = np.random.default_rng(11)
    seen = []
    for _ in range(8):
        obs = {key: rng.integers(0, 256, (1, 128, 128, 3), dtype=np.uint8) for key in keys}
        logits = np.asarray(upstream(obs))
        seen.append(logits)
        probability = np.asarray(jax.nn.sigmoid(logits)[0] if n_way == 2
                                 else jax.nn.softmax(logits))
        prediction = hil_serl.predict(obs)
        np.testing.assert_array_equal(prediction.logits, logits[None])
        np.testing.assert_array_equal(prediction.probabilities, probability[None])
    assert np.ptp(np.stack(seen), axis=0).max() > 1e-3     # the images change the logits
    batch = {key: rng.integers(0, 256, (3, 1, 128, 128, 3), dtype=np.uint8) for key in keys}
    prediction = hil_serl.predict(batch)
    np.testing.assert_array_equal(prediction.logits, np.asarray(upstream(batch)))
    assert prediction.probabilities.shape == ((3,) if n_way == 2 else (3, n_way))


def test_the_hil_serl_form_compiles_each_classifiers_weights_in(two_camera_spec,
                                                                two_camera_params):
    """hil-serl compiles with the weights inside the program: classifiers of one shape share
    the direct form's code, and each hil-serl-form classifier computes with its own weights
    (a cache by shape would serve the first one's)."""
    other = params_for(two_camera_spec, seed=1)
    direct = [RewardClassifier(two_camera_spec, p, device='cpu', form='direct', warm_up=False)
              for p in (two_camera_params, other)]
    assert direct[0]._compiled is direct[1]._compiled
    obs = {key: np.full((128, 128, 3), 90, np.uint8) for key in two_camera_spec.image_keys}
    for params, same_weights in zip((two_camera_params, other), direct):
        hil_serl = RewardClassifier(two_camera_spec, params, device='cpu', form='hil-serl',
                                    warm_up=False)
        np.testing.assert_allclose(hil_serl.predict(obs).logits,
                                   same_weights.predict(obs).logits, rtol=0, atol=1e-5)
    assert not np.allclose(direct[0].predict(obs).logits, direct[1].predict(obs).logits,
                           rtol=0, atol=1e-3)


def test_an_unknown_model_form_is_refused(two_camera_spec):
    with pytest.raises(ValueError, match=r"model form must be one of \('fast', 'direct', "
                                         r"'hil-serl'\), got 'winograd'"):
        build_classifier(two_camera_spec, 'winograd')
