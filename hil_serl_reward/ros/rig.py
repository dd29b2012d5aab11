"""One rig served by the reward node: its cameras, its success streak, its outputs and counters.

A node serves one rig (cameras and outputs under the node's own namespace) or several
(`rigs: [left, right]`), all with one model: the worker classifies the sets of the rigs that
are waiting together in one batch, and each rig publishes its results under its namespace.
With `stages` a Rig is one stage's outputs, under the stage's name: the stages share the
first one's camera input (share_input), and each publishes its own classifier's results.
What belongs to the model (loading, reloads, the inference worker) stays in the node.
"""
import collections
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.lifecycle import LifecycleNode
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32, String

from hil_serl_reward.data.review import ReviewFolder
from hil_serl_reward.pipeline.camera_set import Camera, ConsecutiveSuccess, RewardResult
from hil_serl_reward.pipeline.debug_view import model_view
from hil_serl_reward.pipeline.image_conversion import rgb_to_msg
from hil_serl_reward.pipeline.mailbox import LatestMailbox
from hil_serl_reward.pipeline.stamps import age_s, write_stamp
from hil_serl_reward.pipeline.stats import Window
from hil_serl_reward.ros import classification
from hil_serl_reward.ros.camera_input import CameraSetInput
from hil_serl_reward.ros.diagnostics import ProblemLog

Level = bytes


