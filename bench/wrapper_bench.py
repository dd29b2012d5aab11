"""What the gym wrapper adds to an env step: env.step returning to the reward being known, at
hil-serl's 10 Hz and at 30 Hz, both ways the frames can reach the node, next to the classifier
called in-process (what hil-serl's own wrapper pays).

- topics: camera_sim streams 2 x 640x480 @ 30 Hz to classifier_node (demo.yaml crops); the env
  reports no capture stamp, so the wrapper waits for the first set stamped after env.step
  returned (its documented rule): up to one camera period, transport and inference.
- published: the env returns 128x128 crops, the wrapper publishes them and waits for exactly
  that set (node without crops): publishing, transport and inference.
- in_process: RewardClassifier.predict on the two 128x128 crops, called once per step.

The node is untrained (random init): its latency does not depend on the weights. Run it through
scripts/ros_isolated.sh (make bench does). JSON on stdout.

    python bench/wrapper_bench.py [--seconds 10] [--rates 10 30]
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_bench import call_times  # noqa: E402

from hil_serl_reward.client import ClassificationClient  # noqa: E402
from hil_serl_reward.data.scenes import labelled_samples  # noqa: E402
from hil_serl_reward.gym_wrapper import RemoteRewardClassifierWrapper  # noqa: E402
from hil_serl_reward.model.inference import RewardClassifier  # noqa: E402
from hil_serl_reward.model.reward_classifier import ClassifierSpec, init_params  # noqa: E402
from hil_serl_reward.ros.dds import LOOPBACK_PROFILE, config_dir, profile_env  # noqa: E402
from hil_serl_reward.tools.demo import start, stop  # noqa: E402

KEYS = ('wrist_1', 'front')


class StillEnv(gym.Env):
    """An env whose step costs nothing and returns the same 128x128 crops (with hil-serl's
    leading time axis): the wrapper's own cost is all that is measured."""

    def __init__(self, crops: Dict[str, np.ndarray]) -> None:
        self.obs = {k: v[None] for k, v in crops.items()}
        self.observation_space = gym.spaces.Dict({k: gym.spaces.Box(0, 255, v.shape, np.uint8)
                                                  for k, v in self.obs.items()})
        self.action_space = gym.spaces.Discrete(1)

    def reset(self, seed=None, options=None):
        return self.obs, {}

    def step(self, action):
        return self.obs, 0.0, False, False, {}


def summary_ms(values: List[float]) -> Dict[str, float]:
    t = np.asarray(values) * 1e3
    return {'median_ms': round(float(np.median(t)), 2),
            'p95_ms': round(float(np.percentile(t, 95)), 2), 'steps': len(values)}


def wrapper_latencies(wrapper: RemoteRewardClassifierWrapper, rate: float, seconds: float
                      ) -> Dict:
    wrapper.reset()
    wrapper.target_hz = rate
    for _ in range(5):                       # first sets: discovery, caches
        wrapper.step(0)
    latencies, timeouts = [], 0
    for _ in range(int(seconds * rate)):
        _, _, _, _, info = wrapper.step(0)
        timeouts += info['reward_timeout']
        if not info['reward_timeout']:
            latencies.append(info['reward_latency_s'])
    return {**summary_ms(latencies), 'timeouts': timeouts}


def way(name: str, crops: Dict[str, np.ndarray], rates: List[float], seconds: float,
        logs: Path) -> Dict:
    params = config_dir() / 'demo.yaml'
    env = {**os.environ, **profile_env(config_dir() / LOOPBACK_PROFILE)}
    processes = []
    if name == 'topics':
        processes.append(start('camera_sim', params, ['rate:=30.0'], env, logs / 'sim.log'))
        node_overrides = []
        image_topics = None
    else:
        node_overrides = [f"cameras.{k}.crop:=''" for k in KEYS] + ['sync_slop:=1.0e-9']
        image_topics = {k: f'{k}/image_raw' for k in KEYS}
    processes.append(start('classifier_node', params, node_overrides, env,
                           logs / f'node_{name}.log'))
    client = ClassificationClient()
    wrapper = RemoteRewardClassifierWrapper(StillEnv(crops), client=client, timeout=2.0,
                                            on_timeout='zero', image_topics=image_topics)
    try:
        deadline = time.monotonic() + 120.0
        while True:                          # the node compiles; fail fast if it dies
            try:
                wrapper.wait_for_node(timeout=1.0)
                break
            except TimeoutError:
                if processes[-1].poll() is not None or time.monotonic() > deadline:
                    raise
        return {f'{rate:g}_hz': wrapper_latencies(wrapper, rate, seconds) for rate in rates}
    finally:
        wrapper.close()
        for process in processes:
            stop(process)


def in_process(crops: Dict[str, np.ndarray], rates: List[float], seconds: float) -> Dict:
    spec = ClassifierSpec(KEYS)
    classifier = RewardClassifier(spec, init_params(spec), device='cpu')
    classifier.predict(crops)
    return {f'{rate:g}_hz': summary_ms(call_times(lambda: classifier.predict(crops),
                                                  int(seconds * rate), rate))
            for rate in rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--rates', type=float, nargs='+', default=[10.0, 30.0])
    args = parser.parse_args()
    samples, _ = labelled_samples(KEYS, 1)
    crops = {k: samples[k][0] for k in KEYS}
    logs = Path(tempfile.mkdtemp(prefix='hil_serl_wrapper_'))
    results = {'in_process': in_process(crops, args.rates, args.seconds)}
    for name in ('topics', 'published'):
        results[name] = way(name, crops, args.rates, args.seconds, logs)
        print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
    print(json.dumps({'benchmark': 'gym_wrapper', 'logs': str(logs),
                      'step_return_to_reward': results}, indent=2))


if __name__ == '__main__':
    main()
