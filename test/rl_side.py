"""What the RL side's tests (gym wrapper, drop-in loader) share: gymnasium where it is
installed, the env base class, and their skip marks. Marks, not a module-level skip:
launch_testing's collector imports every module of test/, and a module-level skip there skips
the whole folder."""
import pytest

try:
    import gymnasium as gym
except ImportError:             # the RL extra (requirements/rl.txt); the node does not need it
    gym = None

from hil_serl_reward.ros import classification

RL_SIDE_MARKS = [
    pytest.mark.skipif(classification.UNAVAILABLE is not None,
                       reason=classification.UNAVAILABLE or ''),
    pytest.mark.skipif(gym is None, reason='gymnasium is not installed (pip install -r '
                       'requirements/rl.txt, or rosdep key python3-gymnasium-pip)')]
Env = object if gym is None else gym.Env
