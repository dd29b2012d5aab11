"""The reward node as hil-serl's `classifier(obs) -> logits`, for RL actors in other processes.

`RemoteClassifier` sends one observation's images (the env's own crops, hil-serl style) to the
reward node on its camera topics, as one camera set under a stamp of its own, and returns the
node's result for exactly that set. `load_classifier_func` has the shape of hil-serl's
`serl_launcher.networks.reward_classifier.load_classifier_func`: hil-serl's config code and
its wrappers (MultiCameraBinaryRewardClassifierWrapper, MultiStageBinaryRewardClassifierWrapper,
the egg-flip EggClassifierWrapper) run unchanged with only that import swapped; the logits come
from the node's published probabilities (ClassificationResult.logits: their log-odds /
log-probabilities, so a rule's decision is the in-process one except within one float32 step
of its threshold).

`load_stage_classifier_funcs` gives hil-serl's MultiStageBinaryRewardClassifierWrapper its
per-stage classifiers from one node serving the stages (`stages`): the wrapper asks each stage
in turn about one observation, and the stages after the first take their results from the set
the first one sent (SentSet) instead of sending it again: one set per step, not one per stage.

Several actors on one node (two rigs, a training and an evaluation actor): each one's sets
carry its own stamps and its own frame_id (`actor_id`), and it takes only results stamped
exactly as one of its sets and carrying its frame_id, so no actor sees another's result. The
node must pair only frames of one set: `sync_slop: 1.0e-9` (identical stamps) in its params
file, as in docs/rl.md; each actor's sets then never mix with another's. Sets that arrive
while the node is busy are dropped by it (newest first) and sent again after
`republish_after` seconds, so a busy node slows actors down but never mixes them up.
"""
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import Image

from hil_serl_reward.client import ClassificationClient, ClassificationTimeout
from hil_serl_reward.pipeline.image_conversion import rgb_to_msg
from hil_serl_reward.ros.classification import ClassificationResult

IMAGE_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
# The largest `sync_slop` of a node that actors publish to: its sets are then one actor's one
# observation (an actor's images share one stamp; two actors' stamps differ).
MAX_SYNC_SLOP_S = 1e-6
# How long the first call waits for one publisher's name and for its parameter service (both
# come within a second of discovery on a working graph; a node that cannot be asked is named
# in a warning instead of holding the first call for the whole discovery budget).
ASK_TIMEOUT_S = 5.0
UNKNOWN_NODE = '_UNKNOWN_'      # rmw's node name until the node's graph message arrives


def camera_frame(image: Any) -> np.ndarray:
    """An observation image (H, W, 3), possibly with leading length-1 axes (hil-serl's time
    axis, a batch axis), as the (H, W, 3) uint8 frame to publish."""
    frame = np.asarray(image)
    while frame.ndim > 3 and frame.shape[0] == 1:
        frame = frame[0]
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f'expected an (H, W, 3) uint8 RGB image, optionally with leading '
                         f'axes of length 1; got {np.shape(image)} {np.asarray(image).dtype}')
    return np.ascontiguousarray(frame)


