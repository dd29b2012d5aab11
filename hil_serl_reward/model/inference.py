"""Run-time classifier: load once, params on the device once, one jitted function.

Input is a dict of uint8 RGB images per camera key. Shapes accepted (hil-serl's
conventions, without its batch-vs-time pitfall, §1.3):
  (H, W, 3)           one image
  (1, H, W, 3)        one hil-serl observation (T=1)
  (B, H, W, 3), B > 1 a batch (the checkpoint has 3 input channels, so T must be 1)
  (B, 1, H, W, 3)     a batch of hil-serl observations
Everything is fed to the model as (B, 1, H, W, 3), so a batch is never read as time.
"""
import dataclasses
import functools
import os
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import SingleDeviceSharding

from hil_serl_reward.model.checkpoint import CheckpointError, LoadedCheckpoint, load_checkpoint
from hil_serl_reward.model.constants import DEVICES, GLIBC_MMAP_THRESHOLD_MAX
from hil_serl_reward.model.convolutions import winograd_params
from hil_serl_reward.model.reward_classifier import (
    ClassifierSpec, Params, build_classifier, param_shapes, probabilities, sample_observation)


class DeviceError(RuntimeError):
    """The requested device is not available to JAX."""


def select_device(name: str = 'auto') -> jax.Device:
    """`auto` prefers a GPU when JAX has one; `gpu` without one is an error, not a fallback."""
    if name not in DEVICES:
        raise DeviceError(f"device must be one of {DEVICES}, got '{name}'")
    if name in ('auto', 'gpu'):
        try:
            return jax.devices('gpu')[0]
        except RuntimeError:
            if name == 'gpu':
                raise DeviceError(
                    "device 'gpu' requested but JAX has no GPU backend (backends: "
                    f"{jax.default_backend()}); install a CUDA build, e.g. "
                    "pip install 'jax[cuda12]==" + jax.__version__ + "'") from None
    return jax.devices('cpu')[0]


def as_model_input(images: Mapping[str, np.ndarray], image_keys: Sequence[str]
                   ) -> Dict[str, np.ndarray]:
    """Normalise every camera to (B, 1, H, W, 3) and check they agree on B."""
    out = {}
    for key in image_keys:
        if key not in images:
            raise KeyError(f"no image for camera '{key}' (got {sorted(images)})")
        image = np.asarray(images[key])
        if image.shape[-1:] != (3,):
            raise ValueError(f"camera '{key}': expected RGB images (..., H, W, 3), "
                             f"got shape {image.shape}")
        if image.ndim == 3:
            image = image[None, None]
        elif image.ndim == 4:
            image = image[:, None]
        elif image.ndim != 5 or image.shape[1] != 1:
            raise ValueError(f"camera '{key}': expected (H,W,3), (B,H,W,3) or (B,1,H,W,3), "
                             f"got shape {image.shape}")
        out[key] = image
    batches = {key: image.shape[0] for key, image in out.items()}
    if len(set(batches.values())) > 1:
        raise ValueError(f'cameras disagree on the batch size: {batches}')
    return out


def batch_sizes_for(largest: int) -> Tuple[int, ...]:
    """The batch sizes compiled ahead for batches of up to `largest` sets: the powers of two
    below it and itself (8 -> 1, 2, 4, 8; 6 -> 1, 2, 4, 6). A batch of another size runs
    padded to the next one: a few sets' wasted work instead of a compile (seconds on a
    CPU) in the middle of serving."""
    if largest < 1:
        raise ValueError(f'a batch holds at least one set, got {largest}')
    return tuple(sorted({1 << i for i in range(largest.bit_length()) if 1 << i < largest}
                        | {largest}))


def largest_heap_batch(scratch_of_one_set: int, limit: int = GLIBC_MMAP_THRESHOLD_MAX) -> int:
    """The largest power-of-two batch a CPU call may hold: XLA:CPU mallocs a call's scratch
    buffer on every call, and glibc serves a block above its mmap threshold (`limit`, the
    most it can be set to) with fresh pages that fault in on every call. Measured on the Zen
    5 VM: 8 two-camera sets (33 MB of scratch) took 8,460 page faults a call and ran 250
    sets/s, 4 sets (17 MB) 0-6 and 307 sets/s. Estimated as the batch times one set's
    scratch, which XLA's grows slower than (two cameras: 5.0, 9.5, 16.8, 33.0 MB for 1, 2,
    4, 8 sets; four cameras: 10.0, 17.3, 33.5 MB for 1, 2, 4)."""
    batch = 1
    while 2 * batch * scratch_of_one_set <= limit:
        batch *= 2
    return batch


