"""HIL-SERL's reward classifier: per-camera encoders, concatenation, MLP head.

`build_classifier` wires the modules the way hil-serl's `create_classifier` does: one
backbone *instance* handed to every camera's encoder. Flax adopts it while walking the
encoder dict in sorted key order, so its params live once, under
`encoder_def/encoder_<min(image_keys)>/pretrained_encoder`, whatever order the keys are
listed in (hil-serl-classifier.md §1.5). `independent` builds one backbone per camera.
"""
import dataclasses
from typing import Any, Dict, Mapping, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hil_serl_reward.model.constants import MODEL_FORMS
from hil_serl_reward.model.encoding import EncodingWrapper
from hil_serl_reward.model.resnet_v1 import IMAGE_SIZE, PreTrainedResNetEncoder, resnet10_backbone

BACKBONES = ('shared', 'independent')
Params = Dict[str, Any]


class BinaryClassifier(nn.Module):
    """Success classifier; returns one raw logit per observation."""

    encoder_def: nn.Module
    hidden_dim: int = 256

    @nn.compact
    def __call__(self, x: Mapping[str, jax.Array], train: bool = False) -> jax.Array:
        x = self.encoder_def(x, train)
        x = nn.Dense(self.hidden_dim)(x)
        x = nn.Dropout(0.1, deterministic=not train)(x)
        x = nn.relu(nn.LayerNorm()(x))
        return nn.Dense(1)(x)


class NWayClassifier(nn.Module):
    """n-way variant (hil-serl's egg_flip task); returns n_way logits."""

    encoder_def: nn.Module
    n_way: int = 3
    hidden_dim: int = 256

    @nn.compact
    def __call__(self, x: Mapping[str, jax.Array], train: bool = False) -> jax.Array:
        x = self.encoder_def(x, train)
        x = nn.Dense(self.hidden_dim)(x)
        x = nn.Dropout(0.1, deterministic=not train)(x)
        x = nn.relu(nn.LayerNorm()(x))
        return nn.Dense(self.n_way)(x)


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
    """Everything that determines the parameter tree and the computation.

    `image_keys` order is the concatenation order; it cannot be recovered from an
    upstream checkpoint, which only stores encoder names.
    """

    image_keys: Tuple[str, ...]
    n_way: int = 2
    backbone: str = 'shared'
    frozen: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, 'image_keys', tuple(self.image_keys))
        if not self.image_keys:
            raise ValueError('ClassifierSpec needs at least one image key')
        if len(set(self.image_keys)) != len(self.image_keys):
            raise ValueError(f'image keys must be unique, got {list(self.image_keys)}')
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got '{self.backbone}'")
        if self.n_way < 2:
            raise ValueError(f'n_way must be >= 2 (2 = binary), got {self.n_way}')

    @property
    def backbone_owners(self) -> Tuple[str, ...]:
        """Image keys whose encoder stores `pretrained_encoder` params."""
        if self.backbone == 'independent':
            return tuple(sorted(self.image_keys))
        return (min(self.image_keys),)

    @property
    def num_outputs(self) -> int:
        return 1 if self.n_way == 2 else self.n_way


def build_classifier(spec: ClassifierSpec, form: str = 'direct') -> nn.Module:
    """The Flax module for `spec`, wired as hil-serl's create_classifier wires it.

    `form` (constants.MODEL_FORMS) is how it computes, never what: `direct` runs a shared
    backbone once over every camera's image as one batch; `fast` is that with the CPU
    inference convolutions (convolutions.py), whose 3x3 stride-1 kernels are
    Winograd-transformed; `hil-serl` is hil-serl's model code op for op (each camera through
    the backbone in turn, flax's max pool, the spatial embeddings as a product and sum).
    Every checkpoint holds the plain params."""
    if form not in MODEL_FORMS:
        raise ValueError(f"model form must be one of {MODEL_FORMS}, got '{form}'")
    shared = resnet10_backbone(frozen=spec.frozen, form=form)
    encoders = {
        key: PreTrainedResNetEncoder(
            pretrained_encoder=shared if spec.backbone == 'shared'
            else resnet10_backbone(frozen=spec.frozen, form=form),
            num_spatial_blocks=8, bottleneck_dim=256, name=f'encoder_{key}', form=form)
        for key in spec.image_keys
    }
    encoder_def = EncodingWrapper(encoder=encoders, image_keys=spec.image_keys,
                                  shared_backbone=spec.backbone == 'shared'
                                  and form != 'hil-serl')
    if spec.n_way == 2:
        return BinaryClassifier(encoder_def=encoder_def)
    return NWayClassifier(encoder_def=encoder_def, n_way=spec.n_way)


def sample_observation(spec: ClassifierSpec, batch: int = 1) -> Dict[str, np.ndarray]:
    """A zero observation of the shape the node and trainer feed: (B, T=1, 128, 128, 3) uint8."""
    return {key: np.zeros((batch, 1, *IMAGE_SIZE, 3), np.uint8) for key in spec.image_keys}


def init_params(spec: ClassifierSpec, seed: int = 0) -> Params:
    """Randomly initialised params (what hil-serl builds before loading ImageNet weights)."""
    model = build_classifier(spec)
    init = jax.jit(lambda rng, obs: model.init(rng, obs, train=False)['params'])
    return jax.tree_util.tree_map(np.asarray, init(jax.random.PRNGKey(seed),
                                                   sample_observation(spec)))


def param_shapes(spec: ClassifierSpec, form: str = 'direct') -> Params:
    """The parameter tree of `spec` as ShapeDtypeStructs, without computing anything."""
    model = build_classifier(spec, form)
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                                  sample_observation(spec), train=False))
    return variables['params']


def count_params(params: Params) -> int:
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params)))


def expected_param_count(num_cameras: int, backbone: str = 'shared', n_way: int = 2) -> int:
    """Closed form of hil-serl-classifier.md §1.6 (binary shared: 4,906,817 + 1,180,416·K)."""
    backbone_params = 4_905_792
    per_camera = 1_114_880
    head_out = 1 if n_way == 2 else n_way
    head = 256 * num_cameras * 256 + 256 + 512 + 256 * head_out + head_out
    backbones = num_cameras if backbone == 'independent' else 1
    return backbones * backbone_params + num_cameras * per_camera + head


def probabilities(logits: jnp.ndarray) -> jnp.ndarray:
    """Sigmoid of the binary logit (shape (..., 1) -> (...)), softmax over n-way logits."""
    if logits.shape[-1] == 1:
        return jax.nn.sigmoid(logits[..., 0])
    return jax.nn.softmax(logits, axis=-1)
