"""Runs inside an old-flax venv (see scripts/compat.sh), playing hil-serl's side.

    peer.py write <ckpt_dir> <out.npz> <key>...  flax save_checkpoint of a TrainState, as
                                                  hil-serl's trainer saves it
    peer.py read  <ckpt_dir> <out.npz> <key>...  flax restore_checkpoint into a TrainState
                                                  target, as hil-serl's load_classifier_func does
Both dump the params and the logits on the shared probe images to <out.npz>.
Only the pure model modules of hil_serl_reward are imported (no ROS, no new-flax APIs).
"""
import sys

import jax
import numpy as np
import optax
from flax.training import checkpoints, train_state

from hil_serl_reward.model.reward_classifier import (
    ClassifierSpec, build_classifier, sample_observation)


def probe_images(keys, batch=3):
    rng = np.random.default_rng(2024)
    return {k: rng.integers(0, 256, (batch, 1, 128, 128, 3), dtype=np.uint8) for k in keys}


def flat(tree):
    return {'/'.join(str(getattr(p, 'key', p)) for p in path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def main(mode, ckpt_dir, out, *keys):
    spec = ClassifierSpec(tuple(keys))
    model = build_classifier(spec)
    seed = 11 if mode == 'write' else 99
    params = model.init(jax.random.PRNGKey(seed), sample_observation(spec))['params']
    state = train_state.TrainState.create(apply_fn=model.apply, params=params,
                                          tx=optax.adam(1e-4))
    if mode == 'write':
        state = state.replace(step=150)
        checkpoints.save_checkpoint(ckpt_dir, state, step=150, overwrite=True)
    else:
        state = checkpoints.restore_checkpoint(ckpt_dir, target=state)
    logits = jax.jit(lambda p, o: model.apply({'params': p}, o, train=False))(
        state.params, probe_images(spec.image_keys))
    np.savez(out, logits=np.asarray(logits), step=np.asarray(state.step),
             **{'param:' + k: v for k, v in flat(state.params).items()})


if __name__ == '__main__':
    main(*sys.argv[1:])
