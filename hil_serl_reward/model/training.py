"""hil-serl's classifier training recipe, as pure functions (hil-serl-classifier.md §4).

Balanced batches (successes + failures drawn uniformly with replacement), random-crop
augmentation (edge-pad 4 pixels, one random offset per sample shared by every camera),
sigmoid BCE, Adam 1e-4. With a frozen backbone the stop_gradient gives it zero gradient,
and Adam's update of a zero gradient is exactly zero, so its params stay bit-identical.
"""
import dataclasses
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from hil_serl_reward.model.metrics import BinaryMetrics, binary_metrics
from hil_serl_reward.model.reward_classifier import ClassifierSpec, Params, build_classifier

Images = Dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Recipe:
    steps: int = 150
    batch_per_class: int = 128
    learning_rate: float = 1e-4
    crop_padding: int = 4
    seed: int = 0


def split(images: Images, labels: np.ndarray, val_fraction: float, seed: int
          ) -> Tuple[Tuple[Images, np.ndarray], Tuple[Images, np.ndarray]]:
    """Stratified hold-out: the same fraction of successes and of failures."""
    rng = np.random.default_rng(seed)
    val_idx = []
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        val_idx.append(idx[:int(round(len(idx) * val_fraction))])
    val = np.sort(np.concatenate(val_idx))
    train = np.setdiff1d(np.arange(len(labels)), val)
    pick = lambda idx: ({k: v[idx] for k, v in images.items()}, labels[idx])  # noqa: E731
    return pick(train), pick(val)


def balanced_batches(images: Images, labels: np.ndarray, per_class: int, seed: int
                     ) -> Iterator[Tuple[Images, np.ndarray]]:
    """per_class successes followed by per_class failures, with replacement, forever."""
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if not len(positives) or not len(negatives):
        raise ValueError(f'training needs successes and failures, got {len(positives)} and '
                         f'{len(negatives)}')
    batch_labels = np.concatenate([np.ones(per_class), np.zeros(per_class)]).astype(np.float32)
    while True:
        idx = np.concatenate([rng.choice(positives, per_class), rng.choice(negatives, per_class)])
        yield {k: v[idx] for k, v in images.items()}, batch_labels


def random_crop(images: Dict[str, jax.Array], rng: jax.Array, padding: int
                ) -> Dict[str, jax.Array]:
    """Edge-pad by `padding`, crop back at a random offset; one offset per sample, every camera."""
    first = next(iter(images.values()))
    batch, height, width = first.shape[:3]
    offsets = jax.random.randint(rng, (batch, 2), 0, 2 * padding + 1)

    def crop(image: jax.Array, offset: jax.Array) -> jax.Array:
        padded = jnp.pad(image, ((padding, padding), (padding, padding), (0, 0)), mode='edge')
        return jax.lax.dynamic_slice(padded, (offset[0], offset[1], 0),
                                     (height, width, image.shape[-1]))

    return {k: jax.vmap(crop)(v, offsets) for k, v in images.items()}


def create_state(spec: ClassifierSpec, params: Params, learning_rate: float
                 ) -> train_state.TrainState:
    model = build_classifier(spec)
    return train_state.TrainState.create(apply_fn=model.apply, params=params,
                                         tx=optax.adam(learning_rate))


def make_train_step(crop_padding: int) -> Callable:
    @jax.jit
    def train_step(state: train_state.TrainState, images: Dict[str, jax.Array],
                   labels: jax.Array, rng: jax.Array) -> Tuple[train_state.TrainState, jax.Array]:
        crop_rng, dropout_rng = jax.random.split(rng)
        augmented = random_crop(images, crop_rng, crop_padding)
        observations = {k: v[:, None] for k, v in augmented.items()}

        def loss_fn(params: Params) -> jax.Array:
            logits = state.apply_fn({'params': params}, observations, train=True,
                                    rngs={'dropout': dropout_rng})
            return optax.sigmoid_binary_cross_entropy(logits[:, 0], labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    return train_step


def make_predict(spec: ClassifierSpec) -> Callable[[Params, Images], np.ndarray]:
    model = build_classifier(spec)
    forward = jax.jit(lambda p, obs: jax.nn.sigmoid(model.apply({'params': p}, obs)[:, 0]))

    def predict(params: Params, images: Images, batch: int = 64) -> np.ndarray:
        count = len(next(iter(images.values())))
        out = [np.asarray(forward(params, {k: v[i:i + batch, None] for k, v in images.items()}))
               for i in range(0, count, batch)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    return predict


def evaluate(predict: Callable, params: Params, images: Images, labels: np.ndarray,
             threshold: float = 0.5) -> Optional[BinaryMetrics]:
    if not len(labels):
        return None
    return binary_metrics(predict(params, images), labels, threshold)


def train(state: train_state.TrainState, batches: Iterator[Tuple[Images, np.ndarray]],
          recipe: Recipe, on_step: Optional[Callable[[int, float, Any], None]] = None
          ) -> train_state.TrainState:
    train_step = make_train_step(recipe.crop_padding)
    rng = jax.random.PRNGKey(recipe.seed)
    for step in range(1, recipe.steps + 1):
        images, labels = next(batches)
        rng, step_rng = jax.random.split(rng)
        state, loss = train_step(state, images, labels, step_rng)
        if on_step is not None:
            on_step(step, float(loss), state)
    return state
