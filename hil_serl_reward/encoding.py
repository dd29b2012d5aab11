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
    """Image-only encoding (hil-serl's `use_proprio=False`, `enable_stacking=True`)."""

    encoder: Dict[str, nn.Module]
    image_keys: Sequence[str]

    def __call__(self, observations: Mapping[str, jax.Array], train: bool = False) -> jax.Array:
        encoded = [
            self.encoder[key](stack_time_into_channels(observations[key]), train=train, encode=True)
            for key in self.image_keys
        ]
        return jnp.concatenate(encoded, axis=-1)
