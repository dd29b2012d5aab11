"""What the launch_testing modules share: the installed package's share folder, and a probe
that listens in a context of its own until enough results arrived."""
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import rclpy
from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from rclpy.qos import QoSProfile, ReliabilityPolicy


def installed_share() -> Optional[str]:
    """hil_serl_reward's share folder in an ament prefix (colcon build, then source
    install/setup.bash), or None: then there is no launch test to run."""
    try:
        return get_package_share_directory('hil_serl_reward')
    except (PackageNotFoundError, OSError, ValueError):
        return None


def receive(namespace: str, topics: Dict[str, type], enough: Callable[[Dict[str, List[Any]]], bool],
            timeout_s: float) -> Dict[str, List[Any]]:
    """Messages on `topics` (relative to `namespace`) until `enough` of them or the timeout."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('launch_test_probe', namespace=namespace, context=context)
    received: Dict[str, List[Any]] = {topic: [] for topic in topics}
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    for topic, msg_type in topics.items():
        node.create_subscription(msg_type, topic, received[topic].append, qos)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not enough(received):
            executor.spin_once(timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
    return received


def error_lines(proc_output: Any) -> List[Tuple[str, str]]:
    """(marker, text) of every Traceback, [ERROR] or [FATAL] line the processes printed."""
    found = []
    for output in proc_output:
        text = output.text.decode(errors='replace')
        found += [(marker, text) for marker in ('Traceback', '[ERROR]', '[FATAL]')
                  if marker in text]
    return found