def padded(observations: Mapping[str, np.ndarray], batch_sizes: Sequence[int]
           ) -> Tuple[Dict[str, np.ndarray], int]:
    """as_model_input's observations padded with black sets to the smallest of
    `batch_sizes` that holds them, and their own batch size. A batch larger than every
    size stays as it is (and compiles, unless the classifier splits it: largest_call)."""
    batch = next(iter(observations.values())).shape[0]
    target = min((size for size in batch_sizes if size >= batch), default=batch)
    if target == batch:
        return dict(observations), batch
    return {key: np.concatenate([image, np.zeros((target - batch, *image.shape[1:]),
                                                 image.dtype)])
            for key, image in observations.items()}, batch


def probe_observations(spec: ClassifierSpec) -> Dict[str, Dict[str, np.ndarray]]:
    """Black, mid-grey, white and seeded-noise observations (batch 1) for every camera."""
    black = sample_observation(spec)
    shape = black[spec.image_keys[0]].shape
    noise = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    images = {'black': 0, 'grey': 128, 'white': 255}
    probes = {name: {key: np.full(shape, value, np.uint8) for key in spec.image_keys}
              for name, value in images.items()}
    probes['noise'] = {key: noise for key in spec.image_keys}
    return probes


def stacked_outputs(model: nn.Module, image_keys: Sequence[str], params: Params,
                    stacked: jax.Array) -> jax.Array:
    """The forward both device forms share: the cameras' images as one array (camera, B, 1,
    H, W, 3) in `image_keys` order in, logits and probabilities side by side as one array
    (B, width) out, so that a set costs one copy to the device and one back."""
    logits = model.apply({'params': params}, dict(zip(image_keys, stacked)), train=False)
    probs = probabilities(logits).reshape(logits.shape[0], -1)
    return jax.numpy.concatenate([logits, probs], axis=1)


@functools.lru_cache(maxsize=None)
def jitted_forward(spec: ClassifierSpec, form: str) -> Callable:
    """A CPU's forward, `(params, stacked) -> outputs`: one jitted function per model shape,
    shared by every classifier of that shape, so a reload of a checkpoint with new weights
    reuses the compiled code (compiling the CPU form takes 4-5 s on the CI VM; loading the
    weights 0.3 s)."""
    return jax.jit(functools.partial(stacked_outputs, build_classifier(spec, form),
                                     spec.image_keys))


def gpu_forward(spec: ClassifierSpec, form: str, params: Params, device: jax.Device
                ) -> Callable:
    """A GPU's forward, `stacked -> outputs`. At batch 1 a GPU's time goes to launches and
    copies, not arithmetic: on an H200 the program alone (input on the card, output left
    there) took 0.36-0.43 ms, and the call with its copies as jitted_forward makes it
    0.92-0.94 ms (docs/performance.md, On a GPU).
    Measured there, in turn: closing the weights over (XLA folds them into the program as
    constants; one compile per checkpoint, made off the executor like every load) took it
    to 0.80 ms, and having the program write its output to pinned host memory, where the
    call reads it without a transfer of its own, to 0.51 ms. Feeding the images through
    pinned host memory too was slower (0.81 ms): the copy into it costs more than it saves.
    What the call adds to the program now is the images' copy to the card (0.18-0.31 ms
    for 98 KB, measured later); polling for the output instead of waiting saved 0.02-0.08
    ms back to back and nothing at 30 Hz, so the call waits.
    A jaxlib whose device has no pinned host memory (0.6.2's CPU) keeps the output on the
    device."""
    model = build_classifier(spec, form)
    pinned = 'pinned_host' in {memory.kind for memory in device.addressable_memories()}
    return jax.jit(lambda stacked: stacked_outputs(model, spec.image_keys, params, stacked),
                   out_shardings=SingleDeviceSharding(device, memory_kind='pinned_host')
                   if pinned else None)


