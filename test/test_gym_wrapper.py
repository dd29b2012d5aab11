"""The gymnasium wrapper against the real reward node over DDS: each step's reward comes from
that step's frames (checked through stamps and against the classifier in-process), never from
an earlier step, also with a slow node; timeouts only once the node is gone."""
import time

import numpy as np
import pytest
from rclpy.time import Time

from hil_serl_reward.data.scenes import SyntheticScene
from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.pipeline.preprocessing import Crop, parse_crop, preprocess
from rl_side import RL_SIDE_MARKS, Env, gym
from ros_harness import SlowClassifier, image_msg
from test_classifier_node import CROPS, KEYS, camera_params, expected_probability

pytestmark = RL_SIDE_MARKS

STEP_S = 0.3          # scene time between steps: the disc moves, so every step's frames differ


class CameraEnv(Env):
    """A robot env whose cameras are ROS topics: each step publishes one frame per camera
    (the simulator's scene) stamped now and returns them, with that stamp in the info."""

    def __init__(self, bench, width=160, height=120):
        self.bench = bench
        self.scene = SyntheticScene(width, height)
        self.observation_space = gym.spaces.Dict({k: gym.spaces.Box(
            0, 255, (height, width, 3), np.uint8) for k in KEYS})
        self.action_space = gym.spaces.Discrete(1)
        self.steps = 0

    def observe(self):
        return {k: self.scene.render(k, self.steps * STEP_S) for k in KEYS}

    def reset(self, seed=None, options=None):
        self.steps = 0
        return self.observe(), {}

    def step(self, action):
        self.steps += 1
        obs = self.observe()
        stamp = self.bench.probe.get_clock().now().nanoseconds
        for key in KEYS:
            self.bench.publish(key, image_msg(obs[key], stamp))
        return obs, 0.0, False, False, {'capture_stamp_ns': stamp}


class CroppingEnv(Env):
    """hil-serl's Franka env in miniature: it reads its cameras itself and returns each
    camera's 128x128 crop with a leading time axis; nothing is published."""

    def __init__(self):
        self.scene = SyntheticScene(320, 240)
        self.observation_space = gym.spaces.Dict({k: gym.spaces.Box(
            0, 255, (1, 128, 128, 3), np.uint8) for k in KEYS})
        self.action_space = gym.spaces.Discrete(1)
        self.steps = 0

    def observe(self):
        crops = {'wrist_1': parse_crop('20:-20, 40:-40'), 'front': Crop()}
        return {k: preprocess(self.scene.render(k, self.steps * STEP_S), crops[k])[None]
                for k in KEYS}

    def reset(self, seed=None, options=None):
        self.steps = 0
        return self.observe(), {}

    def step(self, action):
        self.steps += 1
        return self.observe(), 0.0, False, False, {}


def wrapped(env, bench, **kwargs):
    from hil_serl_reward.client import ClassificationClient
    from hil_serl_reward.gym_wrapper import RemoteRewardClassifierWrapper
    return RemoteRewardClassifierWrapper(env, client=ClassificationClient(node=bench.probe),
                                         **kwargs)


def in_process_probabilities(classifier, env, steps):
    """What the classifier gives for each step's frames, computed here."""
    env.reset()
    return [expected_probability(classifier, env.step(0)[0], CROPS) for _ in range(steps)]


def run_steps(bench, node, classifier, steps=6, **kwargs):
    env = CameraEnv(bench)
    expected = in_process_probabilities(classifier, CameraEnv(bench), steps)
    threshold = float(np.median(expected))
    wrapper = wrapped(env, bench, threshold=threshold, timeout=10.0, **kwargs)
    wrapper.wait_for_node()
    _, info = wrapper.reset()
    assert info['succeed'] is False
    for i in range(steps):
        _, reward, done, _, info = wrapper.step(0)
        assert info['reward_stamp_ns'] == info['capture_stamp_ns']       # this step's frames
        assert info['reward_probability'] == pytest.approx(expected[i], abs=1e-6)
        assert reward == int(expected[i] > threshold)
        assert done is bool(reward) and info['succeed'] is bool(reward)
        assert info['reward_timeout'] is False
    return wrapper


