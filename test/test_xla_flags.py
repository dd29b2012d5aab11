"""The node's XLA settings: added once, never over a user's choice, and understood by
the pinned jaxlib (an unknown XLA flag aborts the process, so this is worth a real run)."""
import json
import os
import subprocess
import sys

import pytest

from hil_serl_reward.model.xla_flags import (
    CUDA_PLUGINS, CPU_YNN_FUSIONS, GPU_COMMAND_BUFFERS, GPU_COMMAND_BUFFERS_SINCE,
    PREALLOCATE, YNN_FUSION_SINCE, installed_jaxlib, installed_version, release_of,
    share_the_gpu, use_cpu_ynn_fusions, use_gpu_command_buffers)

NEW = '0.10.2'                  # a jaxlib that knows the flag, whatever is installed

COUNT_YNN_FUSIONS = '''
import json, jax, jax.numpy as jnp
conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
    x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
stats = jax.jit(lambda x: (x.mean(axis=(1, 2, 4)), (x * x).mean(axis=(1, 2, 4))))
print(json.dumps({
    'convolution': conv.lower(jnp.ones((1, 32, 32, 64)), jnp.ones((3, 3, 64, 64))).compile()
    .as_text().count('__ynn_fusion'),
    'group_norm_statistics': stats.lower(jnp.ones((2, 64, 64, 4, 16))).compile()
    .as_text().count('__ynn_fusion')}))
'''


def test_flag_is_added_beside_other_flags():
    environ = {'XLA_FLAGS': '--xla_cpu_enable_fast_math=false'}
    assert use_cpu_ynn_fusions(environ, jaxlib_version=NEW)
    assert environ['XLA_FLAGS'] == f'--xla_cpu_enable_fast_math=false {CPU_YNN_FUSIONS}'
    assert not use_cpu_ynn_fusions(environ, jaxlib_version=NEW)
    assert environ['XLA_FLAGS'].count('ynn_fusion_type') == 1


def test_an_older_jaxlib_gets_no_flag_it_would_abort_on():
    for version in ('0.6.2', '0.8.0', '0.4.38'):
        environ = {'XLA_FLAGS': '--xla_cpu_enable_fast_math=false'}
        assert not use_cpu_ynn_fusions(environ, jaxlib_version=version)
        assert environ == {'XLA_FLAGS': '--xla_cpu_enable_fast_math=false'}
    environ = {}
    assert use_cpu_ynn_fusions(environ, jaxlib_version='0.8.1')
    assert environ['XLA_FLAGS'] == CPU_YNN_FUSIONS


def test_users_choice_is_kept():
    environ = {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=+individual_convolution'}
    assert not use_cpu_ynn_fusions(environ, jaxlib_version=NEW)
    assert environ['XLA_FLAGS'].endswith('+individual_convolution')


def ynn_fusions(xla_flags: str) -> dict:
    env = {**os.environ, 'XLA_FLAGS': xla_flags, 'JAX_PLATFORMS': 'cpu'}
    out = subprocess.run([sys.executable, '-c', COUNT_YNN_FUSIONS], env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(release_of(installed_jaxlib() or '0') < YNN_FUSION_SINCE,
                    reason=f'jaxlib {installed_jaxlib()} has no YNN fusions (the NumPy-1 stack)')
def test_pinned_jaxlib_accepts_the_flag_and_gives_ynnpack_the_reductions_only():
    environ = {}
    assert use_cpu_ynn_fusions(environ)
    assert ynn_fusions('')['convolution'] > 0
    fusions = ynn_fusions(environ['XLA_FLAGS'])
    assert fusions['convolution'] == 0
    assert fusions['group_norm_statistics'] > 0


def test_gpu_preallocation_is_turned_off_unless_the_user_chose():
    environ = {}
    assert share_the_gpu(environ)
    assert environ == {PREALLOCATE: 'false'}
    environ = {PREALLOCATE: 'true'}
    assert not share_the_gpu(environ)
    assert environ == {PREALLOCATE: 'true'}


def test_gpu_command_buffers_only_where_a_cuda_plugin_and_a_new_jaxlib_are():
    environ = {'XLA_FLAGS': '--xla_cpu_enable_fast_math=false'}
    assert use_gpu_command_buffers(environ, jaxlib_version='0.11.2',
                                   cuda_plugin_version='0.11.2')
    assert environ['XLA_FLAGS'] == ' '.join(('--xla_cpu_enable_fast_math=false',
                                             *GPU_COMMAND_BUFFERS))
    assert not use_gpu_command_buffers(environ, jaxlib_version='0.11.2',
                                       cuda_plugin_version='0.11.2')
    assert environ['XLA_FLAGS'].count('command_buffer') == 1
    for version in ('0.6.2', '0.10.1'):                  # 0.6.2 aborts on CONVOLUTION
        environ = {}
        assert not use_gpu_command_buffers(environ, jaxlib_version=version,
                                           cuda_plugin_version=version)
        assert environ == {}
    if not any(map(installed_version, CUDA_PLUGINS)):
        environ = {}
        assert not use_gpu_command_buffers(environ, jaxlib_version='0.11.2')
        assert environ == {}


@pytest.mark.parametrize('users', ['--xla_gpu_graph_min_graph_size=5',
                                   '--xla_gpu_enable_command_buffer='])
def test_a_users_command_buffer_choice_is_kept(users):
    environ = {'XLA_FLAGS': users}
    assert not use_gpu_command_buffers(environ, jaxlib_version='0.11.2',
                                       cuda_plugin_version='0.11.2')
    assert environ == {'XLA_FLAGS': users}


@pytest.mark.skipif(release_of(installed_jaxlib() or '0') < GPU_COMMAND_BUFFERS_SINCE,
                    reason=f'jaxlib {installed_jaxlib()} does not know CONVOLUTION')
def test_pinned_jaxlib_parses_the_gpu_flags():
    """XLA parses every flag at start-up, GPU ones on a CPU too: an unknown value aborts."""
    env = {**os.environ, 'XLA_FLAGS': ' '.join(GPU_COMMAND_BUFFERS), 'JAX_PLATFORMS': 'cpu'}
    done = subprocess.run([sys.executable, '-c', 'import jax; print(jax.numpy.ones(2).sum())'],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == '2.0'
