"""Checkpoint round trips, upstream formats, and loud failures (hil-serl-classifier.md §6, §8)."""
import errno
import io
import json
from pathlib import Path

import numpy as np
import optax
import pytest
from flax import serialization
from flax.training import checkpoints, train_state

from conftest import params_for
from hil_serl_reward.model.checkpoint import (
    LEGACY_MSGPACK, ORBAX, CheckpointError, load_checkpoint, resolve_checkpoint,
    save_checkpoint, sidecar_path)
from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.model.reward_classifier import ClassifierSpec, count_params


def assert_same_tree(a, b):
    import jax
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def upstream_state(params):
    """What hil-serl's create_classifier builds and save_checkpoint stores."""
    return train_state.TrainState.create(apply_fn=None, params=params, tx=optax.adam(1e-4))


def test_legacy_round_trip_same_arrays_and_logits(tmp_path, two_camera_spec, two_camera_params,
                                                  images):
    path = save_checkpoint(tmp_path / 'classifier_ckpt', two_camera_params, two_camera_spec,
                           step=150, metadata={'threshold': 0.85})
    assert path.name == 'checkpoint_150' and path.is_file()
    loaded = load_checkpoint(tmp_path / 'classifier_ckpt')
    assert loaded.format == LEGACY_MSGPACK and loaded.step == 150
    assert loaded.spec == two_camera_spec
    assert loaded.sidecar['threshold'] == 0.85 and loaded.notes == []
    assert_same_tree(loaded.params, two_camera_params)
    direct = RewardClassifier(two_camera_spec, two_camera_params, device='cpu')
    restored = RewardClassifier.from_checkpoint(path, device='cpu')
    np.testing.assert_array_equal(direct.predict(images).logits,
                                  restored.predict(images).logits)


def test_written_file_restores_into_upstream_train_state(tmp_path, two_camera_spec,
                                                         two_camera_params):
    """The exact call hil-serl's load_classifier_func makes: restore_checkpoint(dir, target)."""
    save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=150)
    zeros = {k: v for k, v in two_camera_params.items()}
    target = upstream_state(jax_zeros_like(zeros))
    restored = checkpoints.restore_checkpoint(str(tmp_path), target=target)
    assert int(restored.step) == 150
    assert_same_tree(restored.params, two_camera_params)
    state = serialization.to_state_dict(restored)
    assert set(state) == {'step', 'params', 'opt_state'}
    assert set(state['opt_state']) == {'0', '1'} and state['opt_state']['1'] == {}
    assert set(state['opt_state']['0']) == {'count', 'mu', 'nu'}


def jax_zeros_like(tree):
    import jax
    return jax.tree_util.tree_map(np.zeros_like, tree)


def test_reads_orbax_directory_written_by_flax(tmp_path, two_camera_spec, two_camera_params):
    """flax's default save_checkpoint (Orbax, this flax era) as hil-serl's trainer calls it."""
    trained = upstream_state(two_camera_params).replace(step=150)
    checkpoints.save_checkpoint(str(tmp_path / 'classifier_ckpt'), trained, step=150,
                                overwrite=True)
    loaded = load_checkpoint(tmp_path / 'classifier_ckpt', image_keys=['wrist_1', 'front'])
    assert loaded.format == ORBAX and loaded.path.is_dir() and loaded.step == 150
    assert_same_tree(loaded.params, two_camera_params)
    assert any('cannot be verified' in note for note in loaded.notes)


def test_newest_checkpoint_is_picked(tmp_path, two_camera_spec, two_camera_params):
    save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=9)
    save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=150)
    save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=20)
    assert resolve_checkpoint(tmp_path)[0].name == 'checkpoint_150'
    assert load_checkpoint(tmp_path).step == 150


def test_overwrite_is_explicit(tmp_path, two_camera_spec, two_camera_params):
    save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=1)
    with pytest.raises(CheckpointError, match='exists'):
        save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=1)
    save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=1, overwrite=True)