class SentSet:
    """The observation an actor sent last (copies of its frames: an env may reuse its image
    buffers), the stamps it went under and when, shared by the stage classifiers of one
    node: a stage asked about the same pixels within `max_age_s` waits for that set's result
    instead of sending it again (an older set may predate a checkpoint reload)."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._frames: Optional[Dict[str, np.ndarray]] = None
        self._stamps: List[int] = []
        self._sent_at = float('-inf')

    def stamps_for(self, frames: Mapping[str, np.ndarray]) -> Optional[List[int]]:
        """The stamps (a list a later send under a newer stamp appends to) of the set with
        these pixels, if it was the last one sent and recently; else None."""
        with self._lock:
            if (self._frames is None or time.monotonic() - self._sent_at > self.max_age_s
                    or self._frames.keys() != frames.keys()
                    or not all(np.array_equal(self._frames[key], frame)
                               for key, frame in frames.items())):
                return None
            return self._stamps

    def sent(self, frames: Mapping[str, np.ndarray], stamps: List[int]) -> None:
        with self._lock:
            self._frames = {key: frame.copy() for key, frame in frames.items()}
            self._stamps = stamps
            self._sent_at = time.monotonic()


class RemoteClassifier:
    """Publishes observations on the node's camera topics and awaits their results."""

    def __init__(self, client: ClassificationClient, image_topics: Mapping[str, str],
                 timeout: float = 1.0, republish_after: float = 0.5,
                 actor_id: Optional[str] = None, sent: Optional[SentSet] = None) -> None:
        """`actor_id` and `sent`: shared by the classifiers of one node's stages."""
        if not image_topics:
            raise ValueError('image_topics is empty: name the node camera topic of each '
                             'image key, e.g. {"wrist_1": "wrist_1/image_raw"}')
        self.client = client
        self.timeout = timeout
        self.republish_after = republish_after
        self.actor_id = actor_id or f'actor_{uuid.uuid4().hex[:12]}'
        self._stamp_lock = threading.Lock()
        self._last_stamp = 0
        self.node_checked = False       # wait_for_node found the node and its sync_slop right
        self.sent = sent
        self.publishers = {key: client.node.create_publisher(Image, topic, IMAGE_QOS)
                           for key, topic in image_topics.items()}

    def _fresh_stamp(self) -> int:
        """Now on the client's clock, and always later than this actor's previous set."""
        with self._stamp_lock:
            self._last_stamp = max(self.client.node.get_clock().now().nanoseconds,
                                   self._last_stamp + 1)
            return self._last_stamp

    def matched(self) -> bool:
        """DDS has matched the node on the results topic and every camera topic."""
        return (self.client.publisher_count() > 0
                and all(p.get_subscription_count() for p in self.publishers.values())
                and self.client.node.get_clock().now().nanoseconds > 0)  # sim: /clock came

    def wait_for_node(self, timeout: float = 10.0) -> None:
        """Until DDS discovery has matched the reward node on every topic used (images
        published before that would be lost), then checks that the node pairs only frames
        of one set (`sync_slop`)."""
        deadline = time.monotonic() + timeout
        while not self.matched():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f'no reward node matched within {timeout:g} s: '
                    f'{self.client.publisher_count()} classification publishers, image '
                    f'subscribers {[p.get_subscription_count() for p in self.publishers.values()]}')
            time.sleep(0.01)
        self.check_sync_slop(max(0.5, deadline - time.monotonic()))
        self.node_checked = True

    def check_sync_slop(self, timeout: float) -> None:
        """ValueError when a reward node on the results topic would pair frames of different
        sets: with a slop above 1 us (or 0 = auto, sized for free-running cameras), one
        observation's wrist image could be classified with another's front image, and the
        result would carry this actor's stamp. A publisher without `sync_slop` (a bag player,
        a relay: not a reward node) is left to the client's warning about other publishers.
        Each wait is bounded by ASK_TIMEOUT_S: a node that cannot be asked (its name not yet
        known here, its parameter services off or not answering) is named in a warning, and
        the first call goes on instead of spending the whole discovery budget on it."""
        ask = min(timeout, ASK_TIMEOUT_S)
        end = time.monotonic() + ask
        names = self.client.publishers()
        while any(UNKNOWN_NODE in name for name in names) and time.monotonic() < end:
            time.sleep(0.02)        # DDS reports an endpoint before its node's name
            names = self.client.publishers()
        unchecked = []
        for name in names:
            if UNKNOWN_NODE in name:
                unchecked.append(f'a node whose name did not reach this process within '
                                 f'{ask:g} s')
                continue
            slop = self._ask_sync_slop(name, ask)
            if slop is None:
                unchecked.append(f'{name} (its parameter service did not answer within '
                                 f'{ask:g} s)')
            elif slop.type == ParameterType.PARAMETER_DOUBLE and not (
                    0.0 < slop.double_value <= MAX_SYNC_SLOP_S):
                value = slop.double_value
                raise ValueError(
                    f'{name} pairs frames up to {"auto" if value == 0 else f"{value:g} s"} '
                    f"apart (sync_slop): an observation sent by an actor could be classified "
                    f"with another's images. Give that node sync_slop: 1.0e-9 (identical "
                    f'stamps) in its params file (docs/rl.md)')
        if unchecked:
            self.client.node.get_logger().warning(
                f'could not check the sync_slop of {"; ".join(dict.fromkeys(unchecked))}, '
                f'publishing on {self.client.subscription.topic_name}: a reward node there '
                f"must have sync_slop: 1.0e-9 (docs/rl.md), or one observation's images can be "
                f"classified with another's")

    def _ask_sync_slop(self, name: str, timeout: float) -> Optional[ParameterValue]:
        """The node's `sync_slop` as its parameter service gives it (type NOT_SET on a node
        without one), or None when the service is not there or does not answer in time."""
        node = self.client.node
        end = time.monotonic() + timeout
        service = node.create_client(GetParameters, f'{name}/get_parameters')
        try:
            if not service.wait_for_service(timeout_sec=timeout):
                return None
            future = service.call_async(GetParameters.Request(names=['sync_slop']))
            while not future.done() and time.monotonic() < end:
                time.sleep(0.005)
            if not future.done():
                return None
            values = future.result().values        # none (or NOT_SET) for an undeclared one
            return values[0] if values else ParameterValue()
        finally:
            node.destroy_client(service)

    def publish(self, frames: Mapping[str, np.ndarray]) -> int:
        """Publishes an observation's frames (camera_frame) as one camera set; returns its
        stamp."""
        stamp = self._fresh_stamp()
        header_stamp = Time(nanoseconds=stamp).to_msg()
        for key, publisher in self.publishers.items():
            msg = Image(**rgb_to_msg(frames[key]))
            msg.header.stamp = header_stamp
            msg.header.frame_id = self.actor_id
            publisher.publish(msg)
        return stamp

    def classify(self, obs: Mapping[str, Any]) -> ClassificationResult:
        """This observation's result, or ClassificationTimeout after `timeout` seconds. The
        observation goes out again, under a newer stamp, every `republish_after` seconds until
        one of its sets is classified: DDS can lose a message even after discovery matched
        both ends, and a busy node drops all but the newest set. With `sent` (a node's
        stages), an observation whose pixels were the last sent waits for that set."""
        frames = {key: camera_frame(obs[key]) for key in self.publishers}
        stamps = self.sent.stamps_for(frames) if self.sent else None
        if stamps is None:
            stamps = [self.publish(frames)]
            if self.sent:
                self.sent.sent(frames, stamps)
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                return self.client.wait_for_one_of(
                    stamps, max(0.0, min(self.republish_after, remaining)),
                    frame_id=self.actor_id)
            except ClassificationTimeout:
                if remaining <= self.republish_after:
                    raise ClassificationTimeout(stamps[0], self.timeout, self.client.latest(),
                                                self.client.clock_hint()) from None
                stamps.append(self.publish(frames))

    def close(self) -> None:
        for publisher in self.publishers.values():
            self.client.node.destroy_publisher(publisher)


