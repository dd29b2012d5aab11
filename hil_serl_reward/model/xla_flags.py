"""The XLA settings our inference processes start JAX with. XLA reads them once, when JAX
creates a backend: these must run before anything asks JAX for a device. A setting the user
already made in the environment is left alone.

CPU: jaxlib 0.10's XLA:CPU runs convolutions as YNNPACK fusions. For this ResNet at batch 1,
XLA's own (Eigen) convolutions are about 1.5x faster on the AVX2 CPU of the project's
2-core VM (README, Performance), so the node and `evaluate` turn the YNN fusions off
(`--xla_cpu_experimental_ynn_fusion_type=+individual_convolution` gives XLA's default back).
jaxlib before 0.8.1 has no YNN fusions and aborts any process on the flag it does not know
(exit 134, measured with 0.6.2, the newest with Python 3.10 wheels): there it is not set.

GPU: JAX takes 75 % of the card's memory when it starts, whatever it needs. The node shares
the GPU with the policy (hil-serl's actor and learner are JAX processes too, each
preallocating), so it allocates as it goes (README, GPU).
"""
import os
import re
from importlib import metadata
from typing import MutableMapping, Optional, Tuple

YNN_FUSION_FLAG = '--xla_cpu_experimental_ynn_fusion_type'
EIGEN_CONVOLUTIONS = f'{YNN_FUSION_FLAG}='
YNN_FUSION_SINCE = (0, 8, 1)        # the first jaxlib whose XLA knows the flag
PREALLOCATE = 'XLA_PYTHON_CLIENT_PREALLOCATE'


def release_of(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r'\d+', version)[:3])


def installed_jaxlib() -> Optional[str]:
    """The installed jaxlib's version, from its metadata (importing it would start XLA)."""
    try:
        return metadata.version('jaxlib')
    except metadata.PackageNotFoundError:
        return None


def use_eigen_convolutions(environ: MutableMapping[str, str] = os.environ,
                           jaxlib_version: Optional[str] = None) -> bool:
    """Adds EIGEN_CONVOLUTIONS to XLA_FLAGS; False when the user already chose, or when the
    jaxlib is older than the flag."""
    version = jaxlib_version or installed_jaxlib()
    if version is None or release_of(version) < YNN_FUSION_SINCE:
        return False
    flags = environ.get('XLA_FLAGS', '')
    if YNN_FUSION_FLAG in flags:
        return False
    environ['XLA_FLAGS'] = f'{flags} {EIGEN_CONVOLUTIONS}'.strip()
    return True


def share_the_gpu(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Turns JAX's GPU memory preallocation off; False when the user already chose."""
    if PREALLOCATE in environ:
        return False
    environ[PREALLOCATE] = 'false'
    return True
