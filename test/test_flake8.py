"""Every Python file of the package passes flake8 (pyflakes and pycodestyle), as ament_python
packages check themselves with ament_flake8: an undefined name in a path no test takes (a
recorder's start-up, a benchmark's helper) is found here, not on the robot."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHECKED = ('hil_serl_reward', 'launch', 'test', 'bench', 'compat', 'setup.py')


def test_flake8_finds_nothing():
    result = subprocess.run([sys.executable, '-m', 'flake8', *CHECKED], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and not result.stderr, result.stdout + result.stderr
