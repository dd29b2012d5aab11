"""hil-serl's reward classifier in the form its model code computes it (serl_launcher's
vision/resnet_v1.py, common/encoding.py and networks/reward_classifier.py at rail-berkeley/
hil-serl 5d02aed), written here from that behaviour (hil-serl-classifier.md §1) for the
numerics tests: flax `nn.Conv` and `nn.max_pool`, the cameras encoded one after the other
through the one backbone instance, the spatial embeddings as a broadcast multiply and sum
over (H, W), and `load_classifier_func`'s `jax.jit` of `apply_fn(params, obs, train=False)`.
The parameter tree is hil-serl's, so the package's checkpoints apply unchanged.
Not part of the package."""
from functools import partial
from typing import Callable, Dict, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MyGroupNorm(nn.GroupNorm):
    def __call__(self, x):
        return super().__call__(x[None])[0] if x.ndim == 3 else super().__call__(x)


class ResNetBlock(nn.Module):
    filters: int
    conv: Callable
    norm: Callable
    strides: tuple = (1, 1)

    @nn.compact
    def __call__(self, x):
        y = nn.relu(self.norm()(self.conv(self.filters, (3, 3), self.strides)(x)))
        y = self.norm()(self.conv(self.filters, (3, 3))(y))
        if x.shape != y.shape:
            x = self.norm(name='norm_proj')(
                self.conv(self.filters, (1, 1), self.strides, name='conv_proj')(x))
        return nn.relu(x + y)


class ResNetEncoder(nn.Module):
    """resnetv1-10-frozen with pre_pooling: the 4x4x512 map, gradient stopped."""

    @nn.compact
    def __call__(self, observations, train=True):
        mean, std = jnp.array([0.485, 0.456, 0.406]), jnp.array([0.229, 0.224, 0.225])
        x = (observations.astype(jnp.float32) / 255.0 - mean) / std
        conv = partial(nn.Conv, use_bias=False, dtype=jnp.float32,
                       kernel_init=nn.initializers.kaiming_normal())
        norm = partial(MyGroupNorm, num_groups=4, epsilon=1e-5, dtype=jnp.float32)
        x = conv(64, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name='conv_init')(x)
        x = nn.relu(norm(name='norm_init')(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding='SAME')
        for stage in range(4):
            x = ResNetBlock(64 * 2 ** stage, conv=conv, norm=norm,
                            strides=(2, 2) if stage else (1, 1))(x)
        return jax.lax.stop_gradient(x)


class SpatialLearnedEmbeddings(nn.Module):
    height: int
    width: int
    channel: int
    num_features: int

    @nn.compact
    def __call__(self, features):
        kernel = self.param('kernel', nn.initializers.lecun_normal(),
                            (self.height, self.width, self.channel, self.num_features))
        unbatched = features.ndim < 4
        if unbatched:
            features = features[None]
        pooled = jnp.sum(features[..., None] * kernel[None], axis=(1, 2))
        pooled = pooled.reshape(features.shape[0], -1)
        return pooled[0] if unbatched else pooled


class PreTrainedResNetEncoder(nn.Module):
    pretrained_encoder: nn.Module

    @nn.compact
    def __call__(self, observations, encode=True, train=True):
        x = self.pretrained_encoder(observations, train=train) if encode else observations
        x = SpatialLearnedEmbeddings(*x.shape[-3:], num_features=8)(x)
        x = nn.Dropout(0.1, deterministic=not train)(x)
        return nn.tanh(nn.LayerNorm()(nn.Dense(256)(x)))


class EncodingWrapper(nn.Module):
    encoder: Dict[str, nn.Module]
    image_keys: Sequence[str]

    def __call__(self, observations, train=False):
        encoded = []
        for key in self.image_keys:
            image = observations[key]
            if image.ndim == 4:                       # (T, H, W, C) -> (H, W, T*C)
                image = jnp.transpose(image, (1, 2, 0, 3)).reshape(*image.shape[1:3], -1)
            elif image.ndim == 5:                     # (B, T, H, W, C) -> (B, H, W, T*C)
                image = jnp.transpose(image, (0, 2, 3, 1, 4)).reshape(
                    image.shape[0], *image.shape[2:4], -1)
            encoded.append(self.encoder[key](image, train=train, encode=True))
        return jnp.concatenate(encoded, axis=-1)


class Classifier(nn.Module):
    encoder_def: nn.Module
    outputs: int

    @nn.compact
    def __call__(self, x, train=False):
        x = nn.Dense(256)(self.encoder_def(x, train=train))
        x = nn.Dropout(0.1)(x, deterministic=not train)
        return nn.Dense(self.outputs)(nn.relu(nn.LayerNorm()(x)))


def classifier_func(params, image_keys: Sequence[str], n_way: int = 2) -> Callable:
    """What hil-serl's `load_classifier_func` returns for these params: obs -> logits."""
    backbone = ResNetEncoder(name='pretrained_encoder')
    encoders = {key: PreTrainedResNetEncoder(pretrained_encoder=backbone, name=f'encoder_{key}')
                for key in image_keys}
    model = Classifier(EncodingWrapper(encoders, tuple(image_keys)),
                       outputs=1 if n_way == 2 else n_way)
    return jax.jit(lambda obs: model.apply({'params': params}, obs, train=False))
