"""Inference API: device choice, input shapes, batching, probabilities."""
import jax
import numpy as np
import pytest

from conftest import params_for
from hil_serl_reward.model.constants import GLIBC_MMAP_THRESHOLD_MAX
from hil_serl_reward.model.inference import (
    DeviceError, RewardClassifier, as_model_input, batch_sizes_for, gpu_forward, jitted_forward,
    largest_heap_batch, padded, select_device, split_outputs, stack_cameras)
from hil_serl_reward.model.reward_classifier import ClassifierSpec


def test_cpu_device_and_gpu_error():
    assert select_device('cpu').platform == 'cpu'
    if not any(d.platform == 'gpu' for d in jax.devices()):
        with pytest.raises(DeviceError, match="'gpu' requested but JAX has no GPU"):
            select_device('gpu')
        assert select_device('auto').platform == 'cpu'
    with pytest.raises(DeviceError, match='one of'):
        select_device('tpu')


@pytest.mark.parametrize('shape, batch', [
    ((128, 128, 3), 1), ((1, 128, 128, 3), 1), ((4, 128, 128, 3), 4), ((4, 1, 128, 128, 3), 4),
])
def test_inputs_become_batch_time_layout(shape, batch):
    out = as_model_input({'a': np.zeros(shape, np.uint8)}, ['a'])
    assert out['a'].shape == (batch, 1, 128, 128, 3)


def test_bad_inputs_are_named():
    with pytest.raises(KeyError, match="'front'"):
        as_model_input({'wrist_1': np.zeros((128, 128, 3))}, ['wrist_1', 'front'])
    with pytest.raises(ValueError, match='RGB'):
        as_model_input({'a': np.zeros((128, 128))}, ['a'])
    with pytest.raises(ValueError, match='disagree'):
        as_model_input({'a': np.zeros((2, 128, 128, 3)), 'b': np.zeros((3, 128, 128, 3))},
                       ['a', 'b'])
    with pytest.raises(ValueError, match=r'\(B,1,H,W,3\)'):
        as_model_input({'a': np.zeros((2, 2, 128, 128, 3))}, ['a'])


def test_batch_of_four_is_not_read_as_time(two_camera_spec, two_camera_params, images):
    """A (B,H,W,3) batch gives per-sample logits equal to one-at-a-time calls."""
    classifier = RewardClassifier(two_camera_spec, two_camera_params, device='cpu')
    batch = classifier.predict({k: images[k] for k in ('wrist_1', 'front')})
    assert batch.logits.shape == (2, 1) and batch.probabilities.shape == (2,)
    for i in range(2):
        single = classifier.predict({k: images[k][i] for k in ('wrist_1', 'front')})
        np.testing.assert_allclose(single.logits[0], batch.logits[i], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch.probabilities, 1 / (1 + np.exp(-batch.logits[:, 0])),
                               rtol=1e-6)
    assert np.all((batch.probabilities > 0) & (batch.probabilities < 1))
    assert isinstance(batch.logits, np.ndarray) and isinstance(batch.probabilities, np.ndarray)
    assert classifier.device_memory_mib() == {}     # a CPU reports no device memory


def test_new_weights_of_the_same_shape_reuse_the_compiled_model(two_camera_spec, images):
    """A reload must not compile again (4-5 s on the CI VM): classifiers of one shape share
    one jitted function, each with its own weights."""
    one = images['wrist_1'][0], images['front'][0]
    first = RewardClassifier(two_camera_spec, params_for(two_camera_spec, 0), device='cpu')
    compiled = first._compiled._cache_size()
    second = RewardClassifier(two_camera_spec, params_for(two_camera_spec, 1), device='cpu')
    assert second._compiled is first._compiled and second._compiled._cache_size() == compiled
    a, b = (c.predict(dict(zip(('wrist_1', 'front'), one))).logits for c in (first, second))
    assert not np.allclose(a, b)                       # each serves its own weights
    front = ClassifierSpec(('front',))
    one_camera = RewardClassifier(front, params_for(front), device='cpu')
    assert one_camera._compiled is not first._compiled   # another shape, another function


def test_batch_sizes_compiled_ahead_for_a_number_of_rigs():
    assert batch_sizes_for(1) == (1,)
    assert batch_sizes_for(2) == (1, 2)
    assert batch_sizes_for(3) == (1, 2, 3)
    assert batch_sizes_for(6) == (1, 2, 4, 6)
    assert batch_sizes_for(8) == (1, 2, 4, 8)
    with pytest.raises(ValueError, match='at least one'):
        batch_sizes_for(0)


def test_padding_adds_black_sets_up_to_the_next_compiled_size():
    three = {'a': np.full((3, 1, 4, 4, 3), 9, np.uint8)}
    out, batch = padded(three, (1, 2, 4))
    assert batch == 3 and out['a'].shape == (4, 1, 4, 4, 3) and out['a'].dtype == np.uint8
    assert (out['a'][:3] == 9).all() and (out['a'][3] == 0).all()
    assert padded(three, (1, 3))[0]['a'] is three['a']          # a compiled size: as it is
    assert padded(three, (1, 2))[0]['a'].shape[0] == 3          # larger than all: as it is


