"""What both launch files add to the reward node (imports `launch`: launch files only).

`ros2 launch` returns 0 even when a node exits with an error: only an exception raised in
an action or event handler makes `LaunchService.run` shut down and return 1. A robot script
must learn that the reward node died (a bad checkpoint, a wrong params file), so its exit
is turned into exactly that.
"""
from typing import Any, List, Optional

from launch.actions import RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events.process import ProcessExited
from launch.launch_context import LaunchContext


class NodeFailed(RuntimeError):
    """The reward node exited with an error while the launch was running."""


def _raise_if_failed(event: ProcessExited, context: LaunchContext) -> Optional[List[Any]]:
    if event.returncode != 0 and not context.is_shutdown:
        raise NodeFailed(f'{event.action.process_details["name"]} exited with code '
                         f'{event.returncode} (its log above says why): shutting down')
    return None


def shut_down_when_it_fails(node: Any) -> RegisterEventHandler:
    """The launch shuts down and `ros2 launch` exits 1 when `node` exits non-zero."""
    return RegisterEventHandler(OnProcessExit(target_action=node, on_exit=_raise_if_failed))
