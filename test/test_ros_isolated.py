"""scripts/ros_isolated.sh: DDS stays on this machine with or without a network namespace."""
import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / 'scripts' / 'ros_isolated.sh'
PRINT_ENV = ['bash', '-c',
             'echo "$ROS_AUTOMATIC_DISCOVERY_RANGE $ROS_DOMAIN_ID $RMW_IMPLEMENTATION"']


def run_isolated(path: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ('ROS_DOMAIN_ID', 'HIL_SERL_NO_NETNS')}
    return subprocess.run([str(SCRIPT), *PRINT_ENV], env={**env, 'PATH': path},
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
