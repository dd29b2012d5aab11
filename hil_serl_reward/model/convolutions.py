"""Faster convolution algorithms for the backbone on the CPU (inference), same results.

- Winograd F(2x2, 3x3) for the 3x3 stride-1 convolutions: each 2x2 output tile needs 16
  multiplications instead of 36, so these convolutions, about two thirds of the model's
  FLOPs, shrink 2.25x in their multiply stage and run as 16 plain matrix products. The
  kernel transform G g G^T is done once, when a classifier is loaded (`winograd_params`),
  not per call: inside the jitted function it costs more than the convolution it replaces.
  Results equal the direct convolution up to float32 rounding (relative error ~1e-6;
  Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
  A batch whose transformed tiles would outgrow the cache runs a chunk of images at a time
  (WINOGRAD_CHUNK_BYTES).
- Space-to-depth for the 7x7 stride-2 stem: a stride-2 convolution over 3 channels is a
  stride-1 4x4 convolution over the 2x2-blocked 12-channel image, which XLA runs faster.
  Its kernel is rearranged inside the call (9k weights); the param tree does not change.
"""
from typing import Any, List, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

OUTPUT_TILE = 2
INPUT_TILE = OUTPUT_TILE + 2
# F(2x2, 3x3): Y = A^T [(G g G^T) * (B^T d B)] A
INPUT_TRANSFORM = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))     # B^T
KERNEL_TRANSFORM = ((1, 0, 0), (.5, .5, .5), (.5, -.5, .5), (0, 0, 1))           # G
OUTPUT_TRANSFORM = ((1, 1, 1, 0), (0, 1, -1, -1))                                 # A^T
# The transformed input tiles (16 values per 2x2 output tile and channel, float32) of the
# images one Winograd pass takes. Measured on a 2-vCPU AMD EPYC (Zen 5) VM, a 32x32x64
# convolution (stage 1) took 1.5 ms for 8 images (8 MB of tiles) and 14.4 ms for 16 (16 MB),
# where XLA's direct convolution takes 3.5 (our reading: past the cache, each transform
# stage streams its tiles from memory). The model at batch 8 of two cameras (16 images),
# chunks of 4 MB against none, in four interleaved A/Bs: 172-190 -> 190-203 sets/s
# (docs/performance.md); one set (2 images, 2 MB of tiles) compiles to the same program.
WINOGRAD_CHUNK_BYTES = 4 * 2**20


def winograd_kernel(kernel: np.ndarray) -> np.ndarray:
    """(3, 3, in, out) HWIO kernel -> (4, 4, in, out) transformed kernel, computed in float64."""
    if kernel.shape[:2] != (3, 3):
        raise ValueError(f'Winograd F(2x2,3x3) needs a 3x3 kernel, got shape {kernel.shape}')
    g = np.asarray(KERNEL_TRANSFORM, np.float64)
    return np.einsum('ka,abio,lb->klio', g, np.asarray(kernel, np.float64), g).astype(
        np.asarray(kernel).dtype)


def _combine(matrix: Sequence[Sequence[float]], parts: Sequence[jax.Array]) -> List[jax.Array]:
    """matrix @ parts with the small constant matrix unrolled into adds (XLA fuses them)."""
    rows = []
    for row in matrix:
        terms = [part if c == 1 else -part if c == -1 else part * c
                 for c, part in zip(row, parts) if c != 0]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        rows.append(total)
    return rows


