"""scripts/ros_isolated.sh: DDS stays on this machine with or without a network namespace."""
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / 'scripts' / 'ros_isolated.sh'
PRINT_ENV = ['bash', '-c',
             'echo "$ROS_AUTOMATIC_DISCOVERY_RANGE $ROS_DOMAIN_ID $RMW_IMPLEMENTATION"']


def run_isolated(path: str, command=PRINT_ENV) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ('ROS_DOMAIN_ID', 'HIL_SERL_NO_NETNS')}
    return subprocess.run([str(SCRIPT), *command], env={**env, 'PATH': path},
                          capture_output=True, text=True, timeout=30, check=True)


def test_loopback_discovery_and_a_random_domain():
    done = run_isolated(os.environ['PATH'])
    discovery, domain, rmw = done.stdout.split()
    assert discovery == 'LOCALHOST' and 1 <= int(domain) <= 100 and rmw == 'rmw_fastrtps_cpp'


def test_without_the_ip_tool_it_runs_without_a_namespace(tmp_path):
    """A machine without iproute2 (seen on a GPU machine) cannot bring `lo` up inside a new
    namespace: the command must still run, on loopback discovery alone."""
    for tool in ('bash', 'id', 'unshare', 'true'):
        found = shutil.which(tool)
        if found:
            (tmp_path / tool).symlink_to(found)
    done = run_isolated(str(tmp_path))
    assert 'no network namespace' in done.stderr
    assert done.stdout.split()[0] == 'LOCALHOST'


def test_a_run_has_a_dev_shm_of_its_own():
    """Shared-memory segments left in /dev/shm (here a stand-in for a killed participant's
    port file) are not seen inside, and what a run writes there is gone after it."""
    outside = Path('/dev/shm') / f'fastrtps_port_stale_{uuid.uuid4().hex[:8]}'
    inside = f'fastrtps_port_run_{uuid.uuid4().hex[:8]}'
    outside.write_bytes(b'')
    try:
        done = run_isolated(os.environ['PATH'], ['bash', '-c', f'touch /dev/shm/{inside}; '
                                                 'ls -A /dev/shm'])
    finally:
        outside.unlink()
    if 'and /dev/shm' not in done.stderr:
        pytest.skip(f'no private /dev/shm here: {done.stderr.strip()}')
    assert done.stdout.split() == [inside]
    assert not (Path('/dev/shm') / inside).exists()
