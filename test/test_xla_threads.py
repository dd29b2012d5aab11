"""pin_xla_threads: XLA:CPU's compute threads found by name and pinned one to a CPU."""
import os

import jax
import jax.numpy as jnp
import pytest

from hil_serl_reward.model.xla_flags import installed_jaxlib, release_of
from hil_serl_reward.ros import xla_threads

NAMED_SINCE = (0, 10)        # jaxlib 0.6.2's pool threads carry no name of their own


@pytest.fixture
def pool():
    """XLA's compute threads after a call big enough to use them; their CPUs put back
    after the test (they belong to this pytest process)."""
    x = jnp.ones((512, 512), device=jax.devices('cpu')[0])
    jax.jit(lambda a: a @ a)(x).block_until_ready()
    threads = xla_threads.compute_threads()
    if not threads and release_of(installed_jaxlib()) < NAMED_SINCE:
        pytest.skip(f'jaxlib {installed_jaxlib()} does not name its compute threads')
    before = {tid: os.sched_getaffinity(tid) for tid in threads}
    yield threads
    for tid, cpus in before.items():
        os.sched_setaffinity(tid, cpus)


def test_each_compute_thread_gets_a_cpu_of_its_own(pool):
    cpus = sorted(os.sched_getaffinity(0))
    assert pool and all(tid != os.getpid() for tid in pool)
    pinned = xla_threads.pin_compute_threads()
    assert sorted(pinned) == pool
    for tid, cpu in pinned.items():
        assert os.sched_getaffinity(tid) == {cpu} and cpu in cpus
    if len(pool) <= len(cpus):
        assert len(set(pinned.values())) == len(pool)            # none shares a CPU
    assert xla_threads.describe(pinned) == \
        f'{len(pool)} thread(s) pinned to CPU(s) ' \
        f'{", ".join(map(str, sorted(set(pinned.values()))))}'


def test_more_threads_than_cpus_share_them_in_turn(pool):
    first = sorted(os.sched_getaffinity(0))[0]
    pinned = xla_threads.pin_compute_threads([first])
    assert set(pinned.values()) == {first}
    assert all(os.sched_getaffinity(tid) == {first} for tid in pool)


def test_nothing_to_pin_says_so(tmp_path):
    (tmp_path / '7').mkdir()
    (tmp_path / '7' / 'comm').write_text('python\n')
    assert xla_threads.compute_threads(str(tmp_path)) == []
    assert xla_threads.describe({}) == 'no tf_XLAEigen threads found: not pinned'
