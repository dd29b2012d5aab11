"""The XLA settings our inference processes start JAX with. XLA reads them once, when JAX
creates a backend: these must run before anything asks JAX for a device. A setting the user
already made in the environment is left alone.

CPU: jaxlib 0.10's XLA:CPU runs convolutions as YNNPACK fusions. For this ResNet at batch 1,
XLA's own (Eigen) convolutions are about 1.5x faster on the AVX2 CPU of the project's
2-core VM (README, Performance), so the node and `evaluate` turn the YNN fusions off
(`--xla_cpu_experimental_ynn_fusion_type=+individual_convolution` gives XLA's default back).

GPU: JAX takes 75 % of the card's memory when it starts, whatever it needs. The node shares
the GPU with the policy (hil-serl's actor and learner are JAX processes too, each
preallocating), so it allocates as it goes (README, GPU).
"""
import os
from typing import MutableMapping

YNN_FUSION_FLAG = '--xla_cpu_experimental_ynn_fusion_type'
EIGEN_CONVOLUTIONS = f'{YNN_FUSION_FLAG}='
PREALLOCATE = 'XLA_PYTHON_CLIENT_PREALLOCATE'


def use_eigen_convolutions(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Adds EIGEN_CONVOLUTIONS to XLA_FLAGS; False when the user already chose."""
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
