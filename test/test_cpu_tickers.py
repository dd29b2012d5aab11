"""keep_cpus_awake's helper: one idle-priority thread per CPU, pinned there, that ends with
its owner however the owner ends."""
import os
import signal
import subprocess
import sys
import time

import pytest

from hil_serl_reward.ros.cpu_tickers import CpuTickers

SCHED_IDLE = 5          # the policy field of /proc/<pid>/task/<tid>/stat


def thread_states(pid):
    """(policy, allowed CPUs) of each thread of `pid` but its main one."""
    states = []
    for tid in sorted(map(int, os.listdir(f'/proc/{pid}/task'))):
        if tid == pid:
            continue
        fields = open(f'/proc/{pid}/task/{tid}/stat').read().rsplit(')', 1)[1].split()
        states.append((int(fields[38]), os.sched_getaffinity(tid)))
    return states


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.02)


def test_one_idle_priority_thread_pinned_to_each_cpu():
    cpus = sorted(os.sched_getaffinity(0))
    with CpuTickers() as tickers:
        wait_for(lambda: len(thread_states(tickers.pid)) == len(cpus)
                 and all(policy == SCHED_IDLE for policy, _ in thread_states(tickers.pid)))
        assert sorted(allowed for _, allowed in thread_states(tickers.pid)) == \
            [{cpu} for cpu in cpus]
        time.sleep(0.5)
        assert tickers.cores() > 0.0                  # they tick: some CPU is spent
        assert tickers.describe().startswith(f'{len(cpus)} CPU(s) woken every 0.2 ms')
        pid = tickers.pid
    assert not os.path.exists(f'/proc/{pid}')            # ended and reaped by close()


def test_a_subset_of_cpus_and_another_period():
    first = min(os.sched_getaffinity(0))
    with CpuTickers(cpus=[first], period_s=1e-3) as tickers:
        wait_for(lambda: thread_states(tickers.pid) == [(SCHED_IDLE, {first})])
        assert tickers.describe().startswith('1 CPU(s) woken every 1 ms')


@pytest.mark.parametrize('ending', ['sigkill', 'exit'])
def test_the_helper_ends_with_its_owner(ending):
    """A node killed outright (SIGKILL: no cleanup runs) leaves no ticker behind."""
    owner = subprocess.Popen(
        [sys.executable, '-c',
         'import sys, time\nfrom hil_serl_reward.ros.cpu_tickers import CpuTickers\n'
         't = CpuTickers()\nprint(t.pid, flush=True)\n'
         'sys.stdin.readline()\n'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    helper = int(owner.stdout.readline())
    assert os.path.exists(f'/proc/{helper}')
    if ending == 'sigkill':
        owner.send_signal(signal.SIGKILL)
    else:
        owner.stdin.write('\n')
        owner.stdin.flush()
    owner.wait(timeout=10)
    wait_for(lambda: not os.path.exists(f'/proc/{helper}'))


def test_ctrl_c_is_left_to_the_owner():
    """A terminal's Ctrl-C reaches the node's whole process group: the helper must neither
    die with a traceback nor outlive its owner."""
    with CpuTickers() as tickers:
        wait_for(lambda: len(thread_states(tickers.pid)) == len(tickers.cpus))  # it is set up
        os.kill(tickers.pid, signal.SIGINT)
        time.sleep(0.3)
        assert tickers._process.poll() is None           # still ticking