def test_a_failed_write_leaves_the_folder_as_it_was(tmp_path, monkeypatch, two_camera_spec,
                                                    two_camera_params):
    """A full disk while writing: neither a checkpoint without its sidecar, nor a new sidecar
    beside the old checkpoint, nor temporary files; an existing pair stays byte for byte."""
    save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=1,
                    metadata={'threshold': 0.5})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_open = Path.open

    class FullDisk(io.FileIO):
        """A file whose disk fills up halfway through the write."""

        def write(self, data):
            super().write(bytes(data)[:len(data) // 2])
            raise OSError(errno.ENOSPC, 'No space left on device')

    def disk_full_on_the_checkpoint(path, mode='r', *args, **kwargs):
        if 'w' in mode and 'checkpoint_' in path.name and 'json' not in path.name:
            return FullDisk(path, 'wb')
        return real_open(path, mode, *args, **kwargs)
    monkeypatch.setattr(Path, 'open', disk_full_on_the_checkpoint)
    for step in (1, 2):
        with pytest.raises(OSError, match='No space left'):
            save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=step,
                            metadata={'threshold': 0.9}, overwrite=True)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.undo()
    assert load_checkpoint(tmp_path).sidecar['threshold'] == 0.5


def test_missing_checkpoint_fails_loudly(tmp_path):
    with pytest.raises(CheckpointError, match='no checkpoint at .*untrained'):
        load_checkpoint(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('x')
    with pytest.raises(CheckpointError, match=r"without checkpoint_<N>.*notes.txt"):
        load_checkpoint(tmp_path / 'empty')


def test_corrupted_checkpoint_fails_loudly(tmp_path, two_camera_spec, two_camera_params):
    path = save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match='cannot read legacy-msgpack'):
        load_checkpoint(path)
    path.write_bytes(serialization.msgpack_serialize({'weights': np.zeros(3)}))
    with pytest.raises(CheckpointError, match=r"found top-level keys \['weights'\]"):
        load_checkpoint(path)


def test_wrong_shapes_are_listed(tmp_path, two_camera_spec, two_camera_params):
    bad = dict(two_camera_params)
    bad['Dense_0'] = {'kernel': np.zeros((100, 256), np.float32),
                      'bias': np.zeros(256, np.float32)}
    path = tmp_path / 'checkpoint_1'
    path.write_bytes(serialization.msgpack_serialize({'step': 1, 'params': bad}))
    with pytest.raises(CheckpointError, match=r'Dense_0/kernel: expected shape \(512, 256\), '
                                              r'found \(100, 256\)'):
        load_checkpoint(path, image_keys=['wrist_1', 'front'])


def test_camera_set_mismatch_lists_both(tmp_path, two_camera_spec, two_camera_params):
    save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=1)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path, image_keys=['wrist_1', 'side'])
    message = str(err.value)
    assert "holds cameras ['front', 'wrist_1']" in message
    assert "not in the checkpoint ['side']" in message and "not configured ['front']" in message


def test_order_contradicting_sidecar_fails(tmp_path, two_camera_spec, two_camera_params):
    path = save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=1)
    assert json.loads(sidecar_path(path).read_text())['image_keys'] == ['wrist_1', 'front']
    with pytest.raises(CheckpointError, match=r"trained with image_keys \['wrist_1', 'front'\]"):
        load_checkpoint(tmp_path, image_keys=['front', 'wrist_1'])


def test_upstream_checkpoint_needs_configured_order(tmp_path, two_camera_spec,
                                                    two_camera_params):
    path = save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=1)
    sidecar_path(path).unlink()
    with pytest.raises(CheckpointError, match='no sidecar recording their order'):
        load_checkpoint(tmp_path)
    loaded = load_checkpoint(tmp_path, image_keys=['wrist_1', 'front'])
    assert loaded.spec.image_keys == ('wrist_1', 'front') and loaded.notes


def test_independent_checkpoint_is_detected_and_not_silently_shared(tmp_path, images):
    spec = ClassifierSpec(('wrist_1', 'front'), backbone='independent')
    params = params_for(spec)
    save_checkpoint(tmp_path, params, spec, step=3)
    loaded = load_checkpoint(tmp_path)
    assert loaded.spec.backbone == 'independent'
    assert loaded.layout.backbone_owners == ('front', 'wrist_1')
    assert count_params(loaded.params) == 12_173_441
    with pytest.raises(CheckpointError, match="configured backbone 'shared'.*independent"):
        load_checkpoint(tmp_path, backbone='shared')


def test_inconsistent_backbone_owner_is_rejected(tmp_path, two_camera_params):
    encoders = dict(two_camera_params['encoder_def'])
    wrist = dict(encoders['encoder_wrist_1'])
    front = dict(encoders['encoder_front'])
    wrist['pretrained_encoder'] = front.pop('pretrained_encoder')
    encoders.update(encoder_wrist_1=wrist, encoder_front=front)
    path = tmp_path / 'checkpoint_1'
    path.write_bytes(serialization.msgpack_serialize(
        {'step': 1, 'params': {**two_camera_params, 'encoder_def': encoders}}))
    with pytest.raises(CheckpointError, match='fit neither layout'):
        load_checkpoint(path, image_keys=['wrist_1', 'front'])


def test_n_way_checkpoint_is_detected(tmp_path):
    spec = ClassifierSpec(('wrist_1',), n_way=3)
    save_checkpoint(tmp_path, params_for(spec), spec, step=1)
    assert load_checkpoint(tmp_path).spec.n_way == 3
