"""cpu_latency_limit_us: the kernel's CPU latency request, held while open and gone with the
process however it ends. The kernel's own device where this process may open it (root);
its file format everywhere."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hil_serl_reward.ros.cpu_latency import (
    CPU_LATENCY_DEVICE, CpuLatencyRequest, limit_in_force)

needs_the_device = pytest.mark.skipif(
    not os.access(CPU_LATENCY_DEVICE, os.W_OK),
    reason=f'{CPU_LATENCY_DEVICE} is not writable here (root, or a udev rule, opens it)')


def test_the_request_is_the_kernels_binary_microseconds(tmp_path):
    device = tmp_path / 'cpu_dma_latency'
    device.write_bytes(b'')
    with CpuLatencyRequest(37, device=str(device)) as request:
        assert limit_in_force(str(device)) == 37
        assert request.describe() == f'37 us held ({device})'
    assert request.describe() == 'released'
    request.close()                                  # twice is harmless


def test_a_device_that_cannot_be_opened_raises_and_leaves_nothing_open(tmp_path):
    before = len(os.listdir('/proc/self/fd'))
    with pytest.raises(OSError, match='absent'):
        CpuLatencyRequest(0, device=str(tmp_path / 'absent'))
    assert len(os.listdir('/proc/self/fd')) == before


@needs_the_device
def test_held_while_open_and_the_smallest_request_wins():
    before = limit_in_force()
    with CpuLatencyRequest(before - 1 if before > 50 else 50) as loose:
        with CpuLatencyRequest(0):
            assert limit_in_force() == 0
        assert limit_in_force() == min(before, loose.limit_us)
    assert limit_in_force() == before


@needs_the_device
def test_a_killed_holder_leaves_no_request_behind():
    """A node killed with SIGKILL cannot close anything: the kernel ends the request."""
    before = limit_in_force()
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\n'
         'from hil_serl_reward.ros.cpu_latency import CpuLatencyRequest\n'
         'request = CpuLatencyRequest(0)\nprint("held", flush=True)\ntime.sleep(60)\n'],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == 'held'
        assert limit_in_force() == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    assert limit_in_force() == before


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(CPU_LATENCY_DEVICE),
                    reason='needs root, to become a user who is not')
def test_a_user_who_is_not_root_is_refused_with_the_kernels_reason():
    """What a node started by an ordinary user meets (the device is root's, mode 0600, unless
    a udev rule gives a group access); the node then serves without it and says why."""
    if os.stat(CPU_LATENCY_DEVICE).st_mode & 0o006:
        pytest.skip(f'{CPU_LATENCY_DEVICE} is open to everyone on this machine')
    done = subprocess.run(
        [sys.executable, '-c', 'import os\n'
         'from hil_serl_reward.ros.cpu_latency import CpuLatencyRequest\n'
         'os.setgroups([]); os.setgid(65534); os.setuid(65534)       # nobody\n'
         'try:\n    CpuLatencyRequest(0)\nexcept OSError as error:\n    print(error)\n'],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.strip() == f"[Errno 13] Permission denied: '{CPU_LATENCY_DEVICE}'", done
