"""A gymnasium wrapper that takes the reward from a reward node in another process.

A drop-in for hil-serl's `MultiCameraBinaryRewardClassifierWrapper(env, reward_classifier_func,
target_hz)` with the same step semantics (reward from the classifier, `done = done or reward`,
`info['succeed']`, `target_hz` pacing), except that the success probability comes over DDS from
`classifier_node`, for the camera set that belongs to the observation just returned, never for
an older one. Two ways for the frames to reach the node:

- the env's cameras are ROS topics the node subscribes to (`image_topics=None`): the wrapper
  waits for the first set stamped at or after the observation's capture time, which is
  `capture_stamp(obs, info)` (default: `info['capture_stamp_ns']` when the env reports it,
  else the ROS time at which `env.step` returned, which no frame of the observation can be
  later than);
- the env reads its cameras itself, as hil-serl's Franka env does (`image_topics={key: topic}`):
  the wrapper publishes the observation's images (the env's 128x128 crops) on the node's
  camera topics as one set and takes the result of exactly that set
  (remote_classifier.RemoteClassifier: published again, under a newer stamp, every
  `republish_after` seconds until one is classified; several actors on one node never see
  each other's results). With an empty crop the node classifies those pixels unchanged: the
  reward equals hil-serl's in-process call on the same observation.

Stamps and waits run on the client's ROS clock: with a simulator or a bag publishing /clock
(the reward node on `use_sim_time`), give `use_sim_time=True`.

`reward_func(probability, obs)` decides the reward; its value passes unchanged (a shaped float
reward stays a float). Left out, the rule is hil-serl's `int(p > threshold)` in float32;
`None` gives 0, as upstream's wrapper does without a function. hil-serl's one-argument
`reward_func(obs)` is refused at construction, before the env has moved.

On timeout: `on_timeout='raise'` raises ClassificationTimeout; `'zero'` gives reward 0 with
`info['reward_timeout'] = True`. A stale reward is never returned. gymnasium is an optional
dependency (`pip install hil_serl_reward[rl]`); this module needs it, the node does not.
The wrapper takes binary results, and n-way ones with `reward_func=ClassFlip(...)`: egg_flip's
rule, as hil-serl's EggClassifierWrapper decides it (hil-serl's own wrapper also runs
unchanged with `remote_classifier.load_classifier_func`).
"""
import inspect
import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import gymnasium as gym
import numpy as np

from hil_serl_reward.client import ClassificationClient, ClassificationTimeout
from hil_serl_reward.pipeline.decision import above_threshold
from hil_serl_reward.remote_classifier import RemoteClassifier
from hil_serl_reward.ros.classification import ClassificationResult

RewardFunc = Callable[[float, Any], Any]
CaptureStamp = Callable[[Any, Dict[str, Any]], Optional[int]]
ON_TIMEOUT = ('raise', 'zero')
CAPTURE_STAMP_KEY = 'capture_stamp_ns'


def threshold_reward(threshold: float) -> RewardFunc:
    """hil-serl's rule, `int(sigmoid(logit) > threshold)` compared in float32 as upstream
    does, on the node's probability."""
    def reward(probability: float, obs: Any) -> int:
        return int(above_threshold(probability, threshold))
    return reward


THRESHOLD_RULE = object()      # reward_func's default: threshold_reward(threshold)


def check_reward_func(reward_func: Any) -> None:
    """At construction, before any env.step: hil-serl's own `reward_func(obs)` (around
    `classifier(obs)`) would fail with a TypeError at the first step, after the env moved."""
    if reward_func is None:
        return
    try:
        signature = inspect.signature(reward_func)
    except (TypeError, ValueError):
        return                                      # a builtin: cannot tell, trust it
    try:
        signature.bind(0.5, {})
    except TypeError:
        raise TypeError(
            f'reward_func{signature} does not take (probability, obs): this wrapper gives it '
            f"the reward node's success probability and the observation, e.g. "
            f'`lambda p, obs: int(p > 0.85 and obs["state"][0, 0] > 0.4)`; hil-serl\'s '
            f'one-argument reward_func(obs) calls classifier(obs), which runs in the node '
            f'here') from None