def load_classifier_func(key: Any = None, sample: Any = None,
                         image_keys: Sequence[str] = ('wrist_1', 'front'),
                         checkpoint_path: Optional[str] = None, n_way: int = 2, *,
                         image_topics: Optional[Mapping[str, str]] = None,
                         namespace: str = '', timeout: float = 1.0,
                         discovery_timeout: float = 30.0,
                         client: Optional[ClassificationClient] = None,
                         use_sim_time: bool = False) -> Callable[[Dict[str, Any]], np.ndarray]:
    """hil-serl's `load_classifier_func(key, sample, image_keys, checkpoint_path, n_way)`,
    answered by the reward node in `namespace`: returns `classifier(obs) -> logits` (float32;
    binary shape (1,), n-way (n_way,)) for exactly that observation's images.

    `key`, `sample` and `checkpoint_path` are accepted and unused: the node loaded its own
    checkpoint (give the same one in its params file). `image_topics` defaults to
    `<namespace>/<key>/image_raw` per image key; the node's `cameras.<key>.topic` must match
    and its crops be empty (the env's images are already 128x128 crops). The first call waits
    up to `discovery_timeout` seconds for DDS discovery (seconds with several participants on
    a loaded machine) and checks the node's `sync_slop`; each call then waits up to `timeout`
    for its result (ClassificationTimeout). A result of another kind than `n_way` asks for
    (binary for 2, n classes for n) raises ValueError."""
    del key, sample, checkpoint_path
    prefix = namespace.rstrip('/')
    topics = dict(image_topics or {k: f'{prefix}/{k}/image_raw' for k in image_keys})
    own_client = client or ClassificationClient(topic=f'{prefix}/classification' if prefix
                                                else 'classification',
                                                use_sim_time=use_sim_time)
    remote = RemoteClassifier(own_client, topics, timeout=timeout)
    return _answered_by(remote, n_way, discovery_timeout, f'load_classifier_func(n_way={n_way})',
                        f'the node in {namespace or "/"}')