@pytest.fixture
def classifier(checkpoint_for):
    return RewardClassifier.from_checkpoint(checkpoint_for(KEYS), device='cpu')


def test_each_step_is_rewarded_for_its_own_frames(bench, checkpoint_for, classifier):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0, **camera_params(CROPS))
    bench.connect(list(KEYS))
    run_steps(bench, node, classifier, steps=8)


def test_a_slow_node_still_gives_each_step_its_own_reward(bench, classifier):
    """At 0.25 s per inference the previous step's result is what `latest` would give when
    the step returns; waiting on the stamp gives this step's."""
    slow = SlowClassifier(classifier, delay=0.25)
    bench.start_node(loader=lambda path: slow, checkpoint_path='unused', image_keys=list(KEYS),
                     camera_timeout=60.0, **camera_params(CROPS))
    bench.connect(list(KEYS))
    run_steps(bench, bench.node, classifier, steps=4)


def test_timeouts_come_only_once_the_node_is_stopped(bench, checkpoint_for, classifier):
    from hil_serl_reward.client import ClassificationTimeout
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0, **camera_params(CROPS))
    bench.connect(list(KEYS))
    wrapper = run_steps(bench, node, classifier, steps=3, on_timeout='zero')
    bench.remove(node)
    bench.node = None
    wrapper.timeout = 0.5
    _, reward, done, _, info = wrapper.step(0)
    assert (reward, done, info['succeed'], info['reward_timeout']) == (0, False, False, True)
    assert info['reward_probability'] is None
    wrapper.on_timeout = 'raise'
    with pytest.raises(ClassificationTimeout):
        wrapper.step(0)


def test_target_hz_paces_the_step(bench, checkpoint_for, classifier):
    bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                     camera_timeout=60.0, **camera_params(CROPS))
    bench.connect(list(KEYS))
    wrapper = wrapped(CameraEnv(bench), bench, target_hz=4.0, timeout=10.0)
    wrapper.wait_for_node()
    wrapper.reset()
    start = time.time()
    wrapper.step(0)
    assert time.time() - start >= 0.25


def test_published_observations_get_hil_serls_in_process_reward(bench, checkpoint_for,
                                                                classifier):
    """Way (b): the env crops its own frames; the wrapper publishes them and the node (no
    crop) classifies them unchanged: the same probability as the in-process call, to the bit.
    The client here has a context and node of its own, as in an actor with no ROS."""
    from hil_serl_reward.client import ClassificationClient
    from hil_serl_reward.gym_wrapper import RemoteRewardClassifierWrapper
    bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                     camera_timeout=60.0, sync_slop=1e-9)
    bench.connect(list(KEYS))
    ns = bench.namespace
    wrapper = RemoteRewardClassifierWrapper(
        CroppingEnv(), threshold=0.5, timeout=10.0,
        client=ClassificationClient(topic=f'{ns}/classification'),
        image_topics={k: f'{ns}/{k}/image_raw' for k in KEYS})
    try:
        wrapper.wait_for_node()
        wrapper.reset()
        for _ in range(4):
            obs, reward, _, _, info = wrapper.step(0)
            prediction = classifier.predict({k: obs[k][0] for k in KEYS})
            assert info['reward_probability'] == float(prediction.probabilities[0])
            assert reward == int(float(prediction.probabilities[0]) > 0.5)
    finally:
        wrapper.close()


def test_the_nodes_preprocessing_is_the_identity_on_128x128_frames():
    frame = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    assert np.array_equal(preprocess(frame, Crop()), frame)


def test_observation_images_must_be_rgb_uint8():
    from hil_serl_reward.remote_classifier import camera_frame
    assert camera_frame(np.zeros((1, 1, 128, 128, 3), np.uint8)).shape == (128, 128, 3)
    with pytest.raises(ValueError, match=r'\(2, 128, 128, 3\) uint8'):
        camera_frame(np.zeros((2, 128, 128, 3), np.uint8))
    with pytest.raises(ValueError, match='float32'):
        camera_frame(np.zeros((128, 128, 3), np.float32))


