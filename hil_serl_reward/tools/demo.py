"""hil_serl_demo: camera simulator + reward node on this machine, then a summary.

Starts `camera_sim` and `classifier_node` as separate processes (as a launch file would),
listens to reward / success / probability and /diagnostics over DDS for a bounded time,
stops both and prints what a user wants to see. No camera, GPU or launch package needed.
"""
import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, Float32

from hil_serl_reward.model.xla_flags import PREALLOCATE
from hil_serl_reward.pipeline.stamps import stamp_to_ns
from hil_serl_reward.ros.dds import LOOPBACK_PROFILE, config_dir, profile_env
from hil_serl_reward.ros.params_file import NODE_NAME, read_node_parameters

SPARKS = ' ▁▂▃▄▅▆▇█'


class Monitor:
    """Collects the node's outputs, timestamped on arrival."""

    def __init__(self) -> None:
        self.node = rclpy.create_node('hil_serl_demo_monitor')
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.probabilities: List[tuple] = []
        self.rewards: List[float] = []
        self.successes: List[bool] = []
        self.labels: List[tuple] = []
        self.diagnostics: Dict[str, str] = {}
        self.diagnostics_stamp_ns = 0   # when the node took them (its counters' time)
        self.level: Optional[bytes] = None
        self.node.create_subscription(
            Float32, 'probability', lambda m: self.probabilities.append((time.monotonic(), m.data)),
            qos)
        self.node.create_subscription(Float32, 'reward', lambda m: self.rewards.append(m.data), qos)
        self.node.create_subscription(Bool, 'success', lambda m: self.successes.append(m.data), qos)
        self.node.create_subscription(
            Bool, 'scene_success', lambda m: self.labels.append((time.monotonic(), m.data)), qos)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, qos)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(f'/{NODE_NAME}:'):
                self.diagnostics = {kv.key: kv.value for kv in status.values}
                self.diagnostics['status'] = status.message
                self.diagnostics_stamp_ns = stamp_to_ns(msg.header.stamp)
                self.level = status.level


def start(module: str, params_file: Path, overrides: List[str], env: Dict[str, str],
          log: Path, namespace: str = '') -> subprocess.Popen:
    args = [sys.executable, '-m', f'hil_serl_reward.ros.{module}', '--ros-args',
            '--params-file', str(params_file)]
    for override in overrides:
        args += ['-p', override]
    if namespace:
        args += ['-r', f'__ns:={namespace}']
    return subprocess.Popen(args, env=env, stdout=log.open('w'), stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def settle_counts(monitor: Monitor, executor: SingleThreadedExecutor,
                  cameras: subprocess.Popen) -> None:
    """Stops the cameras and waits for the node's diagnostics of a moment after their last
    set: the node's counters (published at 1 Hz) then count every set whose reward this
    monitor received, not a second fewer."""
    stop(cameras)
    settled_ns = monitor.node.get_clock().now().nanoseconds + 300_000_000   # last set done
    deadline = time.monotonic() + 5.0
    while monitor.diagnostics_stamp_ns < settled_ns and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)


def sparkline(values: List[float]) -> str:
    return ''.join(SPARKS[min(len(SPARKS) - 1, int(v * (len(SPARKS) - 1) + 0.5))] for v in values)


def summary(monitor: Monitor, started: float, model: str, status: Optional[str]) -> str:
    """`status`: the node's while the cameras streamed (its counters are read after)."""
    d = monitor.diagnostics
    per_second: Dict[int, List[float]] = {}
    for arrival, p in monitor.probabilities:
        if arrival < started:
            continue
        per_second.setdefault(int(arrival - started), []).append(p)
    seconds = sorted(per_second)
    means = [sum(per_second[s]) / len(per_second[s]) for s in seconds]
    cameras = [k[:-len(' images')] for k in d if k.endswith(' images')]
    lines = [
        '',
        '=== hil_serl_reward demo summary ===',
        f'classifier:            {model}',
        f"node status:           {status or 'no diagnostics received'}",
        *(f"camera {c}: {d.get(c + ' images', '?')} images at {d.get(c + ' rate (Hz)', '?')} Hz, "
          f"{d.get(c + ' rejected', '?')} rejected" for c in cameras),
        f"sets synchronised:     {d.get('sets synchronised', '?')}",
        f"sets published:        {d.get('sets published', '?')}",
        f"sets dropped (mailbox, newest kept): {d.get('sets dropped by mailbox', '?')}",
        f'rewards received:      {len(monitor.rewards)} '
        f'({sum(1 for r in monitor.rewards if r > 0.5)} with reward 1.0, '
        f'{sum(monitor.successes)} success=true)',
        f"inference latency:     p50 {d.get('inference latency p50 (ms)', '-')} ms, "
        f"p95 {d.get('inference latency p95 (ms)', '-')} ms",
        f"stamp-to-publish:      p50 {d.get('stamp to publish latency p50 (ms)', '-')} ms, "
        f"p95 {d.get('stamp to publish latency p95 (ms)', '-')} ms",
        f"synchroniser:          {d.get('synchroniser', '?')}",
        f"model:                 device {d.get('device', '?')}, "
        f"convolutions {d.get('convolutions', '?')}",
        f"runtime:               XLA_FLAGS '{d.get('xla flags', '?')}', "
        f"{PREALLOCATE}={d.get('xla preallocate', '?')}, GIL switch interval "
        f"{d.get('gil switch interval (ms)', '?')} ms, malloc {d.get('malloc', '?')}",
        f"keep cpus awake:       {d.get('keep cpus awake', '?')}",
        'probability per second (mean):',
        f'  {sparkline(means)}',
        '  ' + ' '.join(f'{m:.2f}' for m in means),
    ]
    if monitor.labels:
        lines.append(f"scene ground truth: success {sum(lab for _, lab in monitor.labels)} of "
                     f"{len(monitor.labels)} frames")
    return '\n'.join(lines)


