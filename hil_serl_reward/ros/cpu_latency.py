"""The kernel's CPU latency request, held while the node serves (the node's
`cpu_latency_limit_us`).

Linux's PM QoS interface (`/dev/cpu_dma_latency`): a process writes the longest wake-up
latency it accepts, in microseconds, and while it keeps the file open the kernel's idle
governor puts no CPU in an idle state slower to leave than that; the request ends when the
file closes, however the process ends (a SIGKILL included). 0 means idle CPUs poll instead
of halting. Real-time PCs are usually tuned this way (tuned's latency-performance profile,
cyclictest); a node at a camera's rate is the case it exists for: between frames the CPUs
idle, and the first call after a halt runs slow. A GPU's calls are started from a CPU too, so
the node holds it whatever the device (measured on the CPU only, so far).

Measured on the project's 2-vCPU Zen 5 VM with XLA's threads pinned (docs/performance.md):
a 15 Hz call 1.13-1.28x its back-to-back time (median 1.25), with 0 held 1.07-1.20x (1.11);
the kernel counts a polling CPU as idle, so no CPU time shows up for it, but the cores run
instead of sleeping (power, and a VM's host CPU). The node's `keep_cpus_awake` tickers made
calls slower while 0 was held, so the node does not start them then. Opening the file needs
root or a udev rule for the node's user; without it the node says so and serves as before.
"""
import os
import struct

CPU_LATENCY_DEVICE = '/dev/cpu_dma_latency'
_VALUE = struct.Struct('=i')            # the kernel also takes hex text; binary is exact


class CpuLatencyRequest:
    """One request of at most `limit_us` microseconds, held until `close()`. Raises OSError
    where the file cannot be opened or written (no permission, no such device)."""

    def __init__(self, limit_us: int, device: str = CPU_LATENCY_DEVICE) -> None:
        self.limit_us = limit_us
        self.device = device
        self._fd = os.open(device, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(self._fd, _VALUE.pack(limit_us))
        except OSError:
            os.close(self._fd)
            raise

    def __enter__(self) -> 'CpuLatencyRequest':
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def describe(self) -> str:
        """For diagnostics."""
        return (f'{self.limit_us} us held ({self.device})' if self._fd >= 0
                else 'released')


def limit_in_force(device: str = CPU_LATENCY_DEVICE) -> int:
    """The machine's current limit in microseconds: the smallest of all requests held
    (the kernel's default, 2,000 s, when none is)."""
    with open(device, 'rb') as current:
        return _VALUE.unpack(current.read(_VALUE.size))[0]
