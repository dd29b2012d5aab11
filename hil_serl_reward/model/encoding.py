"""EncodingWrapper: runs each camera's encoder and concatenates the embeddings.

Concatenation follows `image_keys` order, which fixes which rows of the head's first Dense
kernel belong to which camera. Written from hil-serl-classifier.md §1.3.
"""
from typing import Dict, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def stack_time_into_channels(image: jax.Array) -> jax.Array:
    """hil-serl's frame stacking: (T,H,W,C) -> (H,W,T*C) and (B,T,H,W,C) -> (B,H,W,T*C).

    A 3-D image is one unbatched frame and passes through. Note that a batched 4-D input
    without a time axis is read as (T,H,W,C); callers must add the T axis themselves
    (inference.as_model_input does).
    """
    if image.ndim == 4:
        t, h, w, c = image.shape
        return jnp.transpose(image, (1, 2, 0, 3)).reshape(h, w, t * c)
    if image.ndim == 5:
        b, t, h, w, c = image.shape
        return jnp.transpose(image, (0, 2, 3, 1, 4)).reshape(b, h, w, t * c)
    return image


class EncodingWrapper(nn.Module):
    """Image-only encoding (hil-serl's `use_proprio=False`, `enable_stacking=True`).

    `shared_backbone=True` (every encoder holds the same backbone instance) runs all
    cameras' images through it as one batch and then each camera's own layers: the same
    result and parameter tree as hil-serl's camera-by-camera loop, but each convolution
    sees a batch of K images, which is faster on the CPU (README, Performance).
    """

    encoder: Dict[str, nn.Module]
    image_keys: Sequence[str]
    shared_backbone: bool = False

    def __call__(self, observations: Mapping[str, jax.Array], train: bool = False) -> jax.Array:
        images = [stack_time_into_channels(observations[key]) for key in self.image_keys]
        if not self.shared_backbone:
            encoded = [self.encoder[key](image, train=train, encode=True)
                       for key, image in zip(self.image_keys, images)]
            return jnp.concatenate(encoded, axis=-1)
        stacked = jnp.stack(images)                           # (K, [B,] H, W, C)
        features = self.encoder[self.image_keys[0]].backbone_features(
            stacked.reshape(-1, *stacked.shape[-3:]), train=train)
        features = features.reshape(*stacked.shape[:-3], *features.shape[-3:])
        encoded = [self.encoder[key](features[i], train=train, encode=False)
                   for i, key in enumerate(self.image_keys)]
        return jnp.concatenate(encoded, axis=-1)