def test_published_observations_are_sent_again_until_one_is_classified(bench, checkpoint_for,
                                                                       classifier):
    """The node only subscribes a second after the step began (as when DDS loses the first
    set): the observation goes out again every republish_after seconds, and the step gets the
    result of a later publication of the same images, not a timeout."""
    import threading
    from hil_serl_reward.client import ClassificationClient
    from hil_serl_reward.gym_wrapper import RemoteRewardClassifierWrapper
    from test_lifecycle import Lifecycle
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0, autostart=False, sync_slop=1e-9)
    lifecycle = Lifecycle(bench, node)
    assert lifecycle.transition(1)                                   # configure
    ns = bench.namespace
    wrapper = RemoteRewardClassifierWrapper(
        CroppingEnv(), timeout=20.0, republish_after=0.3,
        client=ClassificationClient(topic=f'{ns}/classification'),
        image_topics={k: f'{ns}/{k}/image_raw' for k in KEYS})
    activate = threading.Timer(1.0, lambda: lifecycle.transition(3))  # activate, later
    try:
        wrapper.reset()
        started = bench.probe.get_clock().now().nanoseconds
        activate.start()
        obs, _, _, _, info = wrapper.step(0)
        assert info['reward_timeout'] is False
        assert info['reward_stamp_ns'] - started > 0.9e9            # a later publication
        prediction = classifier.predict({k: obs[k][0] for k in KEYS})
        assert info['reward_probability'] == float(prediction.probabilities[0])
    finally:
        activate.cancel()
        wrapper.close()


class SimulatorClock:
    """/clock at 1000 s + the time since start, 100 times a second, as a simulator does."""

    def __init__(self, bench):
        import threading
        from rosgraph_msgs.msg import Clock
        self.publisher = bench.probe.create_publisher(Clock, '/clock', 10)
        self.start = time.monotonic()
        self.stop = threading.Event()

        def tick():
            while not self.stop.wait(0.01):
                sim = int(1000e9 + (time.monotonic() - self.start) * 1e9)
                self.publisher.publish(Clock(clock=Time(nanoseconds=sim).to_msg()))
        self.thread = threading.Thread(target=tick, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join()


@pytest.mark.parametrize('use_sim_time', [True, False])
def test_on_a_simulator_clock_the_wrapper_runs_on_it(bench, checkpoint_for, use_sim_time):
    """The node on use_sim_time: a wrapper on the same clock gets its rewards, stamped in
    simulated time; one on system time stamps its images 1.8e9 s ahead of the node's clock
    (refused), and its timeout says why."""
    from hil_serl_reward.client import ClassificationClient, ClassificationTimeout
    from hil_serl_reward.gym_wrapper import RemoteRewardClassifierWrapper
    clock = SimulatorClock(bench)
    bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                     camera_timeout=60.0, use_sim_time=True, sync_slop=1e-9)
    ns = bench.namespace
    wrapper = RemoteRewardClassifierWrapper(
        CroppingEnv(), timeout=3.0, republish_after=0.5, image_topics={
            k: f'{ns}/{k}/image_raw' for k in KEYS},
        client=ClassificationClient(topic=f'{ns}/classification', use_sim_time=use_sim_time))
    try:
        wrapper.wait_for_node()
        wrapper.reset()
        if use_sim_time:
            _, _, _, _, info = wrapper.step(0)
            assert 1000e9 < info['reward_stamp_ns'] < 1100e9
        else:
            with pytest.raises(ClassificationTimeout,
                               match='/clock is published but this client runs on system '
                                     'time: give use_sim_time=True'):
                wrapper.step(0)
    finally:
        wrapper.close()
        clock.close()


# ---- hil-serl's reward_func semantics ------------------------------------------------------

def test_hil_serls_one_argument_reward_func_is_refused_before_the_env_moves():
    """Upstream's `reward_func(obs)` raised TypeError at the first step, after env.step."""
    from hil_serl_reward.gym_wrapper import RemoteRewardClassifierWrapper
    env = CroppingEnv()

    def reward_func(obs):
        return 0

    with pytest.raises(TypeError, match=r'reward_func\(obs\) does not take \(probability, obs\)'):
        RemoteRewardClassifierWrapper(env, reward_func)