def stack_cameras(observations: Mapping[str, np.ndarray], image_keys: Sequence[str]
                  ) -> np.ndarray:
    """as_model_input's images as stacked_outputs' one array."""
    shapes = {key: observations[key].shape for key in image_keys}
    if len(set(shapes.values())) > 1:
        raise ValueError(f'cameras disagree on the image shape: {shapes}')
    return np.stack([observations[key] for key in image_keys])


def split_outputs(outputs: np.ndarray, spec: ClassifierSpec) -> Tuple[np.ndarray, np.ndarray]:
    """stacked_outputs' one array as (logits (B, 1) or (B, n), probabilities (B,) or (B, n))."""
    width = 1 if spec.n_way == 2 else spec.n_way
    logits, probs = outputs[:, :width], outputs[:, width:]
    return logits, probs[:, 0] if spec.n_way == 2 else probs


def hil_serl_forward(spec: ClassifierSpec, params: Params) -> Callable:
    """The `hil-serl` form's forward, compiled as hil-serl's `load_classifier_func` compiles
    it: `jax.jit` of `apply` with the params closed over. XLA then holds the weights as
    constants and folds them into the program, which changes its float32 rounding: the
    same model taking the params as an argument differs from hil-serl in the last bits
    (measured: up to 2e-6 in the logit). So this form compiles once per checkpoint, a reload
    included. The probabilities are computed after, on the logits, as hil-serl's reward
    functions do."""
    model = build_classifier(spec, 'hil-serl')
    logits_of = jax.jit(lambda observations: model.apply({'params': params}, observations,
                                                         train=False))

    def forward(observations: Dict[str, np.ndarray]):
        logits = logits_of(observations)
        return logits, probabilities(logits)

    return forward


@dataclasses.dataclass(frozen=True)
class Prediction:
    logits: np.ndarray          # (B, 1) binary, (B, n_way) n-way
    probabilities: np.ndarray   # (B,) success probability, or (B, n_way)


def refuse_non_finite(prediction: Prediction, probe: str, where: str) -> None:
    """CheckpointError naming `where` when the output on the `probe` image is not finite."""
    if not (np.isfinite(prediction.logits).all()
            and np.isfinite(prediction.probabilities).all()):
        raise CheckpointError(
            f"{where}: the output on a {probe} probe image is not finite (logits "
            f"{np.asarray(prediction.logits).ravel().tolist()}): corrupt weights; refusing to "
            f"serve it")