def ask_to_restart(class_name: str) -> None:
    """ClassFlip's default when an episode starts in neither class, as upstream asks."""
    input(f"The episode starts in class '{class_name}' (e.g. the egg is lost): set the scene "
          f"up again and press Enter... ")


class ClassFlip:
    """egg_flip's reward on an n-way node, as hil-serl's EggClassifierWrapper decides it.

    At reset the episode's class is the winning class (argmax of the node's softmax scores);
    when it is neither of `between`, `restart(class_name)` runs (default: ask a person, as
    upstream does) and the env is reset again. A step is rewarded 1 (and ends the episode)
    when its winning class, with a score >= `confidence` (compared as upstream, in float64),
    is the other one of `between`. Like upstream, the winning class is appended to
    `obs['state']` at reset and at every step (`append_class_to_state`). Classes are given by
    index or by the node's class names (`class_names`).
    """

    def __init__(self, between: Sequence[Union[int, str]] = (0, 1), confidence: float = 0.9,
                 append_class_to_state: bool = True,
                 restart: Callable[[str], None] = ask_to_restart) -> None:
        if len(between) != 2 or between[0] == between[1]:
            raise ValueError(f'ClassFlip needs two different classes, got {list(between)}')
        self.between = tuple(between)
        self.confidence = confidence
        self.append_class_to_state = append_class_to_state
        self.restart = restart
        self.initial: Optional[int] = None

    def classes(self, result: ClassificationResult) -> Tuple[int, int]:
        """`between` as indices into the node's classes."""
        names = [name for name, _ in result.scores]
        if not result.n_way:
            raise ValueError('ClassFlip needs an n-way reward node (class_names); this one '
                             'publishes binary results')
        indices = []
        for wanted in self.between:
            index = names.index(wanted) if wanted in names else wanted
            if not isinstance(index, int) or not 0 <= index < len(names):
                raise ValueError(f'ClassFlip class {wanted!r} is not one of the node\'s '
                                 f'classes {names} (by name or index)')
            indices.append(index)
        return indices[0], indices[1]

    @staticmethod
    def winner(result: ClassificationResult) -> Tuple[int, float]:
        scores = [score for _, score in result.scores]
        index = int(np.argmax(scores))
        return index, scores[index]

    def _record(self, obs: Any, index: int) -> None:
        if self.append_class_to_state:
            obs['state'] = np.concatenate((obs['state'], np.array([index])[None]), -1)

    def start(self, result: ClassificationResult, obs: Any) -> bool:
        """The reset observation's class; False (after `restart`) when it is neither of
        `between`: the caller resets the env again."""
        self.initial, _ = self.winner(result)
        if self.initial not in self.classes(result):
            self.restart(result.scores[self.initial][0])
            return False
        self._record(obs, self.initial)
        return True

    def __call__(self, result: ClassificationResult, obs: Any) -> int:
        index, score = self.winner(result)
        flipped = (float(score) >= self.confidence
                   and {index, self.initial} == set(self.classes(result)))
        self._record(obs, index)
        return int(flipped)


def reported_capture_stamp(obs: Any, info: Dict[str, Any]) -> Optional[int]:
    return info.get(CAPTURE_STAMP_KEY)


