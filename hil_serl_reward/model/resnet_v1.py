"""ResNet-v1-10 backbone and per-camera encoder of HIL-SERL's reward classifier.

Module, field and submodule names are part of the checkpoint format: the parameter tree
(`conv_init`, `norm_init`, `ResNetBlock_<i>/Conv_<j>`, `MyGroupNorm_<j>`, `conv_proj`,
`norm_proj`, `SpatialLearnedEmbeddings_0`, ...) must equal hil-serl's so that upstream
checkpoints load unchanged. Written from hil-serl-classifier.md §1.1-1.2.
"""
from functools import partial, reduce
from typing import Any, Callable, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from hil_serl_reward.model.constants import IMAGE_SIZE
from hil_serl_reward.model.convolutions import WinogradConv3x3, space_to_depth_conv

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONE_MODULES = (
    'conv_init', 'norm_init', 'ResNetBlock_0', 'ResNetBlock_1', 'ResNetBlock_2', 'ResNetBlock_3',
)


def max_pool_3x3_stride2(x: jax.Array) -> jax.Array:
    """nn.max_pool(x, (3, 3), (2, 2), 'SAME') as the max of nine strided slices: the same
    values, but one fused loop where XLA's CPU reduce-window took 0.8 ms per camera pair."""
    height, width = x.shape[-3:-1]
    out_h, out_w = -(-height // 2), -(-width // 2)
    pad_h, pad_w = max(2 * out_h + 1 - height, 0), max(2 * out_w + 1 - width, 0)
    padded = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + [(pad_h // 2, pad_h - pad_h // 2),
                                                   (pad_w // 2, pad_w - pad_w // 2), (0, 0)],
                     constant_values=-jnp.inf)
    return reduce(jnp.maximum, [
        padded[..., i:i + 2 * out_h - 1:2, j:j + 2 * out_w - 1:2, :]
        for i in range(3) for j in range(3)])


class MyGroupNorm(nn.GroupNorm):
    """GroupNorm that also accepts one unbatched (H, W, C) image."""

    def __call__(self, x: jax.Array, *args: Any, **kwargs: Any) -> jax.Array:
        if x.ndim == 3:
            return super().__call__(x[None], *args, **kwargs)[0]
        return super().__call__(x, *args, **kwargs)


class ResNetBlock(nn.Module):
    """Basic two-conv residual block; projects the shortcut when the shape changes."""

    filters: int
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    act: Callable[[jax.Array], jax.Array]
    strides: Tuple[int, int] = (1, 1)
    fast_convolutions: bool = False

    def conv3x3(self, strides: Tuple[int, int], name: str) -> nn.Module:
        if self.fast_convolutions and strides == (1, 1):
            return WinogradConv3x3(self.filters, name=name)
        return self.conv(self.filters, (3, 3), strides, name=name)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        residual = x
        y = self.conv3x3(self.strides, name='Conv_0')(x)
        y = self.act(self.norm()(y))
        y = self.conv3x3((1, 1), name='Conv_1')(y)
        y = self.norm()(y)
        if residual.shape != y.shape:
            residual = self.conv(self.filters, (1, 1), self.strides, name='conv_proj')(residual)
            residual = self.norm(name='norm_proj')(residual)
        return self.act(residual + y)


class ResNetEncoder(nn.Module):
    """ResNet-v1 feature extractor returning the pre-pooling 4x4x512 map.

    `frozen=True` is hil-serl's behaviour: the output goes through stop_gradient, so the
    backbone receives no gradient even though its params sit in the optimiser state.
    `form` (constants.MODEL_FORMS): `fast` is the CPU inference form (convolutions.py):
    Winograd for the 3x3 stride-1 convolutions, whose params are then `winograd_params` of
    the usual ones, and space-to-depth for the stem; `hil-serl` max-pools with flax's
    `nn.max_pool` as hil-serl's code does (the same values; XLA then compiles the same
    program, so the same float32 rounding downstream).
    """

    stage_sizes: Sequence[int] = (1, 1, 1, 1)
    num_filters: int = 64
    frozen: bool = True
    dtype: Any = jnp.float32
    form: str = 'direct'

    @nn.compact
    def __call__(self, observations: jax.Array, train: bool = True) -> jax.Array:
        x = observations
        if x.shape[-3:-1] != IMAGE_SIZE:
            x = jax.image.resize(x, (*x.shape[:-3], *IMAGE_SIZE, x.shape[-1]), method='bilinear')
        mean = jnp.array(IMAGENET_MEAN, dtype=jnp.float32)
        std = jnp.array(IMAGENET_STD, dtype=jnp.float32)
        x = (x.astype(jnp.float32) / 255.0 - mean) / std

        conv = partial(nn.Conv, use_bias=False, dtype=self.dtype,
                       kernel_init=nn.initializers.kaiming_normal())
        norm = partial(MyGroupNorm, num_groups=4, epsilon=1e-5, dtype=self.dtype)

        fast = self.form == 'fast'
        x = conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name='conv_init',
                 conv_general_dilated=space_to_depth_conv if fast else None)(x)
        x = nn.relu(norm(name='norm_init')(x))
        if self.form == 'hil-serl':
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding='SAME')
        else:
            x = max_pool_3x3_stride2(x)
        for stage, block_count in enumerate(self.stage_sizes):
            for block in range(block_count):
                strides = (2, 2) if stage > 0 and block == 0 else (1, 1)
                x = ResNetBlock(self.num_filters * 2 ** stage, conv=conv, norm=norm,
                                act=nn.relu, strides=strides, fast_convolutions=fast)(x)
        return jax.lax.stop_gradient(x) if self.frozen else x


class SpatialLearnedEmbeddings(nn.Module):
    """Learned spatial pooling: one (H, W) weight map per channel and feature.

    The flattened output index is `channel * num_features + feature` (channel-major).
    `multiply_and_sum` computes it as hil-serl's code does (a broadcast product summed over
    H and W), which XLA rounds differently from the contraction (einsum) used otherwise.
    """

    height: int
    width: int
    channel: int
    num_features: int = 5
    kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal()
    multiply_and_sum: bool = False

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        squeeze = features.ndim == 3
        if squeeze:
            features = features[None]
        kernel = self.param('kernel', self.kernel_init,
                            (self.height, self.width, self.channel, self.num_features))
        if self.multiply_and_sum:
            pooled = jnp.sum(features[..., None] * kernel[None], axis=(1, 2))
        else:
            pooled = jnp.einsum('bhwc,hwcf->bcf', features, kernel)
        pooled = pooled.reshape(features.shape[0], -1)
        return pooled[0] if squeeze else pooled


class PreTrainedResNetEncoder(nn.Module):
    """One camera's encoder: backbone map -> spatial embeddings -> Dense -> LayerNorm -> tanh.

    `pretrained_encoder` is passed in from outside so that several cameras can share one
    backbone instance; Flax then stores its params once (see reward_classifier.py).
    """

    pretrained_encoder: nn.Module
    num_spatial_blocks: int = 8
    bottleneck_dim: int = 256
    dropout_rate: float = 0.1
    form: str = 'direct'

    def backbone_features(self, observations: jax.Array, train: bool = True) -> jax.Array:
        """Only the (possibly shared) backbone: lets EncodingWrapper run every camera's
        image through a shared backbone as one batch."""
        return self.pretrained_encoder(observations, train=train)

    @nn.compact
    def __call__(self, observations: jax.Array, encode: bool = True,
                 train: bool = True) -> jax.Array:
        x = self.pretrained_encoder(observations, train=train) if encode else observations
        height, width, channel = x.shape[-3:]
        x = SpatialLearnedEmbeddings(height, width, channel, self.num_spatial_blocks,
                                     multiply_and_sum=self.form == 'hil-serl')(x)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.Dense(self.bottleneck_dim)(x)
        return nn.tanh(nn.LayerNorm()(x))


def resnet10_backbone(frozen: bool = True, name: Optional[str] = 'pretrained_encoder',
                      form: str = 'direct') -> ResNetEncoder:
    """hil-serl's `resnetv1-10-frozen` configuration (stage sizes 1,1,1,1)."""
    return ResNetEncoder(stage_sizes=(1, 1, 1, 1), frozen=frozen, name=name, form=form)