def winograd_conv3x3(x: jax.Array, transformed_kernel: jax.Array,
                     chunk_bytes: int = WINOGRAD_CHUNK_BYTES) -> jax.Array:
    """SAME-padded stride-1 3x3 convolution of NHWC `x` with a `winograd_kernel` output, at
    most `chunk_bytes` of transformed tiles (at least one image) at a time."""
    batch, height, width, channels = x.shape
    tile_bytes = INPUT_TILE ** 2 * -(-height // OUTPUT_TILE) * -(-width // OUTPUT_TILE) \
        * channels * x.dtype.itemsize
    chunk = max(1, chunk_bytes // tile_bytes)
    if batch > chunk:
        return jnp.concatenate([_winograd_conv3x3(x[i:i + chunk], transformed_kernel)
                                for i in range(0, batch, chunk)])
    return _winograd_conv3x3(x, transformed_kernel)


def _winograd_conv3x3(x: jax.Array, transformed_kernel: jax.Array) -> jax.Array:
    batch, height, width, channels = x.shape
    features = transformed_kernel.shape[-1]
    tiles_h, tiles_w = -(-height // OUTPUT_TILE), -(-width // OUTPUT_TILE)
    padded = jnp.pad(x, ((0, 0), (1, OUTPUT_TILE * tiles_h - height + 1),
                         (1, OUTPUT_TILE * tiles_w - width + 1), (0, 0)))
    # d[i][j]: element (i, j) of every 4x4 input tile, as a (B, tiles_h, tiles_w, C) array.
    d = [[padded[:, i:i + OUTPUT_TILE * tiles_h:OUTPUT_TILE,
                 j:j + OUTPUT_TILE * tiles_w:OUTPUT_TILE] for j in range(INPUT_TILE)]
         for i in range(INPUT_TILE)]
    columns = [_combine(INPUT_TRANSFORM, [d[i][j] for i in range(INPUT_TILE)])
               for j in range(INPUT_TILE)]
    v = [_combine(INPUT_TRANSFORM, [columns[j][k] for j in range(INPUT_TILE)])
         for k in range(INPUT_TILE)]
    v = jnp.stack([v_kl for v_k in v for v_kl in v_k]).reshape(INPUT_TILE ** 2, -1, channels)
    m = jnp.einsum('xpc,xcf->xpf', v,
                   transformed_kernel.reshape(INPUT_TILE ** 2, channels, features))
    m = m.reshape(INPUT_TILE, INPUT_TILE, batch, tiles_h, tiles_w, features)
    rows = _combine(OUTPUT_TRANSFORM, [m[k] for k in range(INPUT_TILE)])
    y = jnp.stack([jnp.stack(_combine(OUTPUT_TRANSFORM, [r[j] for j in range(INPUT_TILE)]))
                   for r in rows])                 # (2, 2, B, tiles_h, tiles_w, F)
    y = y.transpose(2, 3, 0, 4, 1, 5).reshape(batch, OUTPUT_TILE * tiles_h,
                                              OUTPUT_TILE * tiles_w, features)
    return y[:, :height, :width]


class WinogradConv3x3(nn.Module):
    """Bias-free SAME 3x3 stride-1 convolution whose `kernel` param is already transformed.

    Inference only: its params are `winograd_params` of a plain `nn.Conv`'s, under the same
    name in the tree; its initialiser only gives the (4, 4, in, out) shape.
    """

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param('kernel', nn.initializers.kaiming_normal(),
                            (INPUT_TILE, INPUT_TILE, x.shape[-1], self.features))
        images = x.reshape(-1, *x.shape[-3:])          # nn.Conv's rule: any leading batch dims
        return winograd_conv3x3(images, kernel).reshape(*x.shape[:-1], self.features)


def space_to_depth_conv(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int],
                        padding: Any, **kwargs: Any) -> jax.Array:
    """`lax.conv_general_dilated` for NHWC/HWIO; stride-2 convolutions with explicit
    padding go through space-to-depth, anything else to XLA's direct convolution."""
    if (tuple(window_strides) != (2, 2) or isinstance(padding, str)
            or any(kwargs.get(k) not in (None, (1, 1)) for k in ('lhs_dilation', 'rhs_dilation'))
            or kwargs.get('feature_group_count', 1) != 1):
        return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, **kwargs)
    batch, height, width, channels = lhs.shape
    (top, bottom), (left, right) = padding
    kh, kw, _, features = rhs.shape
    ekh, ekw = kh + kh % 2, kw + kw % 2                        # kernel padded to even size
    out_h = (height + top + bottom - kh) // 2 + 1
    out_w = (width + left + right - kw) // 2 + 1
    blocks_h, blocks_w = out_h + ekh // 2 - 1, out_w + ekw // 2 - 1
    # Pad (or crop: lax.pad takes negative padding) to exactly the rows the output reads.
    x = jax.lax.pad(lhs, jnp.zeros((), lhs.dtype), (
        (0, 0, 0), (top, 2 * blocks_h - height - top, 0),
        (left, 2 * blocks_w - width - left, 0), (0, 0, 0)))
    x = x.reshape(batch, blocks_h, 2, blocks_w, 2, channels).transpose(0, 1, 3, 2, 4, 5)
    x = x.reshape(batch, blocks_h, blocks_w, 4 * channels)
    k = jnp.pad(rhs, ((0, ekh - kh), (0, ekw - kw), (0, 0), (0, 0)))
    k = k.reshape(ekh // 2, 2, ekw // 2, 2, channels, features).transpose(0, 2, 1, 3, 4, 5)
    k = k.reshape(ekh // 2, ekw // 2, 4 * channels, features)
    return jax.lax.conv_general_dilated(
        x, k, (1, 1), 'VALID', dimension_numbers=kwargs.get('dimension_numbers'),
        precision=kwargs.get('precision'))


def winograd_params(params: Any, fast_shapes: Any) -> Any:
    """The plain params converted to the tree `fast_shapes` (the fast form's param_shapes):
    kernels it holds as 4x4 are Winograd-transformed, everything else passes unchanged."""
    def convert(path: Any, leaf: Any, target: Any) -> Any:
        if tuple(target.shape[:2]) == (INPUT_TILE, INPUT_TILE) and leaf.shape[:2] == (3, 3):
            return winograd_kernel(np.asarray(leaf))
        if tuple(target.shape) != tuple(leaf.shape):
            name = '/'.join(str(getattr(key, 'key', key)) for key in path)
            raise ValueError(f'parameter {name} has shape {tuple(leaf.shape)}, the model '
                             f'expects {tuple(target.shape)}')
        return leaf
    return jax.tree_util.tree_map_with_path(convert, params, fast_shapes)