def test_the_largest_cpu_call_keeps_its_estimated_scratch_in_the_heap():
    mib = 2**20
    assert largest_heap_batch(5 * mib) == 4 and largest_heap_batch(10 * mib) == 2
    assert largest_heap_batch(2 * mib) == 16 and largest_heap_batch(40 * mib) == 1
    for scratch in (1 * mib, 3 * mib, 7 * mib, 17 * mib):
        batch = largest_heap_batch(scratch)
        assert batch * scratch <= GLIBC_MMAP_THRESHOLD_MAX < 2 * batch * scratch


@pytest.mark.parametrize('form', ['fast', 'direct'])
def test_a_batch_runs_padded_and_split_without_a_compile(form, two_camera_spec):
    """A node serving eight rigs asks for batches 1, 2, 4 and 8 at load. On a CPU a call of
    eight two-camera sets needs 33 MB of scratch (jaxlib 0.10), above glibc's largest mmap
    threshold (page faults on every call), so batch 8 is not compiled and the largest call
    holds four (two with jaxlib 0.6's fast form, whose scratch is larger). A batch of three
    then runs padded, one of seven split into calls, with the same logits per set as one at a
    time, and serving never compiles (seconds on a CPU)."""
    classifier = RewardClassifier(two_camera_spec, params_for(two_camera_spec), device='cpu',
                                  form=form, batch_sizes=(1, 2, 4, 8))

    def scratch(sets: int) -> int:
        stacked = np.zeros((2, sets, 1, 128, 128, 3), np.uint8)
        return classifier._compiled.lower(classifier.params, stacked).compile() \
            .memory_analysis().temp_size_in_bytes

    largest = classifier.largest_call
    assert largest in (2, 4) and largest == largest_heap_batch(scratch(1))
    assert classifier.batch_sizes == tuple(size for size in (1, 2, 4) if size <= largest)
    assert scratch(largest) <= GLIBC_MMAP_THRESHOLD_MAX
    compiled = classifier._compiled._cache_size()
    rng = np.random.default_rng(3)
    sets = {key: rng.integers(0, 256, (7, 128, 128, 3), dtype=np.uint8)
            for key in two_camera_spec.image_keys}
    for size in (3, 7):
        batch = classifier.predict({key: images[:size] for key, images in sets.items()})
        assert classifier._compiled._cache_size() == compiled
        assert batch.logits.shape == (size, 1) and batch.probabilities.shape == (size,)
        for i in range(size):
            single = classifier.predict({key: images[i] for key, images in sets.items()})
            np.testing.assert_allclose(single.logits[0], batch.logits[i], rtol=1e-5,
                                       atol=1e-5)
            np.testing.assert_allclose(single.probabilities[0], batch.probabilities[i],
                                       rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('n_way', [2, 3])
def test_the_gpu_forward_computes_the_shared_forward_into_pinned_host_memory(n_way, images):
    """gpu_forward (weights closed over, output in pinned host memory) gives the CPU's
    shared forward's outputs; a CPU of jaxlib >= 0.10 has pinned host memory too, so it
    runs here. That a GPU
    classifier takes it is the device's choice (RewardClassifier), checked on a GPU by
    bench/call_variants.py."""
    spec = ClassifierSpec(('wrist_1', 'front'), n_way=n_way)
    params = jax.device_put(params_for(spec), select_device('cpu'))
    stacked = stack_cameras(as_model_input({k: images[k] for k in spec.image_keys},
                                           spec.image_keys), spec.image_keys)
    assert stacked.shape == (2, 2, 1, 128, 128, 3)        # camera, batch, time, H, W, RGB
    cpu = select_device('cpu')
    outputs = gpu_forward(spec, 'direct', params, cpu)(stacked)
    if 'pinned_host' in {memory.kind for memory in cpu.addressable_memories()}:
        assert outputs.sharding.memory_kind == 'pinned_host'
    else:                                   # jaxlib 0.6.2 (Python 3.10): the device's own
        assert outputs.sharding.memory_kind == cpu.default_memory().kind
    shared = np.asarray(jitted_forward(spec, 'direct')(params, stacked))
    np.testing.assert_allclose(np.asarray(outputs), shared, rtol=1e-5, atol=1e-6)
    logits, probabilities = split_outputs(shared, spec)
    expected = RewardClassifier(spec, params_for(spec), device='cpu', form='direct').predict(
        {k: images[k] for k in spec.image_keys})
    np.testing.assert_array_equal(logits, expected.logits)
    np.testing.assert_array_equal(probabilities, expected.probabilities)
    assert logits.shape == ((2, 1) if n_way == 2 else (2, n_way))
    if n_way == 2:
        np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-logits[:, 0])), rtol=1e-6)
    else:
        softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(probabilities, softmax, rtol=1e-5)


def test_cameras_of_different_sizes_are_named():
    with pytest.raises(ValueError, match="cameras disagree on the image shape.*'front'"):
        stack_cameras({'wrist_1': np.zeros((1, 1, 128, 128, 3), np.uint8),
                       'front': np.zeros((1, 1, 96, 96, 3), np.uint8)}, ('wrist_1', 'front'))
