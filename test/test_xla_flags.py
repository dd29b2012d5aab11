"""The node's XLA settings: added once, never over a user's choice, and understood by
the pinned jaxlib (an unknown XLA flag aborts the process, so this is worth a real run)."""
import json
import os
import subprocess
import sys

import pytest

from hil_serl_reward.model.xla_flags import (
    EIGEN_CONVOLUTIONS, PREALLOCATE, YNN_FUSION_SINCE, release_of, installed_jaxlib,
    share_the_gpu, use_eigen_convolutions)

NEW = '0.10.2'                  # a jaxlib that knows the flag, whatever is installed

COUNT_YNN_FUSIONS = '''
import json, jax, jax.numpy as jnp
conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
    x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
compiled = conv.lower(jnp.ones((1, 32, 32, 64)), jnp.ones((3, 3, 64, 64))).compile()
print(json.dumps({'ynn_fusions': compiled.as_text().count('__ynn_fusion')}))
'''


def test_flag_is_added_beside_other_flags():
    environ = {'XLA_FLAGS': '--xla_cpu_enable_fast_math=false'}
    assert use_eigen_convolutions(environ, jaxlib_version=NEW)
    assert environ['XLA_FLAGS'] == f'--xla_cpu_enable_fast_math=false {EIGEN_CONVOLUTIONS}'
    assert not use_eigen_convolutions(environ, jaxlib_version=NEW)
    assert environ['XLA_FLAGS'].count('ynn_fusion_type') == 1


def test_an_older_jaxlib_gets_no_flag_it_would_abort_on():
    for version in ('0.6.2', '0.8.0', '0.4.38'):
        environ = {'XLA_FLAGS': '--xla_cpu_enable_fast_math=false'}
        assert not use_eigen_convolutions(environ, jaxlib_version=version)
        assert environ == {'XLA_FLAGS': '--xla_cpu_enable_fast_math=false'}
    environ = {}
    assert use_eigen_convolutions(environ, jaxlib_version='0.8.1')
    assert environ['XLA_FLAGS'] == EIGEN_CONVOLUTIONS


def test_users_choice_is_kept():
    environ = {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=+individual_convolution'}
    assert not use_eigen_convolutions(environ, jaxlib_version=NEW)
    assert environ['XLA_FLAGS'].endswith('+individual_convolution')


def ynn_fusions(xla_flags: str) -> int:
    env = {**os.environ, 'XLA_FLAGS': xla_flags, 'JAX_PLATFORMS': 'cpu'}
    out = subprocess.run([sys.executable, '-c', COUNT_YNN_FUSIONS], env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])['ynn_fusions']


@pytest.mark.skipif(release_of(installed_jaxlib() or '0') < YNN_FUSION_SINCE,
                    reason=f'jaxlib {installed_jaxlib()} has no YNN fusions (the NumPy-1 stack)')
def test_pinned_jaxlib_accepts_the_flag_and_drops_ynn_convolutions():
    environ = {}
    assert use_eigen_convolutions(environ)
    assert ynn_fusions('') > 0
    assert ynn_fusions(environ['XLA_FLAGS']) == 0


def test_gpu_preallocation_is_turned_off_unless_the_user_chose():
    environ = {}
    assert share_the_gpu(environ)
    assert environ == {PREALLOCATE: 'false'}
    environ = {PREALLOCATE: 'true'}
    assert not share_the_gpu(environ)
    assert environ == {PREALLOCATE: 'true'}
