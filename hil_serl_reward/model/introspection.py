"""The checks users run to convince themselves the backbone sharing is real.

(1) structure: only the owner(s) store `pretrained_encoder`;
(2) perturbing an owner's backbone changes the embedding of every camera that runs it;
(3) removing it breaks every camera that runs it;
plus the gradient check: zero gradient on a frozen backbone, non-zero on trainable layers.
"""
import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hil_serl_reward.model.constants import IMAGE_SIZE
from hil_serl_reward.model.reward_classifier import ClassifierSpec, Params, build_classifier


@dataclasses.dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


def camera_users(spec: ClassifierSpec, owner: str) -> List[str]:
    """Cameras whose encoder runs the backbone stored under `owner`."""
    return list(spec.image_keys) if spec.backbone == 'shared' else [owner]


def random_images(spec: ClassifierSpec, batch: int = 2, seed: int = 0) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {key: rng.integers(0, 256, (batch, *IMAGE_SIZE, 3), dtype=np.uint8)
            for key in spec.image_keys}


def camera_embedding(spec: ClassifierSpec, params: Params, key: str,
                     images: np.ndarray) -> np.ndarray:
    """One camera's 256-d encoder output, computed through the full model's scopes."""
    model = build_classifier(spec)

    def encode(module: Any, image: jax.Array) -> jax.Array:
        return module.encoder_def.encoder[key](image, train=False)

    return np.asarray(model.apply({'params': params}, images, method=encode))


def _without_backbone(params: Params, owner: str) -> Params:
    encoders = dict(params['encoder_def'])
    encoders[f'encoder_{owner}'] = {k: v for k, v in encoders[f'encoder_{owner}'].items()
                                    if k != 'pretrained_encoder'}
    return {**params, 'encoder_def': encoders}


def _perturbed_backbone(params: Params, owner: str, seed: int = 1) -> Params:
    encoders = dict(params['encoder_def'])
    encoder = dict(encoders[f'encoder_{owner}'])
    leaves, treedef = jax.tree_util.tree_flatten(encoder['pretrained_encoder'])
    rng = np.random.default_rng(seed)
    encoder['pretrained_encoder'] = jax.tree_util.tree_unflatten(
        treedef, [np.asarray(x) + 0.05 * rng.standard_normal(np.shape(x)).astype(np.float32)
                  for x in leaves])
    encoders[f'encoder_{owner}'] = encoder
    return {**params, 'encoder_def': encoders}


def check_structure(spec: ClassifierSpec, params: Params) -> CheckResult:
    holders = sorted(k[len('encoder_'):] for k, v in params['encoder_def'].items()
                     if 'pretrained_encoder' in v)
    expected = sorted(spec.backbone_owners)
    rule = ('once, under the lexicographically smallest key' if spec.backbone == 'shared'
            else 'once per camera')
    return CheckResult('structure', holders == expected,
                       f'pretrained_encoder stored under {["encoder_" + k for k in holders]}; '
                       f'{spec.backbone} layout stores it {rule}: '
                       f'{["encoder_" + k for k in expected]}')


def check_perturbation(spec: ClassifierSpec, params: Params,
                       images: Mapping[str, np.ndarray]) -> CheckResult:
    owner = spec.backbone_owners[0]
    perturbed = _perturbed_backbone(params, owner)
    changes = {key: float(np.max(np.abs(camera_embedding(spec, perturbed, key, images[key])
                                        - camera_embedding(spec, params, key, images[key]))))
               for key in spec.image_keys}
    changed = sorted(k for k, d in changes.items() if d > 1e-6)
    expected = sorted(camera_users(spec, owner))
    detail = ', '.join(f'{k}: max|d emb| {d:.3g}' for k, d in changes.items())
    return CheckResult('perturb backbone', changed == expected,
                       f'perturbing encoder_{owner}/pretrained_encoder changed {changed} '
                       f'(expected {expected}); {detail}')


def check_removal(spec: ClassifierSpec, params: Params,
                  images: Mapping[str, np.ndarray]) -> CheckResult:
    owner = spec.backbone_owners[0]
    stripped = _without_backbone(params, owner)
    broken = []
    for key in spec.image_keys:
        try:
            camera_embedding(spec, stripped, key, images[key])
        except Exception as exc:  # flax raises ScopeParamNotFoundError; any failure counts
            if 'pretrained_encoder' in str(exc):
                broken.append(key)
    expected = sorted(camera_users(spec, owner))
    return CheckResult('remove backbone', sorted(broken) == expected,
                       f'without encoder_{owner}/pretrained_encoder these cameras fail: '
                       f'{sorted(broken)} (expected {expected}); they all look their '
                       f'backbone up at encoder_{owner}/pretrained_encoder')


def bce_gradients(spec: ClassifierSpec, params: Params, images: Mapping[str, np.ndarray],
                  labels: Optional[np.ndarray] = None) -> Params:
    """Gradient of hil-serl's training loss (sigmoid BCE, dropout on) w.r.t. params."""
    model = build_classifier(spec)
    batch = next(iter(images.values())).shape[0]
    labels = np.arange(batch) % 2 if labels is None else labels
    observations = {k: v[:, None] for k, v in images.items()}

    def loss(p: Params) -> jax.Array:
        logits = model.apply({'params': p}, observations, train=True,
                             rngs={'dropout': jax.random.PRNGKey(0)})
        targets = jnp.asarray(labels, jnp.float32).reshape(logits.shape[0], -1)
        return optax.sigmoid_binary_cross_entropy(logits[:, :1], targets).mean()

    return jax.grad(loss)(params)


def split_backbone(tree: Params) -> Dict[str, List[np.ndarray]]:
    """Leaves of `tree` grouped into backbone and everything else (the trainable layers)."""
    groups: Dict[str, List[np.ndarray]] = {'backbone': [], 'trainable': []}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        names = [str(getattr(p, 'key', p)) for p in path]
        groups['backbone' if 'pretrained_encoder' in names else 'trainable'].append(
            np.asarray(leaf))
    return groups


def check_gradients(spec: ClassifierSpec, params: Params,
                    images: Mapping[str, np.ndarray]) -> CheckResult:
    groups = split_backbone(bce_gradients(spec, params, images))
    backbone_norm = float(np.sqrt(sum(np.sum(g ** 2) for g in groups['backbone'])))
    zero_trainable = sum(1 for g in groups['trainable'] if not np.any(g))
    if spec.frozen:
        passed = backbone_norm == 0.0 and zero_trainable == 0
        want = 'frozen: backbone gradient exactly zero'
    else:
        passed = backbone_norm > 0.0 and zero_trainable == 0
        want = 'fine-tuned: backbone gradient non-zero'
    return CheckResult('gradients', passed,
                       f'{want}; backbone |grad| = {backbone_norm:.3g}, trainable arrays with '
                       f'zero gradient: {zero_trainable} of {len(groups["trainable"])}')


def run_checks(spec: ClassifierSpec, params: Params) -> List[CheckResult]:
    images = random_images(spec)
    checks: List[Callable[[], CheckResult]] = [
        lambda: check_structure(spec, params),
        lambda: check_perturbation(spec, params, images),
        lambda: check_removal(spec, params, images),
        lambda: check_gradients(spec, params, images),
    ]
    return [check() for check in checks]