def train_demo_classifier(params_file: Path, folder: Path, samples: int, steps: int) -> Path:
    """Record -> train as a user would, on the simulator's scenes: labelled camera sets
    (same crops as the node) written as classifier_data, then train_classifier."""
    from hil_serl_reward.data.classifier_data import ClassifierDataWriter, transition
    from hil_serl_reward.data.scenes import labelled_samples
    from hil_serl_reward.pipeline.preprocessing import parse_crop
    from hil_serl_reward.tools import train_classifier
    node = read_node_parameters(params_file)
    sim = read_node_parameters(params_file, 'camera_sim')
    keys = list(node['image_keys'])
    crops = {k: parse_crop(node.get(f'cameras.{k}.crop', '')) for k in keys}
    images, labels = labelled_samples(keys, samples, seed=0, width=int(sim.get('width', 640)),
                                      height=int(sim.get('height', 480)), crops=crops)
    data = folder / 'classifier_data'
    writer = ClassifierDataWriter(data, 'demo', flush_every=len(labels) + 1)
    for i, label in enumerate(labels):
        writer.add(transition({k: images[k][i] for k in keys}, {}), bool(label))
    writer.flush()
    checkpoint = folder / 'classifier_ckpt'
    code = train_classifier.main([
        '--data', str(data), '--image-keys', *keys, '--random-init', '--steps', str(steps),
        '--batch-per-class', '16', '--learning-rate', '1e-3', '--eval-every', str(steps),
        '--output', str(checkpoint), '--params-file', str(params_file)])
    if code != 0:
        raise RuntimeError('training the demo classifier failed')
    return checkpoint


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='hil_serl_demo', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--duration', type=float, default=20.0,
                        help='seconds to run after the first reward (default 20)')
    parser.add_argument('--checkpoint', default='',
                        help='classifier_ckpt/ to serve; default: an untrained classifier')
    parser.add_argument('--train', action='store_true',
                        help='without --checkpoint: first train a classifier on the '
                             'simulator\'s scenes (about a minute) and serve that')
    parser.add_argument('--train-samples', type=int, default=300)
    parser.add_argument('--train-steps', type=int, default=40)
    parser.add_argument('--params-file', type=Path, default=config_dir() / 'demo.yaml')
    parser.add_argument('--rate', type=float, default=15.0, help='camera rate (Hz)')
    parser.add_argument('--startup-timeout', type=float, default=90.0)
    parser.add_argument('--logs', type=Path, default=Path('log/demo'),
                        help='folder for the two processes\' output')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    os.environ.update(profile_env(config_dir() / LOOPBACK_PROFILE))
    env = dict(os.environ)
    args.logs.mkdir(parents=True, exist_ok=True)
    if args.checkpoint:
        model = f'checkpoint {args.checkpoint}'
    elif args.train:
        print('hil_serl_demo: training a classifier on simulated scenes first '
              '(random-init backbone: no ImageNet weights on this machine)', flush=True)
        args.checkpoint = str(train_demo_classifier(args.params_file, args.logs,
                                                    args.train_samples, args.train_steps))
        model = (f'classifier trained just now on {args.train_samples} simulated scenes '
                 f'({args.checkpoint}); success = red disc inside the green square')
    else:
        model = ('UNTRAINED, randomly initialised classifier (no --checkpoint or --train): '
                 'the pipeline is real, its rewards are meaningless')
    print(f'hil_serl_demo: {model}', flush=True)
    node_overrides = ([f'checkpoint_path:={args.checkpoint}', 'random_init:=false']
                      if args.checkpoint else [])
    processes = [
        start('camera_sim', args.params_file, [f'rate:={args.rate}'], env,
              args.logs / 'camera_sim.log'),
        start('classifier_node', args.params_file, node_overrides, env,
              args.logs / 'classifier_node.log'),
    ]
    rclpy.init()
    monitor = Monitor()
    executor = SingleThreadedExecutor()
    executor.add_node(monitor.node)
    try:
        deadline = time.monotonic() + args.startup_timeout
        print('hil_serl_demo: waiting for the first reward (JAX compiles the model first)...',
              flush=True)
        while not monitor.rewards and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if any(p.poll() is not None for p in processes):
                break
        if not monitor.rewards:
            dead = [p.args[2] for p in processes if p.poll() is not None]
            exited = '; exited: ' + ', '.join(dead) if dead else ''
            print(f'hil_serl_demo: no reward arrived{exited}; see {args.logs}/*.log',
                  file=sys.stderr)
            return 1
        started = time.monotonic()
        print(f'hil_serl_demo: rewards are flowing; running {args.duration:g} s', flush=True)
        while time.monotonic() - started < args.duration:
            executor.spin_once(timeout_sec=0.1)
        streaming = monitor.diagnostics.get('status')
        settle_counts(monitor, executor, processes[0])
        print(summary(monitor, started, model, streaming))
        return 0
    finally:
        for process in processes:
            stop(process)
        monitor.node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