class Rig:
    def __init__(self, node: LifecycleNode, name: str, cameras: Sequence[Camera],
                 min_consecutive: int, role: str = 'rig') -> None:
        """`name`: the namespace of the outputs relative to the node's ('' = the node's own);
        `cameras` as this rig reads them (config.rig_cameras); `role`: 'rig' or 'stage'."""
        self.node = node
        self.name = name
        self.role = role
        self.cameras = tuple(cameras)
        self.owns_input = True
        self.consecutive = ConsecutiveSuccess(min_consecutive)
        self.input: Optional[CameraSetInput] = None
        self.review: Optional[ReviewFolder] = None      # review_dir: this rig's successes
        self.class_pub: Optional[Any] = None             # n-way only, as confidence_pub
        self.confidence_pub: Optional[Any] = None
        self.classification_pub: Optional[Any] = None
        self._last_debug_image = float('-inf')
        self.problems = ProblemLog(node.get_logger())
        self.reset_counters()

    def topic(self, name: str) -> str:
        """An output's topic name: under the rig's namespace, `~/` ones too."""
        if not self.name:
            return name
        return f'~/{self.name}/{name[2:]}' if name.startswith('~/') else f'{self.name}/{name}'

    # ---- lifecycle: publishers at configure, cameras at activate ----------------------------

    def create_publishers(self, n_way_outputs: bool) -> None:
        create = self.node.create_lifecycle_publisher
        if n_way_outputs:                                # the winning class, plainly
            self.class_pub = create(String, self.topic('class'), 10)
            self.confidence_pub = create(Float32, self.topic('confidence'), 10)
        self.reward_pub = create(Float32, self.topic('reward'), 10)
        self.success_pub = create(Bool, self.topic('success'), 10)
        self.probability_pub = create(Float32, self.topic('probability'), 10)
        self.debug_image_pub = create(Image, self.topic('~/debug_image'), 1)
        if not classification.UNAVAILABLE:
            self.classification_pub = create(classification.Classification,
                                             self.topic(classification.TOPIC), 10)

    def destroy_publishers(self) -> None:
        for publisher in (self.reward_pub, self.success_pub, self.probability_pub,
                          self.debug_image_pub, self.classification_pub, self.class_pub,
                          self.confidence_pub):
            if publisher is not None:
                self.node.destroy_lifecycle_publisher(publisher)
        self.classification_pub = self.class_pub = self.confidence_pub = None

    def subscribe(self, values: Dict[str, Any], condition: threading.Condition) -> None:
        """Subscribe to the cameras; complete sets land in `input.mailbox`, made with the
        node's one `condition` so that one worker waits on every rig."""
        self._serve(CameraSetInput(self.node, values, self.cameras,
                                   LatestMailbox(condition=condition)), owns=True)

    def share_input(self, other: 'Rig') -> None:
        """Read `other`'s cameras instead of subscribing (stages: one set, every stage)."""
        self._serve(other.input, owns=False)

    def _serve(self, camera_input: Optional[CameraSetInput], owns: bool) -> None:
        """Start serving from `camera_input`, counting anew."""
        self.reset_counters()
        self.consecutive.streak = 0     # sets before a pause are not in a row with those after
        self.input, self.owns_input = camera_input, owns

    def unsubscribe(self) -> None:
        if self.input is not None and self.owns_input:
            self.input.close()

    def reset_counters(self) -> None:
        self.counts: Dict[str, int] = collections.Counter()
        self.convert_latency = Window()
        self.resize_latency = Window()
        self.publishing_latency = Window()
        self.publish_latency = Window()
        self.last_result: Optional[RewardResult] = None
        self.last_error: Optional[str] = None      # the last set's output was not finite

    # ---- one result ---------------------------------------------------------------------------

    def publish(self, result: RewardResult, messages: Sequence[Any], images: Dict[str, Any],
                frame_id: str, class_names: Sequence[str], debug_image_rate: float,
                threshold: float, convert_s: float, resize_s: float) -> None:
        """Every output of one classified set; `frame_id` '' = the newest image's."""
        publishing = time.perf_counter()
        frame_id = frame_id or classification.newest_frame_id(messages)
        self.reward_pub.publish(Float32(data=result.reward))
        self.success_pub.publish(Bool(data=result.success))
        self.probability_pub.publish(Float32(data=result.probability))
        if self.class_pub is not None:
            self.class_pub.publish(String(data=class_names[result.winner]))
            self.confidence_pub.publish(Float32(data=result.class_probabilities[result.winner]))
        if self.classification_pub is not None:
            self.classification_pub.publish(classification.classification_message(
                result.stamp_ns, frame_id, result.probability,
                tuple(zip(class_names, result.class_probabilities))))
        self._publish_debug_image(images, result, frame_id, debug_image_rate, threshold)
        if self.review is not None and result.success:
            self.review.keep(images)
        age = age_s(self.node.get_clock().now().nanoseconds, result.stamp_ns)
        if age is not None:
            self.publish_latency.add(age)
        self.publishing_latency.add(time.perf_counter() - publishing)
        self.last_error = None
        self.counts['sets_published'] += 1
        self.input.sets_used.tick()
        self.last_result = result
        self.convert_latency.add(convert_s)
        self.resize_latency.add(resize_s)

    def not_finite(self, error: Exception) -> None:
        """A set whose output was NaN or inf: nothing published; diagnostics ERROR until the
        next set of this rig is published."""
        self.counts['non_finite_outputs'] += 1
        self.last_error = f'not publishing: {error}'
        self.node.get_logger().error(f'{self.label()}{self.last_error}',
                                     throttle_duration_sec=2.0)

    def _publish_debug_image(self, images: Dict[str, Any], result: RewardResult,
                             frame_id: str, rate: float, threshold: float) -> None:
        """Only while someone subscribes, at most `rate` per second: nothing is drawn or
        sent otherwise (one subscription count per set)."""
        if rate <= 0 or self.debug_image_pub.get_subscription_count() == 0:
            return
        now = time.monotonic()
        if now - self._last_debug_image < 1.0 / rate:
            return
        self._last_debug_image = now
        view = model_view(images, tuple(c.key for c in self.cameras), result.probability,
                          threshold, result.success, result.stamp_ns)
        msg = Image(**rgb_to_msg(view))
        write_stamp(msg.header.stamp, result.stamp_ns)
        msg.header.frame_id = frame_id
        self.debug_image_pub.publish(msg)
        self.counts['debug_images'] += 1

    # ---- diagnostics ----------------------------------------------------------------------------

    def label(self) -> str:
        """'' for the node's own rig, else 'rig left: ' (or 'stage grasp: ') before a log
        line."""
        return f'{self.role} {self.name}: ' if self.name else ''

    def status(self, camera_timeout: float) -> Optional[Tuple[Level, str]]:
        """What is wrong with this rig's cameras, outputs or review folder, or None."""
        if self.last_error:
            return DiagnosticStatus.ERROR, f'{self.label()}processing failing: {self.last_error}'
        wrong_types = self.input.topic_problems()
        if wrong_types:
            return DiagnosticStatus.ERROR, f'{self.label()}wrong message type: ' + \
                '; '.join(wrong_types)
        silent = self.input.silence(camera_timeout)
        if silent:
            return DiagnosticStatus.WARN, f'{self.label()}{silent}'
        stalled = self.input.stall_reason(max(camera_timeout, 2.0))
        if stalled:
            return DiagnosticStatus.WARN, f'{self.label()}{stalled}'
        if self.review is not None and self.review.last_error:
            return DiagnosticStatus.WARN, (f'{self.label()}review folder failing: '
                                           f'{self.review.last_error}')
        cropped_wrong = self.input.frame_sizes.problem()
        if cropped_wrong:
            return DiagnosticStatus.WARN, f'{self.label()}{cropped_wrong}'
        return None

    def diagnostic_values(self) -> Dict[str, str]:
        values = {
            **({self.role: self.name} if self.name else {}),
            **(self.input.diagnostic_values() if self.input else {}),
            'sets above threshold in a row': str(self.consecutive.streak),
            'sets published': str(self.counts['sets_published']),
            'debug images published': str(self.counts['debug_images']),
            'non-finite outputs': str(self.counts['non_finite_outputs']),
            **({} if self.review is None else {
                'review sets kept': str(self.review.kept),
                'review sets dropped': str(self.review.dropped),
                'review write failures': str(self.review.write_failures)}),
        }
        if self.last_result is not None:
            values['last set stamp (ns)'] = str(self.last_result.stamp_ns)
            values['last probability'] = f'{self.last_result.probability:.4f}'
        return values

    def latency_windows(self, inference: Window) -> List[Tuple[str, Window]]:
        """A set's latency budget, in order: each camera's frame arriving, waiting for the
        set's other frames, behind the previous inference, then the node's own stages
        (`inference`: the node's, one batch for every rig waiting)."""
        arrival = [] if self.input is None else [
            *((f'{camera.key} arrival', window) for camera, window in
              zip(self.input.cameras, self.input.arrival_latency)),
            ('sync wait', self.input.sync_wait), ('transport', self.input.transport_latency),
            ('mailbox wait', self.input.mailbox.waits)]
        return arrival + [('convert', self.convert_latency),
                          ('crop/resize', self.resize_latency),
                          ('inference', inference),
                          ('publishing', self.publishing_latency),
                          ('stamp to publish', self.publish_latency)]
