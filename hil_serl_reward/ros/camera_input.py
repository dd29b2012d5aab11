"""Camera input shared by the reward node and the data recorder: parameters, admission of
each image, synchronisation and the newest-set mailbox.

Both nodes must see exactly the same camera sets, so they share this rather than copies.
"""
import collections
import difflib
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter as RosParameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from hil_serl_reward.pipeline.camera_set import Camera, FrameSizes, set_stamp
from hil_serl_reward.pipeline.image_conversion import ImageError, describe, validate
from hil_serl_reward.pipeline.mailbox import LatestMailbox
from hil_serl_reward.pipeline.set_timing import ArrivalTimes
from hil_serl_reward.pipeline.stamps import age_s, stamp_to_ns
from hil_serl_reward.pipeline.stats import RateMeter, Window
from hil_serl_reward.pipeline.sync_slop import SlopPolicy
from hil_serl_reward.ros import config
from hil_serl_reward.ros.camera_graph import said_once, why_silent, wrong_type
from hil_serl_reward.ros.camera_sync import CameraSetSubscriber


# A stamp this far behind its camera's previous one is a new timeline (`ros2 bag play --loop`,
# a reset clock), not a late frame: far more than any reordering on the way.
TIME_RESET_NS = 1_000_000_000
# A refused image is logged at most this often per camera and reason (counted every time).
REJECTION_LOG_PERIOD_S = 2.0


class StartupError(RuntimeError):
    """Configuration or checkpoint problem found at start-up; the node does not start."""


def declare_parameters(node: Node, parameters: Sequence[config.Parameter]) -> Dict[str, Any]:
    """Declare `parameters` plus cameras.<key>.* for every image key and <stage>.* for every
    stage; validate them all."""
    def declare(name: str, default: Any, p: config.Parameter) -> Any:
        descriptor = ParameterDescriptor(description=p.description, read_only=p.read_only)
        if isinstance(p.validate, config.Range):
            if isinstance(default, int) and not isinstance(default, bool):
                descriptor.integer_range = [IntegerRange(
                    from_value=int(p.validate.low), to_value=int(p.validate.high), step=1)]
            else:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(p.validate.low), to_value=float(p.validate.high), step=0.0)]
        if default == []:       # rclpy types an empty list as a byte array: say strings
            value = node.declare_parameter(name, RosParameter.Type.STRING_ARRAY, descriptor).value
            return [] if value is None else list(value)
        return node.declare_parameter(name, default, descriptor).value

    values: Dict[str, Any] = {}
    try:
        for p in parameters:
            values[p.name] = declare(p.name, p.default, p)
        problem = config.check({name: values[name] for name in ('image_keys', 'stages')
                                if name in values})
        if problem:
            raise StartupError(f'invalid parameters: {problem[0]}')
        for key in values['image_keys']:
            defaults = config.camera_defaults(key)
            for p in config.CAMERA_PARAMETERS:
                name = config.camera_parameter_name(key, p.name)
                values[name] = declare(name, defaults[p.name], p)
        for stage in values.get('stages', ()):      # a stage's threshold: the node's unless set
            defaults = {'checkpoint_path': '', 'threshold': values['threshold']}
            for p in config.STAGE_PARAMETERS:
                name = config.stage_parameter_name(stage, p.name)
                values[name] = declare(name, defaults[p.name], p)
    except rclpy.exceptions.InvalidParameterTypeException as exc:
        raise StartupError(f'parameter of the wrong type: {exc}') from exc
    except rclpy.exceptions.InvalidParameterValueException as exc:
        raise StartupError(f'invalid parameters: {exc}') from exc
    problems = config.check(values)
    if problems:
        raise StartupError('invalid parameters: ' + '; '.join(problems))
    _check_unknown(node, values)
    return values


def _check_unknown(node: Node, declared: Dict[str, Any]) -> None:
    """Parameters given for this node that it does not declare: rclpy ignores them, so a
    misspelt `thresold: 0.9` would leave the default threshold serving without a word."""
    given = node._parameter_overrides       # the params files' and -p values for this node
    unknown = [name for name in given if name not in declared and name != 'use_sim_time'
               and not name.startswith('qos_overrides.')
               and not config.is_driver_parameter(name, declared['image_keys'])]
    if not unknown:
        return
    named = []
    stage_fields = {p.name for p in config.STAGE_PARAMETERS}
    for name in unknown:
        stage, _, field = name.partition('.')
        if field in stage_fields:
            named.append(f"'{name}' (stage {stage!r} is not in stages "
                         f"{list(declared.get('stages', []))})")
            continue
        nearest = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
        named.append(f"'{name}'" + (f" (did you mean '{nearest[0]}'?)" if nearest else ''))
    message = f"unknown parameters: {', '.join(named)}"
    if declared['reject_unknown_parameters']:
        raise StartupError(f'{message}; set reject_unknown_parameters:=false to only warn')
    node.get_logger().warning(f'{message}: ignored')