class RemoteRewardClassifierWrapper(gym.Wrapper):
    def __init__(self, env: gym.Env, reward_func: Any = THRESHOLD_RULE,
                 target_hz: Optional[float] = None, *, threshold: float = 0.5,
                 client: Optional[ClassificationClient] = None,
                 image_topics: Optional[Mapping[str, str]] = None,
                 capture_stamp: CaptureStamp = reported_capture_stamp,
                 timeout: float = 1.0, on_timeout: str = 'raise',
                 republish_after: float = 0.5, use_sim_time: bool = False) -> None:
        check_reward_func(reward_func if reward_func is not THRESHOLD_RULE else None)
        super().__init__(env)
        if on_timeout not in ON_TIMEOUT:
            raise ValueError(f'on_timeout must be one of {ON_TIMEOUT}, got {on_timeout!r}')
        self.reward_func: Optional[RewardFunc] = (
            threshold_reward(threshold) if reward_func is THRESHOLD_RULE else reward_func)
        self.target_hz = target_hz
        self.timeout = timeout
        self.on_timeout = on_timeout
        self.capture_stamp = capture_stamp
        self._owns_client = client is None
        self.client = client or ClassificationClient(use_sim_time=use_sim_time)
        self.remote = (RemoteClassifier(self.client, image_topics, timeout, republish_after)
                       if image_topics else None)

    def _now_ns(self) -> int:
        return self.client.node.get_clock().now().nanoseconds

    def wait_for_node(self, timeout: float = 10.0) -> None:
        """Until DDS discovery has matched the reward node on every topic this wrapper uses:
        images published before that would be lost."""
        if self.remote is not None:
            self.remote.wait_for_node(timeout)
            return
        deadline = time.monotonic() + timeout
        while not (self.client.publisher_count() > 0 and self._now_ns() > 0):  # sim: /clock
            if time.monotonic() > deadline:
                raise TimeoutError(f'no reward node matched within {timeout:g} s: '
                                   f'{self.client.publisher_count()} classification '
                                   f'publishers, clock {self._now_ns()} ns')
            time.sleep(0.01)

    def await_result(self, obs: Any, info: Dict[str, Any]) -> ClassificationResult:
        """This step's result, or ClassificationTimeout after `timeout` seconds."""
        if self.remote is not None:
            return self.remote.classify(obs)
        reported = self.capture_stamp(obs, info)
        stamp = self._now_ns() if reported is None else int(reported)
        return self.client.wait_for(stamp, self.timeout)

    def compute_reward(self, obs: Any, info: Dict[str, Any]) -> Any:
        """reward_func's value, unchanged (a shaped float stays a float); 0 without a
        reward_func, as upstream's wrapper gives (no result is awaited then)."""
        if self.reward_func is None:
            return 0
        try:
            result = self.await_result(obs, info)
        except ClassificationTimeout:
            if self.on_timeout == 'raise':
                raise
            info.update(reward_timeout=True, reward_probability=None, reward_stamp_ns=None)
            return 0
        info.update(reward_timeout=False, reward_probability=result.probability,
                    reward_stamp_ns=result.stamp_ns)
        if isinstance(self.reward_func, ClassFlip):
            return self.reward_func(result, obs)
        if result.n_way:
            raise ValueError(
                f'the reward node serves an n-way classifier ({[n for n, _ in result.scores]}):'
                f' give reward_func=ClassFlip(...) (egg_flip\'s rule), or run hil-serl\'s own '
                f'wrapper with hil_serl_reward.remote_classifier.load_classifier_func')
        return self.reward_func(result.probability, obs)

    def step(self, action: Any) -> Tuple[Any, float, bool, bool, Dict[str, Any]]:
        start = time.time()
        obs, _, done, truncated, info = self.env.step(action)
        stepped = time.monotonic()
        reward = self.compute_reward(obs, info)
        info['reward_latency_s'] = time.monotonic() - stepped     # what the wrapper adds
        done = bool(done or reward)
        info['succeed'] = bool(reward)
        if self.target_hz is not None:
            time.sleep(max(0.0, 1.0 / self.target_hz - (time.time() - start)))
        return obs, reward, done, truncated, info

    def reset(self, **kwargs: Any) -> Tuple[Any, Dict[str, Any]]:
        """With ClassFlip, the reset observation is classified too (a timeout raises: the
        episode has no class to start from) and the env is reset until it starts in one of
        the rule's classes, as upstream's egg wrapper does."""
        obs, info = self.env.reset(**kwargs)
        if isinstance(self.reward_func, ClassFlip):
            while not self.reward_func.start(self.await_result(obs, info), obs):
                obs, info = self.env.reset()
        info['succeed'] = False
        return obs, info

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()
        if self._owns_client:
            self.client.close()
        super().close()
