"""The XLA:CPU setting our inference processes start JAX with.

jaxlib 0.10's XLA:CPU runs convolutions as YNNPACK fusions. For this ResNet at batch 1,
XLA's own (Eigen) convolutions are about 1.5x faster on the AVX2 CPU of the project's
2-core VM (README, Performance), so the node and `evaluate` turn the YNN fusions off.
XLA reads its flags once, when JAX creates the CPU backend: this must run before anything
asks JAX for a device. A user's own `--xla_cpu_experimental_ynn_fusion_type` in XLA_FLAGS
is left alone (`=+individual_convolution` gives XLA's default back).
"""
import os
from typing import MutableMapping

YNN_FUSION_FLAG = '--xla_cpu_experimental_ynn_fusion_type'
EIGEN_CONVOLUTIONS = f'{YNN_FUSION_FLAG}='


def use_eigen_convolutions(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Adds EIGEN_CONVOLUTIONS to XLA_FLAGS; False when the user already chose."""
    flags = environ.get('XLA_FLAGS', '')
    if YNN_FUSION_FLAG in flags:
        return False
    environ['XLA_FLAGS'] = f'{flags} {EIGEN_CONVOLUTIONS}'.strip()
    return True
