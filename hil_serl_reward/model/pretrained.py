"""ImageNet ResNet-10 weights (`resnet10_params.pkl`, the file hil-serl downloads).

The pickle maps backbone module names (conv_init, norm_init, ResNetBlock_0..3) to the same
nested {kernel} / {scale, bias} dicts as the model (hil-serl-classifier.md §3). With a
shared backbone only one encoder stores it, so one replacement serves every camera; the
log says so, because upstream's log names only `encoder_front` and confuses users.
"""
import copy
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, Mapping

import jax
import numpy as np

from hil_serl_reward.model import safe_pickle
from hil_serl_reward.model.resnet_v1 import BACKBONE_MODULES
from hil_serl_reward.model.reward_classifier import ClassifierSpec, Params, param_shapes

RESNET10_URL = ('https://github.com/rail-berkeley/serl/releases/download/resnet10/'
                'resnet10_params.pkl')
DEFAULT_RESNET10_PATH = Path('~/.serl/resnet10_params.pkl')

_log = logging.getLogger(__name__)


class PretrainedWeightsError(ValueError):
    """The ResNet-10 weights file is missing or not of the documented structure."""


def _shapes(tree: Any) -> Dict[str, tuple]:
    return {'/'.join(str(getattr(p, 'key', p)) for p in path): tuple(np.shape(leaf))
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def load_resnet10_weights(path: os.PathLike, trusted: bool = False) -> Dict[str, Any]:
    """Read (restricted unpickling unless `trusted`, safe_pickle.py) and validate the pickle;
    only the six backbone subtrees are kept."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise PretrainedWeightsError(
            f"ResNet-10 ImageNet weights not found at '{path}': download {RESNET10_URL} "
            f"there (hil-serl keeps it at {DEFAULT_RESNET10_PATH})")
    with path.open('rb') as f:
        try:
            weights = safe_pickle.load(f, trusted)
        except safe_pickle.UnsafePickleError as exc:
            raise PretrainedWeightsError(f"'{path}': {exc}") from None
        except Exception as exc:
            raise PretrainedWeightsError(f"'{path}' is not a readable pickle: {exc}") from exc
    if not isinstance(weights, Mapping):
        raise PretrainedWeightsError(
            f"'{path}' holds a {type(weights).__name__}; expected a mapping with keys "
            f"{list(BACKBONE_MODULES)}")
    missing = [k for k in BACKBONE_MODULES if k not in weights]
    if missing:
        raise PretrainedWeightsError(
            f"'{path}' lacks backbone modules {missing}; expected {list(BACKBONE_MODULES)}, "
            f"found {sorted(map(str, weights))}")
    expected = param_shapes(ClassifierSpec(('camera',)))['encoder_def']['encoder_camera'][
        'pretrained_encoder']
    kept = {k: jax.tree_util.tree_map(np.asarray, dict_tree(weights[k])) for k in BACKBONE_MODULES}
    found_shapes, expected_shapes = _shapes(kept), _shapes(expected)
    if found_shapes != expected_shapes:
        diff = sorted(set(found_shapes.items()) ^ set(expected_shapes.items()))[:6]
        raise PretrainedWeightsError(
            f"'{path}' does not hold ResNet-10 backbone params of the expected shapes; "
            f"differences (path, shape) between file and model: {diff}")
    return kept


def dict_tree(tree: Any) -> Any:
    """Plain nested dicts (the pickle may hold FrozenDicts)."""
    if isinstance(tree, Mapping):
        return {k: dict_tree(v) for k, v in tree.items()}
    return tree


def apply_resnet10_weights(params: Params, spec: ClassifierSpec, weights: Mapping[str, Any],
                           log: Callable[[str], None] = _log.info) -> Params:
    """A copy of `params` whose backbone(s) hold the ImageNet weights."""
    params = copy.copy(params)
    params['encoder_def'] = dict(params['encoder_def'])
    for owner in spec.backbone_owners:
        encoder = dict(params['encoder_def'][f'encoder_{owner}'])
        encoder['pretrained_encoder'] = {k: weights[k] for k in BACKBONE_MODULES}
        params['encoder_def'][f'encoder_{owner}'] = encoder
    count = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(weights))
    owners = ', '.join(f'encoder_{k}/pretrained_encoder' for k in spec.backbone_owners)
    if spec.backbone == 'shared' and len(spec.image_keys) > 1:
        log(f'ImageNet ResNet-10 weights ({count / 1e6:.3f}M params) loaded into {owners}. '
            f'The backbone is shared: Flax stores it once, under the lexicographically '
            f"smallest camera key ('{min(spec.image_keys)}'), and every camera "
            f'{list(spec.image_keys)} runs these same params, so this one replacement '
            f'serves them all.')
    else:
        log(f'ImageNet ResNet-10 weights ({count / 1e6:.3f}M params) loaded into {owners}.')
    return params
