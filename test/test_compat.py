"""Checkpoints cross flax eras both ways (run by `make compat`; skipped without its venvs).

Each peer is a venv with the flax/orbax release hil-serl pinned. Upstream -> us: the peer
saves with flax's save_checkpoint (Orbax aggregate in 0.8, OCDBT in 0.10) and we load it.
Us -> upstream: we save, the peer restores with restore_checkpoint into a TrainState.
Same arrays both ways; logits within 1e-4 (XLA versions differ by ~2e-5, §6) and the
probabilities the node would publish within 1e-5 (#26: the reward must not depend on the stack).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hil_serl_reward.model.checkpoint import ORBAX, load_checkpoint, save_checkpoint
from hil_serl_reward.model.inference import RewardClassifier

PEERS = os.environ.get('HIL_SERL_COMPAT_PYTHONS', '').split()
REPO = Path(__file__).resolve().parents[1]
KEYS = ['wrist_1', 'front']

pytestmark = pytest.mark.skipif(not PEERS, reason='needs the old-flax venvs: make compat')
sys.path.insert(0, str(REPO / 'compat'))
from peer import flat, probe_images  # noqa: E402


def sigmoid(logits):
    """The probability the node publishes for a binary head, in float64 to compare."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


def run_peer(python, *args):
    env = {**os.environ, 'PYTHONPATH': str(REPO), 'JAX_PLATFORMS': 'cpu'}
    env.pop('ROS_WHEELS_BOOTSTRAPPED', None)
    env.pop('XLA_FLAGS', None)  # an older jaxlib aborts on flags it does not know
    env.pop('JAX_COMPILATION_CACHE_DIR', None)  # conftest's cache, written by a newer jax
    result = subprocess.run([python, str(REPO / 'compat' / 'peer.py'), *args], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def peer_version(python):
    return subprocess.run([python, '-c', 'import flax; print(flax.__version__)'],
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize('python', PEERS, ids=[peer_version(p) for p in PEERS])
def test_upstream_checkpoint_loads_here(python, tmp_path):
    run_peer(python, 'write', str(tmp_path / 'classifier_ckpt'), str(tmp_path / 'peer.npz'),
             *KEYS)
    peer = np.load(tmp_path / 'peer.npz')
    loaded = load_checkpoint(tmp_path / 'classifier_ckpt', image_keys=KEYS)
    assert loaded.format == ORBAX and loaded.step == 150
    layout_file = 'checkpoint' if peer_version(python).startswith('0.8') else 'manifest.ocdbt'
    assert (loaded.path / layout_file).exists(), sorted(p.name for p in loaded.path.iterdir())
    ours = flat(loaded.params)
    assert set(ours) == {k[len('param:'):] for k in peer.files if k.startswith('param:')}
    for name, value in ours.items():
        np.testing.assert_array_equal(value, peer['param:' + name])
    classifier = RewardClassifier(loaded.spec, loaded.params, device='cpu')
    logits = classifier.predict(probe_images(KEYS)).logits
    np.testing.assert_allclose(logits, peer['logits'], atol=1e-4)
    np.testing.assert_allclose(sigmoid(logits), sigmoid(peer['logits']), rtol=0, atol=1e-5)


@pytest.mark.parametrize('python', PEERS, ids=[peer_version(p) for p in PEERS])
def test_our_checkpoint_restores_upstream(python, tmp_path, two_camera_spec, two_camera_params):
    save_checkpoint(tmp_path / 'classifier_ckpt', two_camera_params, two_camera_spec, step=150)
    run_peer(python, 'read', str(tmp_path / 'classifier_ckpt'), str(tmp_path / 'peer.npz'),
             *KEYS)
    peer = np.load(tmp_path / 'peer.npz')
    assert int(peer['step']) == 150
    for name, value in flat(two_camera_params).items():
        np.testing.assert_array_equal(peer['param:' + name], value)
    ours = RewardClassifier(two_camera_spec, two_camera_params, device='cpu')
    logits = ours.predict(probe_images(KEYS)).logits
    np.testing.assert_allclose(logits, peer['logits'], atol=1e-4)
    np.testing.assert_allclose(sigmoid(logits), sigmoid(peer['logits']), rtol=0, atol=1e-5)