def test_the_default_rule_compares_in_float32_as_upstream():
    """hil-serl compares a float32 sigmoid with 0.85: float32(0.85) is not above it (in
    float64 it is)."""
    from hil_serl_reward.gym_wrapper import threshold_reward
    at_threshold = float(np.float32(0.85))
    assert at_threshold > 0.85                                     # what float64 said
    assert threshold_reward(0.85)(at_threshold, None) == 0
    assert threshold_reward(0.85)(float(np.nextafter(np.float32(0.85), np.float32(1))),
                                  None) == 1


def test_shaped_rewards_pass_unchanged_and_none_gives_zero(bench, checkpoint_for, classifier):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0, **camera_params(CROPS))
    bench.connect(list(KEYS))
    shaped = wrapped(CameraEnv(bench), bench, reward_func=lambda p, obs: 0.25 * p,
                     timeout=10.0)
    none = wrapped(CameraEnv(bench), bench, reward_func=None)
    try:
        shaped.wait_for_node()
        shaped.reset()
        _, reward, done, _, info = shaped.step(0)
        assert reward == 0.25 * info['reward_probability'] and isinstance(reward, float)
        assert done is bool(reward)
        none.reset()
        _, reward, done, _, info = none.step(0)
        assert reward == 0 and done is False and info['succeed'] is False
        assert 'reward_probability' not in info                     # nothing was awaited
    finally:
        shaped.close()
        none.close()
    assert node.serving


def n_way_result(*scores, names=('egg_0', 'egg_1', 'egg_lost')):
    from hil_serl_reward.ros.classification import ClassificationResult
    return ClassificationResult(1, 'actor', None, 0.0, tuple(zip(names, scores)))


def test_class_flip_decides_as_hil_serls_egg_wrapper():
    """Upstream's rule: the reset class, then reward only on the other one of the pair with a
    score >= confidence (float64 compare); the winning class appended to obs['state']."""
    from hil_serl_reward.gym_wrapper import ClassFlip
    rule = ClassFlip()
    obs = {'state': np.zeros((1, 2), np.float32)}
    assert rule.start(n_way_result(0.2, 0.7, 0.1), obs) and rule.initial == 1
    assert obs['state'].tolist() == [[0, 0, 1]]
    for scores, reward in (((0.95, 0.05, 0.0), 1),           # egg_0 from egg_1: a flip
                           ((0.89, 0.11, 0.0), 0),           # below the confidence
                           ((0.9, 0.1, 0.0), 0),      # float32 0.9 < 0.9 in float64, as upstream
                           ((0.0, 1.0, 0.0), 0),              # still egg_1
                           ((0.0, 0.0, 1.0), 0)):             # egg_lost is no flip
        obs = {'state': np.zeros((1, 2), np.float32)}
        assert rule(n_way_result(*[np.float32(s) for s in scores]), obs) == reward, scores
        assert obs['state'][0, -1] == int(np.argmax(scores))
    restarts = []
    lost = ClassFlip(('egg_0', 1), restart=restarts.append, append_class_to_state=False)
    obs = {'state': np.zeros((1, 2), np.float32)}
    assert not lost.start(n_way_result(0.1, 0.1, 0.8), obs) and restarts == ['egg_lost']
    assert obs['state'].shape == (1, 2)


@pytest.mark.parametrize('between, scores, message', [
    ((0, 0), (0.5, 0.5, 0.0), r'two different classes, got \[0, 0\]'),
    (('egg_0', 'egg_2'), (0.5, 0.5, 0.0), r"class 'egg_2' is not one of the node's classes"),
    ((0, 3), (0.5, 0.5, 0.0), r"class 3 is not one of the node's classes"),
])
def test_class_flip_names_a_class_the_node_does_not_have(between, scores, message):
    from hil_serl_reward.gym_wrapper import ClassFlip
    with pytest.raises(ValueError, match=message):
        ClassFlip(between).start(n_way_result(*scores), {'state': np.zeros((1, 1))})


def test_class_flip_refuses_a_binary_node():
    from hil_serl_reward.gym_wrapper import ClassFlip
    from hil_serl_reward.ros.classification import ClassificationResult
    binary = ClassificationResult(1, '', 0.7, 0.0, (('success', 0.7), ('failure', 0.3)))
    with pytest.raises(ValueError, match='needs an n-way reward node'):
        ClassFlip().start(binary, {'state': np.zeros((1, 1))})
