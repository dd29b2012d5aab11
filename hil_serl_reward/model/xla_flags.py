"""The XLA settings our inference processes start JAX with. XLA reads them once, when JAX
creates a backend: these must run before anything asks JAX for a device. A setting the user
already made in the environment is left alone.

CPU: jaxlib 0.10's XLA:CPU runs convolutions as YNNPACK fusions. For this ResNet at batch 1,
XLA's own (Eigen) convolutions are about 1.5x faster on the AVX2 CPU of the project's
2-core VM (README, Performance), so the node and `evaluate` keep YNNPACK off convolutions.
Its reductions are another matter: XLA's own loops for GroupNorm's statistics (means of x
and x^2 over a 64x64x64 map per image) were a quarter of a batch-8 call on a Zen 5 VM, and
YNNPACK's took a set from 5.3-5.9 to 4.3-5.1 ms, batch 8 from 188-205 to 191-243 sets/s (no
change on a Xeon's 2 cores; docs/performance.md; the logits move by float32 rounding, 2e-8).
So CPU_YNN_FUSIONS lets YNNPACK have the reductions and nothing else
(`=+individual_convolution` gives XLA's default back). jaxlib before 0.8.1 has no YNN
fusions and aborts any process on the flag it does not know (exit 134, measured with 0.6.2,
the newest with Python 3.10 wheels): there it is not set; 0.8.1, 0.9.0, 0.10.2 and 0.11.2
were seen to take `reduce`.

GPU: JAX takes 75 % of the card's memory when it starts, whatever it needs. The node shares
the GPU with the policy (hil-serl's actor and learner are JAX processes too, each
preallocating), so it allocates as it goes (README, GPU). At batch 1 the GPU's time goes to
launching kernels: XLA records runs of kernels into CUDA graphs (command buffers), but by
default not convolutions, and not runs shorter than five, so this ResNet ran as dozens of
launches. GPU_COMMAND_BUFFERS records the convolutions too, and runs of any length: 1.13 ->
0.94 ms per call on an H200 (docs/performance.md, On a GPU). A jaxlib older than
GPU_COMMAND_BUFFERS_SINCE may not know CONVOLUTION (0.6.2 aborts on it), and a jaxlib
without a CUDA plugin has no use for them: neither gets them.
"""
import os
import re
from importlib import metadata
from typing import MutableMapping, Optional, Tuple

YNN_FUSION_FLAG = '--xla_cpu_experimental_ynn_fusion_type'
CPU_YNN_FUSIONS = f'{YNN_FUSION_FLAG}=reduce'
YNN_FUSION_SINCE = (0, 8, 1)        # the first jaxlib whose XLA knows the flag
PREALLOCATE = 'XLA_PYTHON_CLIENT_PREALLOCATE'
GPU_COMMAND_BUFFERS = ('--xla_gpu_enable_command_buffer=+CONVOLUTION',
                       '--xla_gpu_graph_min_graph_size=1')
GPU_COMMAND_BUFFERS_SINCE = (0, 10, 2)    # the oldest jaxlib seen to know CONVOLUTION here
CUDA_PLUGINS = ('jax-cuda13-plugin', 'jax-cuda12-plugin')


def release_of(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r'\d+', version)[:3])


def installed_version(distribution: str) -> Optional[str]:
    """A distribution's version from its metadata (importing jaxlib would start XLA)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def installed_jaxlib() -> Optional[str]:
    return installed_version('jaxlib')


def add_flags(environ: MutableMapping[str, str], flags: Tuple[str, ...]) -> bool:
    """Adds `flags` to XLA_FLAGS unless the user already set any of them."""
    current = environ.get('XLA_FLAGS', '')
    if any(flag.split('=')[0] in current for flag in flags):
        return False
    environ['XLA_FLAGS'] = ' '.join((current, *flags)).strip()
    return True


def use_cpu_ynn_fusions(environ: MutableMapping[str, str] = os.environ,
                        jaxlib_version: Optional[str] = None) -> bool:
    """Adds CPU_YNN_FUSIONS to XLA_FLAGS; False when the user already chose, or when the
    jaxlib is older than the flag."""
    version = jaxlib_version or installed_jaxlib()
    if version is None or release_of(version) < YNN_FUSION_SINCE:
        return False
    return add_flags(environ, (CPU_YNN_FUSIONS,))


def use_gpu_command_buffers(environ: MutableMapping[str, str] = os.environ,
                            jaxlib_version: Optional[str] = None,
                            cuda_plugin_version: Optional[str] = None) -> bool:
    """Adds GPU_COMMAND_BUFFERS to XLA_FLAGS where a CUDA plugin is installed; False when the
    user already chose, without a plugin, or with a jaxlib older than the flags."""
    version = jaxlib_version or installed_jaxlib()
    plugin = cuda_plugin_version or next(filter(None, map(installed_version, CUDA_PLUGINS)),
                                         None)
    if plugin is None or version is None or release_of(version) < GPU_COMMAND_BUFFERS_SINCE:
        return False
    return add_flags(environ, GPU_COMMAND_BUFFERS)


def share_the_gpu(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Turns JAX's GPU memory preallocation off; False when the user already chose."""
    if PREALLOCATE in environ:
        return False
    environ[PREALLOCATE] = 'false'
    return True