def camera_qos(reliability: str) -> QoSProfile:
    """Sensor-data QoS (best effort, keep last 5), or the same with reliable delivery."""
    return QoSProfile(history=qos_profile_sensor_data.history,
                      depth=qos_profile_sensor_data.depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliability == 'reliable'
                      else qos_profile_sensor_data.reliability,
                      durability=qos_profile_sensor_data.durability)


class CameraSetInput:
    """Subscribes to the cameras; complete, monotonic sets land in `mailbox` as
    (messages, set stamp). Bad images are skipped, logged (throttled) and counted."""

    def __init__(self, node: Node, values: Dict[str, Any], cameras: Sequence[Camera],
                 mailbox: Optional[LatestMailbox] = None) -> None:
        """`mailbox`: where sets are posted (a node serving several rigs gives each rig one,
        made with one shared condition); a new one by default."""
        self._node = node
        self.cameras = list(cameras)
        self.mailbox: LatestMailbox = mailbox or LatestMailbox()
        self.counts: Dict[str, int] = collections.Counter()
        self.rejected = {c.key: collections.Counter() for c in self.cameras}
        self.rates = [RateMeter() for _ in self.cameras]
        self._recent_rejections: Dict[str, Tuple[str, float]] = {}
        self._last_set_refusal: Optional[Tuple[str, float]] = None   # problem, when
        self.sets_used = RateMeter()      # sets classified (or recorded) after preprocessing
        self.frame_sizes = FrameSizes(self.cameras)     # of the sets used, by their user
        self._rejection_logged: Dict[Tuple[str, str], float] = {}
        self._last_stamp: List[Optional[int]] = [None] * len(self.cameras)
        self._last_set_stamp: Optional[int] = None
        self._max_ahead_ns = int(float(values['max_stamp_ahead']) * 1e9)
        self._max_pixels = int(values['max_image_pixels'])
        self.transport_latency = Window()          # camera stamp -> set complete
        self.arrival_latency = [Window() for _ in self.cameras]     # stamp -> frame here
        self.sync_wait = Window()           # the set's first frame here -> set complete
        self._arrivals = ArrivalTimes(len(self.cameras), int(values['sync_queue_size']) + 2)
        self.set_rate = RateMeter()
        self.slop = SlopPolicy(float(values['sync_slop']), len(self.cameras))
        self._started = time.monotonic()
        self.subscriber = CameraSetSubscriber(
            node, [c.topic for c in self.cameras], [message_type(c) for c in self.cameras],
            camera_qos(values['qos_reliability']), int(values['sync_queue_size']),
            self.slop.slop_s, self._accept, self._on_set,
            lambda msg: stamp_to_ns(msg.header.stamp),
            callback_group=MutuallyExclusiveCallbackGroup())

    def close(self) -> None:
        """Unsubscribe from the cameras (a deactivated node receives nothing)."""
        self.subscriber.close()

    def topic(self, camera: Camera) -> str:
        return self._node.resolve_topic_name(camera.topic)

    def reject(self, key: str, reason: str, detail: str) -> None:
        """Counts a refused image or set of camera `key` and logs `detail`, throttled per
        camera and reason: rclpy's throttle is per line of code, so one camera refused at
        frame rate would keep another's different problem out of the log."""
        self.rejected[key][reason] += 1
        now = time.monotonic()
        self._recent_rejections[key] = (detail, now)
        if now - self._rejection_logged.get((key, reason), float('-inf')) >= \
                REJECTION_LOG_PERIOD_S:
            self._rejection_logged[key, reason] = now
            self._node.get_logger().warning(detail)

    def refuse_set(self, key: str, reason: str, problem: str, label: str = '') -> None:
        """A synchronised set refused at preprocessing because of camera `key`'s frame (its
        conversion, its crop; `problem` names the camera and the image): counted and logged
        as by `reject`, and remembered, as no image check explains why sets come but none is
        used. `label`: the rig's, before the log line."""
        self.reject(key, reason, f'{label}skipping camera set: {problem}')
        self._last_set_refusal = (problem, time.monotonic())

    def _refuse(self, index: int, reason: str, detail: str, msg: Any) -> bool:
        camera = self.cameras[index]
        self.reject(camera.key, reason, f'skipping image from {self.topic(camera)} '
                                        f'({describe(msg)}): {detail}')
        return False

    def _accept(self, index: int, msg: Any) -> bool:
        self.rates[index].tick()
        try:
            size = validate(msg, self._max_pixels)
        except ImageError as exc:
            return self._refuse(index, exc.reason, str(exc), msg)
        wanted = self.cameras[index].frame_size
        if wanted is not None and size != wanted:
            return self._refuse(index, 'frame_size', self._size_problem(index, size), msg)
        stamp = stamp_to_ns(msg.header.stamp)
        if stamp == 0:
            return self._refuse(index, 'zero_stamp', 'header stamp is zero: the driver does '
                                'not stamp its images, so they cannot be synchronised', msg)
        now = self._node.get_clock().now().nanoseconds
        if now and stamp - now > self._max_ahead_ns:    # now = 0: sim time before /clock
            return self._refuse(index, 'stamp_ahead',
                                f'stamp {stamp} ns is {(stamp - now) / 1e9:.3f} s ahead of this '
                                f'node\'s clock (max_stamp_ahead '
                                f'{self._max_ahead_ns / 1e9:g} s): is the camera\'s clock '
                                f'synchronised?', msg)
        last = self._last_stamp[index]
        if last is not None and last - stamp > TIME_RESET_NS:
            self._start_over(index, last - stamp)
        elif last is not None and stamp <= last:
            return self._refuse(index, 'stamp_backwards',
                                f'stamp {stamp} ns is not after the previous {last} ns', msg)
        self._last_stamp[index] = stamp
        age = age_s(now, stamp)
        if age is not None:
            self.arrival_latency[index].add(age)
        self._arrivals.arrived(index, stamp)
        change = self.slop.observe(index, stamp)
        if change is not None:
            self.subscriber.set_slop(self.slop.slop_s)
            if self.slop.auto:             # one severity per line of code (rclpy raises)
                self._node.get_logger().info(change)
            else:
                self._node.get_logger().warning(change)
        return True

    def _size_problem(self, index: int, size: Tuple[int, int]) -> str:
        """Why a frame of `size` is refused: both sizes, and the two ways to make them one."""
        camera = self.cameras[index]
        width, height = camera.frame_size
        crop = f"its crop '{camera.crop.text}'" if camera.crop.text else 'the checkpoint'
        return (f'a {size[0]}x{size[1]} frame; cameras.{camera.key}.frame_size is '
                f'{width}x{height}, the size {crop} is written for: set the camera to '
                f'{width}x{height} (driver block width and height), or give frame_size and the '
                f'crop for this size')

    def _start_over(self, index: int, jump_ns: int) -> None:
        """Forget every stamp seen so far, here and in the synchroniser: otherwise each
        frame of the new timeline would be refused as older than the last one, for ever."""
        self.counts['time_resets'] += 1
        self._node.get_logger().warning(
            f'{self.topic(self.cameras[index])}: stamps jumped back {jump_ns / 1e9:.1f} s (a '
            'looping bag or a reset clock): starting over on the new stamps')
        self._last_stamp = [None] * len(self.cameras)
        self._last_set_stamp = None
        self._arrivals.clear()
        self.slop.reset()
        self.subscriber.reset()

    def _on_set(self, messages: Tuple[Any, ...], stamps: Tuple[int, ...]) -> None:
        stamp = set_stamp(stamps)
        if self._last_set_stamp is not None and stamp <= self._last_set_stamp:
            self.counts['sets_out_of_order'] += 1
            return
        self._last_set_stamp = stamp
        self.counts['sets_synchronised'] += 1
        self.set_rate.tick()
        age = age_s(self._node.get_clock().now().nanoseconds, stamp)
        if age is not None:
            self.transport_latency.add(age)
        waited = self._arrivals.sync_wait(stamps)
        if waited is not None:
            self.sync_wait.add(waited)
        self.mailbox.post((messages, stamp))

    def topic_problems(self) -> List[str]:
        """Cameras whose topic carries another message type than the one subscribed (DDS
        never matches them: the node would wait for ever), from the ROS graph."""
        problems = []
        for camera in self.cameras:
            publishers = self._node.get_publishers_info_by_topic(self.topic(camera))
            problem = wrong_type(self.topic(camera), publishers, message_type(camera))
            if problem:
                other = Image if camera.compressed else CompressedImage
                hint = (f' (set cameras.{camera.key}.compressed: '
                        f"{'false' if camera.compressed else 'true'})"
                        if not wrong_type(self.topic(camera), publishers, other) else '')
                problems.append(f"camera '{camera.key}': {problem}{hint}")
        return problems

    def silence(self, timeout_s: float) -> Optional[str]:
        """'cameras silent: ...' naming each camera that sent nothing for `timeout_s` (since
        subscribing, or since its last image) and what the ROS graph says of its topic;
        None while every camera sends."""
        silent = []                                     # (key, state, reason, message type)
        for index, (camera, meter) in enumerate(zip(self.cameras, self.rates)):
            quiet = meter.silent_for()
            waited = time.monotonic() - self._started if quiet is None else quiet
            if waited > timeout_s:
                state = 'no images yet' if quiet is None else f'silent {quiet:.1f} s'
                silent.append((camera.key, state, self._why_silent(index, quiet is not None),
                               message_type(camera)))
        if not silent:
            return None
        reasons, hint = said_once([s[2] for s in silent], [s[3] for s in silent])
        return 'cameras silent: ' + ', '.join(f'{key} ({state}: {reason})' for (key, state, _, _),
                                              reason in zip(silent, reasons)) + hint

    def _why_silent(self, index: int, received: bool) -> str:
        camera = self.cameras[index]
        return why_silent(self._node, camera.key, self.subscriber.camera_subscriptions[index],
                          received, [self.topic(c) for c in self.cameras if c is not camera],
                          self._node.resolve_topic_name(camera.topic, only_expand=True))

    def stall_reason(self, after_s: float, use: str = 'classified') -> Optional[str]:
        """Why no set was built, or none `use`d (classified, recorded), for `after_s` seconds
        while every camera sends images, or None."""
        return self._unbuilt_reason(after_s) or self._unused_reason(after_s, use)

    def _unused_reason(self, after_s: float, use: str) -> Optional[str]:
        """Sets are built but none was used for `after_s`: each refused at preprocessing
        (which camera, why), or the worker still busy with an earlier one."""
        now = time.monotonic()
        quiet, built = self.sets_used.silent_for(), self.set_rate.silent_for()
        waited = now - self._started if quiet is None else quiet
        if waited <= after_s or built is None or built > after_s:
            return None
        refusal = self._last_set_refusal
        if refusal is not None and refusal[1] > now - after_s:
            return f'no set {use} for {waited:.1f} s: every set is refused: {refusal[0]}'
        return (f'no set {use} for {waited:.1f} s while {self.set_rate.rate():.1f} sets/s are '
                f'synchronised: the worker has not finished an earlier set')

    def _unbuilt_reason(self, after_s: float) -> Optional[str]:
        """Why no set was built for `after_s` seconds while every camera sends images, or
        None: every image of a camera refused (which check), or frames that never match."""
        quiet = self.set_rate.silent_for()
        waited = time.monotonic() - self._started if quiet is None else quiet
        if waited <= after_s or any(m.silent_for() is None or m.silent_for() > after_s
                                    for m in self.rates):
            return None
        for index, camera in enumerate(self.cameras):
            recent = self._recent_rejections.get(camera.key)
            accepted = self._arrivals.last(index)
            if recent is not None and recent[1] > time.monotonic() - after_s and \
                    (accepted is None or accepted < time.monotonic() - after_s):
                return f"no set for {waited:.1f} s: every image from '{camera.key}' is refused " \
                       f"({recent[0]})"
        rates = ', '.join(f'{c.key} {m.rate():.1f} Hz' for c, m in zip(self.cameras, self.rates))
        return (f'no set for {waited:.1f} s: the cameras stream ({rates}) but no frames match '
                f'within sync_slop {self.slop.slop_s:.4f} s ({self.slop.describe_rates()}); '
                f'are the cameras stamped by one clock?')

    def diagnostic_values(self) -> Dict[str, str]:
        values = {'synchroniser': self.subscriber.backend,
                  'sync slop (s)': f"{self.slop.slop_s:.4f}{' (auto)' if self.slop.auto else ''}",
                  'sets per second': f'{self.set_rate.rate():.2f}',
                  'sets synchronised': str(self.counts['sets_synchronised']),
                  'sets dropped by mailbox': str(self.mailbox.replaced),
                  'sets out of order': str(self.counts['sets_out_of_order']),
                  'time resets': str(self.counts['time_resets'])}
        unmatched = self.subscriber.unmatched
        for index, (camera, meter) in enumerate(zip(self.cameras, self.rates)):
            values[f'{camera.key} rate (Hz)'] = f'{meter.rate():.2f}'
            values[f'{camera.key} images'] = str(meter.count)
            rejected = self.rejected[camera.key]
            values[f'{camera.key} rejected'] = str(sum(rejected.values()))
            for reason, count in sorted(rejected.items()):
                values[f'{camera.key} rejected {reason}'] = str(count)
            if unmatched is not None:
                values[f'{camera.key} unmatched'] = str(unmatched.counts[index])
        return {**values, **self.frame_sizes.diagnostic_values()}


def message_type(camera: Camera) -> type:
    return CompressedImage if camera.compressed else Image
