"""Fast DDS settings for camera-sized images.

Fast DDS 2.x (Humble, Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE and ignores the newer
name; Fast DDS 3.x (Kilted and later) reads FASTDDS_DEFAULT_PROFILES_FILE and warns about
the old one. Measured here: Jazzy with only FASTDDS_... set still loses best-effort frames.
"""
import os
from importlib import metadata
from pathlib import Path
from typing import Dict, Optional

FAST_DDS_2_DISTROS = ('humble', 'iron', 'jazzy')
PROFILE = 'fastdds_large_images.xml'
LOOPBACK_PROFILE = 'fastdds_large_images_loopback.xml'
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')


def ros_distro() -> Optional[str]:
    """$ROS_DISTRO on a sourced install, else the distro of the rclpy wheel in this venv."""
    if os.environ.get('ROS_DISTRO'):
        return os.environ['ROS_DISTRO']
    for dist in metadata.distributions():
        parts = (dist.metadata['Name'] or '').lower().replace('_', '-').split('-')
        if len(parts) == 3 and parts[0] == 'ros' and parts[2] == 'rclpy':
            return parts[1]
    return None


def profile_variable(distro: Optional[str]) -> str:
    fast_dds_2, fast_dds_3 = PROFILE_VARIABLES
    return fast_dds_2 if distro in FAST_DDS_2_DISTROS else fast_dds_3


def profile_env(profile: Path) -> Dict[str, str]:
    """The one environment variable that makes this distro's Fast DDS load `profile`."""
    return {profile_variable(ros_distro()): str(Path(profile).resolve())}


def config_dir() -> Path:
    """config/ of the installed package share, or of the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('hil_serl_reward')) / 'config'
    except (ImportError, LookupError, OSError, ValueError):
        return Path(__file__).resolve().parents[2] / 'config'