class RewardClassifier:
    """A loaded classifier bound to one device.

    `form` (constants.MODEL_FORMS; default: `fast` on a CPU with a shared backbone, where it
    was measured faster, else `direct`) is how the model computes: `fast` runs the backbone
    in its CPU inference form (convolutions.py), with the Winograd kernels transformed once
    here; logits match the plain form to float32 rounding (~1e-6). `hil-serl` computes as
    hil-serl's `load_classifier_func(...)(obs)` does, on its observation shape (T=1, no batch
    axis) when one set is classified: the same logits bit for bit in a process with the same
    jaxlib and XLA flags (test_convolutions). On a CPU the other forms share one compiled
    function per model shape (jitted_forward); on a GPU each classifier compiles its own,
    with its weights in it (gpu_forward). On a CPU a batch of more than `largest_call` sets
    (largest_heap_batch, from the scratch of one set's compiled call at warm-up) runs as
    several calls.
    """

    def __init__(self, spec: ClassifierSpec, params: Params, device: str = 'auto',
                 checkpoint: Optional[LoadedCheckpoint] = None, warm_up: bool = True,
                 form: Optional[str] = None, batch_sizes: Sequence[int] = (1,)) -> None:
        """`batch_sizes`: the batches compiled at warm-up (a node serving several rigs
        classifies their sets together, batch_sizes_for), less those above `largest_call`;
        a batch between two of them runs padded to the larger."""
        self.spec = spec
        self.batch_sizes = tuple(sorted(set(batch_sizes) | {1}))
        self.checkpoint = checkpoint
        self.device = select_device(device)
        if form is None:
            form = 'fast' if self.device.platform == 'cpu' and spec.backbone == 'shared' \
                else 'direct'
        self.form = form
        if form == 'fast':
            params = winograd_params(params, param_shapes(spec, form))
        self.params = jax.device_put(params, self.device)
        if form == 'hil-serl':
            self._forward = self._compiled = hil_serl_forward(spec, self.params)
        elif self.device.platform == 'cpu':
            self._compiled = jitted_forward(spec, form)      # shared by classifiers of a shape
            self._forward = functools.partial(self._compiled, self.params)
        else:
            self._forward = self._compiled = gpu_forward(spec, form, self.params, self.device)
        self.largest_call: Optional[int] = None
        if warm_up:
            self.check_probe_outputs()
            if self.device.platform == 'cpu' and form != 'hil-serl':
                self.largest_call = self._largest_heap_batch()
            if self.largest_call is not None:
                self.batch_sizes = tuple(size for size in self.batch_sizes
                                         if size <= self.largest_call)
            for size in self.batch_sizes[1:]:
                self.predict(sample_observation(spec, size))

    def check_probe_outputs(self) -> None:
        """Compiles (first call) and refuses a model whose outputs on probe images (black,
        mid-grey, white, seeded noise, one at a time: the shape the node feeds) are not
        finite: finite but corrupt weights (an exponent bit flipped) load without complaint
        and then give NaN on every camera set."""
        where = f"'{self.checkpoint.path}'" if self.checkpoint else "'the classifier'"
        for name, probe in probe_observations(self.spec).items():
            refuse_non_finite(self.predict(probe), name, where)

    def _largest_heap_batch(self) -> Optional[int]:
        """largest_heap_batch from the scratch of the one-set call the probes compiled (JAX
        hands back that executable: no compile); None where XLA does not tell."""
        one_set = stack_cameras(sample_observation(self.spec), self.spec.image_keys)
        analysis = self._compiled.lower(self.params, one_set).compile().memory_analysis()
        scratch = getattr(analysis, 'temp_size_in_bytes', None)
        return largest_heap_batch(scratch) if scratch else None

    @classmethod
    def from_checkpoint(cls, path: os.PathLike, image_keys: Optional[Sequence[str]] = None,
                        device: str = 'auto', backbone: Optional[str] = None,
                        form: Optional[str] = None, batch_sizes: Sequence[int] = (1,),
                        warm_up: bool = True) -> 'RewardClassifier':
        loaded = load_checkpoint(path, image_keys=image_keys, backbone=backbone)
        return cls(loaded.spec, loaded.params, device=device, checkpoint=loaded, form=form,
                   batch_sizes=batch_sizes, warm_up=warm_up)

    def device_memory_mib(self) -> Dict[str, float]:
        """What this process holds on the device, where it tells (a GPU; a CPU does not)."""
        stats = self.device.memory_stats() or {}
        return {name: stats[key] / 2**20 for name, key in
                (('in use', 'bytes_in_use'), ('peak', 'peak_bytes_in_use')) if key in stats}

    def predict(self, images: Mapping[str, np.ndarray]) -> Prediction:
        """Numpy goes straight into the jitted call, which moves it to the params' device:
        a separate device_put of the camera dict cost 0.2 ms per call on the CPU. The
        cameras travel as one array and the outputs come back as one (jitted_forward). The
        `hil-serl` form gets one set as hil-serl's actor passes it, (1, H, W, 3) per camera:
        XLA compiles another shape to another program, with other float32 rounding. A
        batch of more than `largest_call` sets runs in calls of that many."""
        observations = as_model_input(images, self.spec.image_keys)
        batch = next(iter(observations.values())).shape[0]
        if self.largest_call is not None and batch > self.largest_call:
            parts = [self.predict({key: image[start:start + self.largest_call]
                                   for key, image in observations.items()})
                     for start in range(0, batch, self.largest_call)]
            return Prediction(np.concatenate([part.logits for part in parts]),
                              np.concatenate([part.probabilities for part in parts]))
        observations, batch = padded(observations, self.batch_sizes)
        if self.form != 'hil-serl':
            outputs = np.asarray(self._forward(stack_cameras(observations,
                                                             self.spec.image_keys)))[:batch]
            return Prediction(*split_outputs(outputs, self.spec))
        if next(iter(observations.values())).shape[0] > 1:
            logits, probs = jax.device_get(self._forward(observations))
            return Prediction(logits[:batch], probs[:batch])
        logits, probs = jax.device_get(self._forward(
            {key: image[0] for key, image in observations.items()}))
        return Prediction(logits[None], probs[None])
