"""hil-serl's reward wrappers as its code behaves (serl_robot_infra/franka_env/envs/wrappers.py
and examples/experiments/egg_flip/wrapper.py, rail-berkeley/hil-serl 5d02aed), written here
from that behaviour for the drop-in tests: each takes `classifier(obs) -> logits` and decides
in JAX's float32, as upstream does. Not part of the package."""
import time

import gymnasium as gym
import jax
import numpy as np


class MultiCameraBinaryRewardClassifierWrapper(gym.Wrapper):
    """reward = reward_classifier_func(obs) (0 without one); done = done or reward."""

    def __init__(self, env, reward_classifier_func, target_hz=None):
        super().__init__(env)
        self.reward_classifier_func = reward_classifier_func
        self.target_hz = target_hz

    def step(self, action):
        start = time.time()
        obs, _, done, truncated, info = self.env.step(action)
        reward = self.reward_classifier_func(obs) if self.reward_classifier_func else 0
        info['succeed'] = bool(reward)
        if self.target_hz is not None:
            time.sleep(max(0, 1 / self.target_hz - (time.time() - start)))
        return obs, reward, done or reward, truncated, info

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        info['succeed'] = False
        return obs, info


class MultiStageBinaryRewardClassifierWrapper(gym.Wrapper):
    """One classifier per stage; a stage latches the first time sigmoid(logit) >= 0.75 and is
    not asked again; reward = stages newly latched this step; done once all are latched."""

    def __init__(self, env, reward_classifier_func):
        super().__init__(env)
        self.reward_classifier_func = reward_classifier_func
        self.received = [False] * len(reward_classifier_func)

    def step(self, action):
        obs, _, done, truncated, info = self.env.step(action)
        reward = 0
        for i, classifier in enumerate(self.reward_classifier_func):
            if not self.received[i] and jax.nn.sigmoid(classifier(obs).item()) >= 0.75:
                self.received[i] = True
                reward += 1
        info['succeed'] = all(self.received)
        return obs, reward, done or all(self.received), truncated, info

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.received = [False] * len(self.reward_classifier_func)
        info['succeed'] = False
        return obs, info


class EggClassifierWrapper(gym.Wrapper):
    """3-way egg classifier: the class is argmax(softmax(logits)) and counts once its
    probability reaches `confidence_threshold`; reward 1 and done when the class flipped
    (0 <-> 1) from the class at reset; class 2 (egg lost) at reset asks a person to put the
    egg back; the class is appended to obs['state']."""

    def __init__(self, env, reward_classifier_func, confidence_threshold=0.9):
        super().__init__(env)
        self.reward_classifier_func = reward_classifier_func
        self.confidence_threshold = confidence_threshold

    def classify(self, obs):
        probabilities = jax.nn.softmax(self.reward_classifier_func(obs))
        return int(np.argmax(probabilities)), float(np.max(probabilities))

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.egg_initial, _ = self.classify(obs)
        while self.egg_initial == 2:
            input('We lost the egg!!! Put egg back and press Enter... ')
            obs, info = self.env.reset()
            self.egg_initial, _ = self.classify(obs)
        obs['state'] = np.concatenate((obs['state'], np.array([self.egg_initial])[None]), -1)
        info['succeed'] = 0
        return obs, info

    def step(self, action):
        obs, reward, done, truncated, info = self.env.step(action)
        egg_class, confidence = self.classify(obs)
        info['succeed'] = 0
        if confidence >= self.confidence_threshold and {egg_class, self.egg_initial} == {0, 1}:
            reward, done, info['succeed'] = 1, True, 1
        obs['state'] = np.concatenate((obs['state'], np.array([egg_class])[None]), -1)
        return obs, reward, done, truncated, info
