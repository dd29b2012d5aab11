"""record_data: labelled classifier data from live camera topics, in hil-serl's format.

Takes the same synchronised, preprocessed camera sets as the reward node (shared camera
input and preprocessing), and records each one as a success while the std_msgs/Bool
`label_topic` (a teleop button, a keyboard node) is true, else as a failure. Writes
hil-serl `classifier_data` pickles in chunks and on shutdown, and stops by itself once
`successes_needed` successes are recorded.

    ros2 run hil_serl_reward record_data --ros-args --params-file rig.yaml \
        -p experiment:=ram_insertion -p successes_needed:=200
"""
import sys
import threading
import time
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter as RosParameter
from std_msgs.msg import Bool

from hil_serl_reward.data.classifier_data import ClassifierDataWriter, DataWriteError, transition
from hil_serl_reward.pipeline.camera_set import CameraSetError, CameraSetPreprocessor
from hil_serl_reward.ros import config
from hil_serl_reward.ros.camera_graph import matched_publishers, published_elsewhere, type_name
from hil_serl_reward.ros.camera_input import CameraSetInput, StartupError, declare_parameters
from hil_serl_reward.ros.cv_bridge_probe import make_converter
from hil_serl_reward.ros.diagnostics import ProblemLog, diagnostics_publisher
from hil_serl_reward.ros.node_main import run_node


class DataRecorder(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__('record_data', **kwargs)
        self._recording = False     # until __init__ ends: Kilted destroys a half-made node too
        values = declare_parameters(self, config.RECORDER_PARAMETERS)
        self.cameras = config.cameras_from(values)
        self.input = CameraSetInput(self, values, self.cameras)
        self.preprocessor = CameraSetPreprocessor(
            self.cameras, make_converter(int(values['max_image_pixels']),
                                         self.get_logger().warning))
        self.successes_needed = int(values['successes_needed'])
        state_dim = int(values['state_dim'])
        self._extra = {'state': np.zeros((1, state_dim), np.float32)} if state_dim else {}
        try:
            self.writer = ClassifierDataWriter(values['output_dir'], values['experiment'],
                                               int(values['flush_every']))
        except DataWriteError as exc:
            raise StartupError(str(exc)) from exc
        self.write_error: Optional[str] = None
        self.exit_code = 0
        self.label = False
        self.label_subscription = self.create_subscription(Bool, values['label_topic'],
                                                           self._on_label, 10)
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name='recorder', daemon=True)
        self._worker.start()
        self.camera_timeout = float(values['camera_timeout'])
        self._started = time.monotonic()
        self.problems = ProblemLog(self.get_logger())
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.diagnostics_pub = diagnostics_publisher(self, 1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"recording {', '.join(f'{c.key} <- {self.input.topic(c)}' for c in self.cameras)}"
            f" into {self.writer.folder}; success while "
            f"{self.resolve_topic_name(values['label_topic'])} is true; "
            f'stopping at {self.successes_needed} successes')
        self._recording = True

    def _on_label(self, msg: Bool) -> None:
        self.label = bool(msg.data)

    def _on_set_parameters(self, parameters: List[RosParameter]) -> SetParametersResult:
        """`camera_timeout` is the one parameter that changes while recording."""
        problems = config.check({parameter.name: parameter.value for parameter in parameters})
        if problems:
            return SetParametersResult(successful=False, reason='; '.join(problems))
        for parameter in parameters:
            if parameter.name == 'camera_timeout':
                self.camera_timeout = float(parameter.value)
        return SetParametersResult(successful=True)

    def _work(self) -> None:
        while not self.done.is_set() and (item := self.input.mailbox.take()) is not None:
            messages, _ = item
            try:
                images = self.preprocessor(messages)
            except CameraSetError as exc:
                self.input.refuse_set(exc.camera.key, exc.reason, str(exc))
                continue
            self.input.frame_sizes.update(self.preprocessor.frame_sizes)
            success = self.label
            with self._lock:
                try:
                    self.writer.add(transition(images, dict(self._extra)), success)
                    self.input.sets_used.tick()
                    finished = self.writer.successes >= self.successes_needed
                    if finished:
                        self.writer.flush()
                except DataWriteError as exc:
                    self._stop_on_write_error(exc)
                    return
            if success or self.writer.failures % 50 == 0:
                self.get_logger().info(
                    f'recorded {self.writer.successes}/{self.successes_needed} successes, '
                    f'{self.writer.failures} failures')
            if finished:
                self.get_logger().info(f'done: {len(self.writer.written)} files in '
                                       f'{self.writer.folder}')
                self.done.set()

    def _stop_on_write_error(self, exc: DataWriteError) -> None:
        """Recording on would only lose more: stop, say what is not on disk (in diagnostics
        and, through them, the log), exit 1."""
        successes, failures = self.writer.unwritten
        self.write_error = (f'{exc}: stopping; {successes} successes and {failures} failures '
                            f'recorded since the last file are NOT on disk '
                            f'({len(self.writer.written)} files written before are complete)')
        self.exit_code = 1
        self._publish_diagnostics()
        self.done.set()

    def status(self) -> Tuple[bytes, str]:
        """The diagnostics level and message: a failed write, cameras that send nothing (and
        what the ROS graph says of them), sets that cannot be built or are all refused, a
        label nobody publishes, a crop past its camera's frames, or recording."""
        if self.write_error:
            return DiagnosticStatus.ERROR, f'write failed: {self.write_error}'
        problem = self.input.silence(self.camera_timeout) or \
            self.input.stall_reason(max(self.camera_timeout, 2.0), 'recorded') or \
            self._label_problem() or self.input.frame_sizes.problem()
        return (DiagnosticStatus.WARN, problem) if problem else (DiagnosticStatus.OK, 'recording')

    def _label_problem(self) -> Optional[str]:
        """A label topic nobody publishes (a typo, a teleop node not started) makes every set
        a failure: recording goes on, saying so (after `camera_timeout`, as discovery takes
        a moment), and where Bools are published."""
        if matched_publishers(self, self.label_subscription) or \
                time.monotonic() - self._started < self.camera_timeout:
            return None
        topic = self.label_subscription.topic_name
        return (f'no publisher on the label topic {topic}: every set is recorded as a failure' +
                published_elsewhere(self, topic, type_name(Bool), what='the labelling node',
                                    fix='set label_topic, or remap'))

    def _publish_diagnostics(self) -> None:
        successes, failures = self.writer.unwritten
        level, message = self.status()
        self.problems.update(level, message)
        status = DiagnosticStatus(name=f'{self.get_fully_qualified_name()}: recorder',
                                  level=level, message=message)
        values = {**self.input.diagnostic_values(),
                  'successes recorded': str(self.writer.successes),
                  'failures recorded': str(self.writer.failures),
                  'files written': str(len(self.writer.written)),
                  'successes not yet written': str(successes),
                  'failures not yet written': str(failures)}
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        if self._recording:
            self.input.mailbox.close()
            self._worker.join(timeout=5.0)
            with self._lock:
                if self.write_error is None:
                    try:
                        self.writer.flush()
                    except DataWriteError as exc:
                        self._stop_on_write_error(exc)
        super().destroy_node()


def main(args: Optional[Sequence[str]] = None) -> int:
    return run_node(DataRecorder, 'record_data', (StartupError,),
                    done=lambda node: node.done.is_set(), args=args)


if __name__ == '__main__':
    sys.exit(main())