def load_stage_classifier_funcs(stages: Sequence[str],
                                image_keys: Sequence[str] = ('wrist_1', 'front'), *,
                                namespace: str = '',
                                image_topics: Optional[Mapping[str, str]] = None,
                                timeout: float = 1.0, discovery_timeout: float = 30.0,
                                node: Optional[Node] = None, use_sim_time: bool = False
                                ) -> List[Callable[[Dict[str, Any]], np.ndarray]]:
    """hil-serl's list of per-stage `load_classifier_func(...)` for
    MultiStageBinaryRewardClassifierWrapper, answered by the node in `namespace` serving
    `stages` (its `stages` parameter): each stage's `classifier(obs) -> logits` (shape (1,))
    reads `<namespace>/<stage>/classification`; the observation goes to the node's cameras
    (`image_topics`, default `<namespace>/<key>/image_raw`) once, under one actor id, and a
    stage asked about the pixels sent last, within `timeout` seconds, takes its result from
    that set (the classifier is a function of the pixels: the same answer, one set less).
    `node`: an rclpy node of the caller's, spun by the caller, for the results subscriptions
    and image publishers (default: a client node of its own per stage)."""
    prefix = namespace.rstrip('/')
    topics = dict(image_topics or {k: f'{prefix}/{k}/image_raw' for k in image_keys})
    actor_id, sent = f'actor_{uuid.uuid4().hex[:12]}', SentSet(max_age_s=timeout)
    funcs = []
    for stage in stages:
        client = ClassificationClient(node=node, topic=f'{prefix}/{stage}/classification'
                                      if prefix else f'{stage}/classification',
                                      use_sim_time=use_sim_time)
        remote = RemoteClassifier(client, topics, timeout=timeout, actor_id=actor_id, sent=sent)
        funcs.append(_answered_by(remote, 2, discovery_timeout, 'a stage classifier',
                                  f'stage {stage!r} of the node in {namespace or "/"}'))
    return funcs


def _answered_by(remote: RemoteClassifier, n_way: int, discovery_timeout: float, caller: str,
                 node: str) -> Callable[[Dict[str, Any]], np.ndarray]:
    """hil-serl's `classifier(obs) -> logits` through `remote`: the node found (and its
    sync_slop checked) on the first call; an answer of another kind than `n_way` refused."""
    expected = 1 if n_way == 2 else n_way

    def classifier(obs: Dict[str, Any]) -> np.ndarray:
        if not remote.node_checked:
            remote.wait_for_node(timeout=discovery_timeout)
        logits = remote.classify(obs).logits()
        if logits.shape != (expected,):
            raise ValueError(f'{caller} expects '
                             f'{"a binary result" if expected == 1 else f"{n_way} classes"}; '
                             f'{node} answered with {logits.shape[0]}'
                             f' {"logit" if logits.shape[0] == 1 else "classes"}')
        return logits

    classifier.remote = remote          # for close() and the actor id
    return classifier
