"""A minimal ROS 2 install has no gymnasium (the RL extra): `colcon test` must still pass,
the wrapper's tests skipping with the reason (and not by a module-level skip, which
launch_testing's collector would turn into skipping the whole folder)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
WITHOUT_GYMNASIUM = '''
import sys
sys.modules['gymnasium'] = None          # import gymnasium raises ImportError
import pytest
sys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', sys.argv[1]]))
'''


@pytest.mark.parametrize('module', ['test_gym_wrapper.py', 'test_remote_classifier.py'])
def test_the_rl_side_tests_skip_without_gymnasium(module):
    env = {k: v for k, v in os.environ.items() if k != 'PYTEST_ADDOPTS'}   # colcon's -k
    done = subprocess.run([sys.executable, '-c', WITHOUT_GYMNASIUM, str(HERE / module)],
                          capture_output=True, text=True, timeout=300, cwd=HERE.parent, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert 'gymnasium is not installed' in done.stdout
    assert ' passed' not in done.stdout and 'error' not in done.stdout.lower()
