"""End-to-end benchmark over DDS on loopback: camera_sim -> classifier_node -> subscriber.

For each camera size and rate, with and without the Fast DDS large-image profile, it runs
the two processes (as make demo does), waits for the first reward, then measures for
--seconds: start-up time (process start to first reward), sets offered by the cameras,
synchronised, published and dropped; the node's
stamp-to-publish latency p50/p95/p99; its and the simulator's CPU use (they share the
machine, as camera drivers do on a robot); and where the time goes (transport, waiting
behind the previous inference,
conversion, crop/resize, inference, publishing; medians from the node's diagnostics).
Each configuration also gets a transport-only run (the simulator into a subscriber in this
process, no node): the stamp-to-arrival floor under the node's numbers.
Run it through scripts/ros_isolated.sh (make bench does). JSON on stdout.

    python bench/e2e_bench.py [--seconds 15] [--configs 640x480@30 1280x720@15]
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import rclpy
from rclpy.executors import Executor, SingleThreadedExecutor
from sensor_msgs.msg import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hil_serl_reward import config  # noqa: E402
from hil_serl_reward.camera_input import camera_qos  # noqa: E402
from hil_serl_reward.dds import (  # noqa: E402
    LOOPBACK_PROFILE, PROFILE_VARIABLES, config_dir, profile_env)
from hil_serl_reward.demo import Monitor, start, stop  # noqa: E402
from hil_serl_reward.malloc_tuning import keep_image_buffers  # noqa: E402
from hil_serl_reward.node_main import make_executor  # noqa: E402
from hil_serl_reward.params_file import read_node_parameters  # noqa: E402
from hil_serl_reward.stamps import stamp_to_ns  # noqa: E402

STAGES = ('transport', 'mailbox wait', 'convert', 'crop/resize', 'inference', 'publishing')


def cpu_seconds(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def number(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float('nan')


def spin_for(executor: Executor, seconds: float,
             until: Callable[[], bool] = lambda: False) -> None:
    """Spins for `seconds`, or less once `until()` holds."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        executor.spin_once(timeout_sec=0.1)


def dds_env(profile: bool) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    if profile:
        env.update(profile_env(config_dir() / LOOPBACK_PROFILE))
    return env


def transport_only(width: int, height: int, rate: float, profile: bool, seconds: float,
                   logs: Path) -> Dict:
    """Camera stamp to arrival in a subscriber here, each frame, with no node running. The
    simulator's stamp jitter is off: the stamp is the moment it starts publishing."""
    params = config_dir() / 'demo.yaml'
    values = config.with_defaults(read_node_parameters(params))
    sim = start('camera_sim', params,
                [f'rate:={rate}', f'width:={width}', f'height:={height}', 'jitter:=0.0'],
                dds_env(profile), logs / f'sim_transport_{width}x{height}_{rate:g}_{profile}.log')
    node = rclpy.create_node('hil_serl_transport_probe')
    latencies: List[float] = []

    def arrived(msg: Image) -> None:
        now = node.get_clock().now().nanoseconds
        latencies.append((now - stamp_to_ns(msg.header.stamp)) / 1e6)

    cameras = config.cameras_from(values)
    for camera in cameras:
        node.create_subscription(Image, camera.topic, arrived,
                                 camera_qos(values['qos_reliability']))
    executor = make_executor()               # as the node's: the floor under its transport
    executor.add_node(node)
    try:
        spin_for(executor, 60, until=lambda: len(latencies) >= 2 * len(cameras))
        spin_for(executor, 2.0)               # settle, as the node's runs do
        first = len(latencies)
        spin_for(executor, seconds)
        window = np.array(latencies[first:])
        result: Dict = {'frames_received': int(window.size),
                        'frames_offered': int(round(seconds * rate * len(cameras)))}
        if window.size:
            result['stamp_to_arrival_ms'] = {
                f'p{q}': round(float(np.percentile(window, q)), 2) for q in (50, 95, 99)}
        return result
    finally:
        stop(sim)
        node.destroy_node()


def run(width: int, height: int, rate: float, profile: bool, seconds: float,
        logs: Path, compile_cache: str, checkpoint: str) -> Dict:
    env = dds_env(profile)
    if compile_cache:
        env.update(JAX_COMPILATION_CACHE_DIR=compile_cache,
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')
    started = time.monotonic()
    params = config_dir() / 'demo.yaml'
    sim = start('camera_sim', params, [f'rate:={rate}', f'width:={width}', f'height:={height}'],
                env, logs / f'sim_{width}x{height}_{rate:g}_{profile}.log')
    overrides = [f'checkpoint_path:={checkpoint}', 'random_init:=false'] if checkpoint else []
    node = start('classifier_node', params, overrides, env,
                 logs / f'node_{width}x{height}_{rate:g}_{profile}.log')
    monitor = Monitor()
    executor = SingleThreadedExecutor()
    executor.add_node(monitor.node)
    result: Dict = {'camera': f'{width}x{height}', 'rate_hz': rate, 'large_image_profile': profile}
    try:
        spin_for(executor, 120, until=lambda: bool(monitor.rewards) or node.poll() is not None)
        if not monitor.rewards:
            result['error'] = 'no reward within 120 s'
            return result
        result['process_start_to_first_reward_s'] = round(time.monotonic() - started, 2)
        result['compile_cache'] = bool(compile_cache)
        spin_for(executor, 2.0)               # settle, then take the baseline
        base = dict(monitor.diagnostics)
        cpu0, sim_cpu0 = cpu_seconds(node.pid), cpu_seconds(sim.pid)
        t0, rewards0 = time.monotonic(), len(monitor.rewards)
        spin_for(executor, seconds)
        wall = time.monotonic() - t0
        cpu = cpu_seconds(node.pid) - cpu0
        sim_cpu = cpu_seconds(sim.pid) - sim_cpu0
        spin_for(executor, 1.2)               # one more diagnostics message
        d = monitor.diagnostics

        def delta(key: str) -> float:
            return number(d.get(key)) - number(base.get(key))

        frames = [delta(f'{k} images') for k in ('wrist_1', 'front')]
        result.update({
            'seconds': round(wall, 1),
            'camera_frames_received': frames,
            'sets_synchronised': delta('sets synchronised'),
            'sets_published': delta('sets published'),
            'sets_dropped_by_mailbox': delta('sets dropped by mailbox'),
            'rewards_received': len(monitor.rewards) - rewards0,
            'camera_rate_hz': [number(d.get(f'{k} rate (Hz)')) for k in ('wrist_1', 'front')],
            'node_cpu_cores': round(cpu / wall, 2),
            'camera_sim_cpu_cores': round(sim_cpu / wall, 2),
            'stamp_to_publish_ms': {q: number(d.get(f'stamp to publish latency {q} (ms)'))
                                    for q in ('p50', 'p95', 'p99')},
            'stage_median_ms': {s: number(d.get(f'{s} latency p50 (ms)')) for s in STAGES},
            'inference_p95_ms': number(d.get('inference latency p95 (ms)')),
            'mailbox_wait_p95_ms': number(d.get('mailbox wait latency p95 (ms)')),
            'node_xla_flags': d.get('xla flags'),
            'node_xla_preallocate': d.get('xla preallocate'),
            'node_device': d.get('device'),
            'node_device_memory_mib': {k: number(d.get(f'device memory {k} (MiB)'))
                                       for k in ('in use', 'peak')},
            'node_gil_switch_interval_ms': number(d.get('gil switch interval (ms)')),
            'node_malloc': d.get('malloc'),
        })
        return result
    finally:
        stop(sim)
        stop(node)
        monitor.node.destroy_node()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=15.0)
    parser.add_argument('--configs', nargs='+',
                        default=['640x480@30', '640x480@15', '1280x720@15', '1280x720@30'])
    parser.add_argument('--profile', choices=('both', 'on', 'off'), default='both')
    parser.add_argument('--checkpoint', default='',
                        help='classifier_ckpt/ for the node (default: untrained, random init)')
    parser.add_argument('--compile-cache', default='',
                        help='JAX persistent compilation cache folder for the node')
    args = parser.parse_args()
    profiles = {'both': (True, False), 'on': (True,), 'off': (False,)}[args.profile]
    logs = Path(tempfile.mkdtemp(prefix='hil_serl_e2e_'))
    keep_image_buffers()                      # the transport probe receives like a node
    rclpy.init()
    results: List[Dict] = []
    try:
        for camera_config in args.configs:
            size, rate = camera_config.split('@')
            width, height = (int(v) for v in size.split('x'))
            for profile in profiles:
                results.append(run(width, height, float(rate), profile, args.seconds, logs,
                                   args.compile_cache, args.checkpoint))
                results[-1]['transport_only'] = transport_only(
                    width, height, float(rate), profile, args.seconds, logs)
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        rclpy.try_shutdown()
    print(json.dumps({'benchmark': 'end_to_end', 'logs': str(logs), 'results': results},
                     indent=2))


if __name__ == '__main__':
    main()
