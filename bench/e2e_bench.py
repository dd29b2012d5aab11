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
The flood scenario (`--flood`) offers the node more than it can take: two 1280x720 streams of
pre-rendered frames at --flood-rate Hz from a publisher process of its own (the simulator
renders too slowly to flood), and reports the stamp-to-result latency of the `classification`
topic in consecutive 5 s windows: bounded means the last windows are no worse than the first.
`--rigs N [N ...]` runs one node serving N rigs of two cameras (--rigs-camera, default
640x480@15, the rigs' phases spread over a period) and reports results per rig against the
sets offered, the batches the node formed, latency and CPU. `--stages N` serves N stages'
classifiers of one task on two cameras (--stages-camera, default 1280x720@15) by one node
(`stages`) and by a node per stage, in turn: results per stage, stamp to publish, and the
node processes' CPU and memory together. `--reload N` changes
`checkpoint_path` N times while the node serves 15 Hz cameras and reports the longest gap
between results around each change. `latency_budget_ms` gives each stage of a set's latency
(p50/p95; `make bench-e2e`: 2 x 1280x720 at 15 and 30 Hz with the large-image profile, the
node's `keep_cpus_awake` off and on, `--keep-cpus-awake both`; the node's
`cpu_latency_limit_us` from `--cpu-latency-limit-us`). `--debug-image` runs 2 x
640x480 @ 30 Hz twice, without and with a ~/debug_image subscriber: what drawing and sending
the model's view costs, and that nothing is spent without one.
Run it through scripts/ros_isolated.sh (make bench does). JSON on stdout.

    python bench/e2e_bench.py [--seconds 15] [--configs 640x480@30 1280x720@15] [--flood]
                              [--debug-image] [--reload 3]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import rclpy
from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hil_serl_reward.data.scenes import SyntheticScene  # noqa: E402
from hil_serl_reward.pipeline.image_conversion import rgb_to_msg  # noqa: E402
from hil_serl_reward.pipeline.stamps import stamp_to_ns  # noqa: E402
from hil_serl_reward.ros import config  # noqa: E402
from hil_serl_reward.ros.camera_input import camera_qos  # noqa: E402
from hil_serl_reward.ros.classification import TOPIC, Classification  # noqa: E402
from hil_serl_reward.ros.dds import (  # noqa: E402
    LOOPBACK_PROFILE, PROFILE_VARIABLES, config_dir, profile_env)
from hil_serl_reward.ros.malloc_tuning import keep_image_buffers  # noqa: E402
from hil_serl_reward.ros.node_main import make_executor  # noqa: E402
from hil_serl_reward.ros.params_file import read_node_parameters  # noqa: E402
from hil_serl_reward.tools.demo import Monitor, start, stop  # noqa: E402

KEYS = ('wrist_1', 'front')
STAGES = ('transport', 'mailbox wait', 'convert', 'crop/resize', 'inference', 'publishing')
# A set's latency budget in its order (the node's diagnostics): each camera's frame arriving
# (stamp -> callback), the set's first frame waiting for the others, the set waiting behind
# the previous inference, the node's stages, and the whole (stamp -> published).
BUDGET = (*(f'{key} arrival' for key in KEYS), 'sync wait', 'transport', 'mailbox wait',
          'convert', 'crop/resize', 'inference', 'publishing', 'stamp to publish')


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


def set_publisher(rigs: int, size: str, rate: float, seconds: float) -> None:
    """Subprocess body: the two cameras of `rigs` rigs at `rate` Hz for `seconds` (rigs = 0:
    one rig, topics <key>/image_raw; else rig_<r>/<key>/image_raw), frames rendered
    beforehand (the simulator renders too slowly to flood), stamped when published, reliable
    as camera_sim. The rigs' phases are spread evenly over a period, as free-running rigs
    may be: sets reach the node one rig at a time, and only those waiting while the model is
    busy share a batch."""
    width, height = (int(v) for v in size.split('x'))
    keep_image_buffers()
    rclpy.init()
    node = rclpy.create_node('set_publisher')
    scene = SyntheticScene(width, height)
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    prefixes = [f'rig_{r}/' for r in range(rigs)] or ['']
    publishers = [{k: node.create_publisher(Image, f'{prefix}{k}/image_raw', qos) for k in KEYS}
                  for prefix in prefixes]
    frames = [{k: Image(**rgb_to_msg(scene.render(k, t))) for k in KEYS}
              for t in np.linspace(0, scene.period_s, 8, endpoint=False)]
    start, sent = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        tick, rig = divmod(sent, len(prefixes))
        time.sleep(max(0.0, start + (tick + rig / len(prefixes)) / rate - time.monotonic()))
        stamp = node.get_clock().now().to_msg()
        for key, publisher in publishers[rig].items():
            msg = frames[tick % len(frames)][key]
            msg.header.stamp = stamp
            publisher.publish(msg)
        sent += 1
    print(json.dumps({'sets_offered': sent}), flush=True)


def rigs_scenario(rigs: int, size: str, rate: float, seconds: float, logs: Path,
                  checkpoint: str) -> Dict:
    """One node serving `rigs` rigs of 2 cameras at `rate` Hz (set_publisher): results per
    rig against sets offered (counted in the cameras' time, as stages_scenario), the batches
    the node formed, latency and CPU."""
    from diagnostic_msgs.msg import DiagnosticArray
    env = dds_env(True)
    params = config_dir() / 'demo.yaml'
    names = [f'rig_{r}' for r in range(rigs)]
    overrides = [f"rigs:=[{','.join(names)}]", 'keep_cpus_awake:=true']
    overrides += [f'checkpoint_path:={checkpoint}', 'random_init:=false'] if checkpoint else []
    node = start('classifier_node', params, overrides, env, logs / f'node_rigs_{rigs}.log')
    monitor = rclpy.create_node('hil_serl_rigs_monitor')
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    results: Dict[str, List[int]] = {name: [] for name in names}    # each result's set stamp
    diagnostics: Dict[str, Dict[str, str]] = {}
    for name in names:
        monitor.create_subscription(
            Classification, f'{name}/{TOPIC}',
            lambda m, n=name: results[n].append(stamp_to_ns(m.header.stamp)), qos)

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            for name in names:
                if status.name.endswith(f'reward classifier ({name})'):
                    diagnostics[name] = {kv.key: kv.value for kv in status.values}
    monitor.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, qos)
    executor = SingleThreadedExecutor()
    executor.add_node(monitor)
    report: Dict = {'scenario': 'rigs', 'rigs': rigs, 'camera': size, 'rate_hz': rate,
                    'sets_offered_per_s': rigs * rate}
    publisher = None
    try:
        spin_for(executor, 120, until=lambda: all(len(d) for d in diagnostics.values())
                 and len(diagnostics) == rigs or node.poll() is not None)
        publisher = subprocess.Popen(
            [sys.executable, __file__, '--set-publisher', str(rigs), size, str(rate),
             str(seconds + 4)], env=env, stdout=subprocess.PIPE, text=True)
        spin_for(executor, 60, until=lambda: all(results.values()) or node.poll() is not None)
        if not all(results.values()):
            report['error'] = 'a rig had no result within 60 s'
            return report
        spin_for(executor, 1.0)
        cpu0, t0 = cpu_seconds(node.pid), time.monotonic()
        counts0 = {name: len(times) for name, times in results.items()}
        spin_for(executor, seconds)
        wall = time.monotonic() - t0
        cpu = cpu_seconds(node.pid) - cpu0
        published = {n: results_per_camera_second(t[counts0[n]:]) for n, t in results.items()}
        spin_for(executor, 1.2)                 # one more diagnostics message
        first = diagnostics[names[0]]
        report.update({
            'seconds': round(wall, 1),
            'results_per_s_per_rig': {n: round(v, 2) for n, v in published.items()},
            'results_per_s_total': round(sum(published.values()), 1),
            'sets_per_batch': {q: number(first.get(f'sets per batch {q}'))
                               for q in ('p50', 'p100')},
            'batches_compiled': first.get('batches compiled'),
            'inference_ms': {q: number(first.get(f'inference latency {q} (ms)'))
                             for q in ('p50', 'p95')},
            'stamp_to_publish_ms': stamp_to_publish_ms(diagnostics),
            'sets_dropped_by_mailbox': {n: number(d.get('sets dropped by mailbox'))
                                        for n, d in sorted(diagnostics.items())},
            'node_cpu_cores': round(cpu / wall, 2),
            'node_device': first.get('device'),
        })
        return report
    finally:
        if publisher is not None:
            publisher.kill()
            publisher.wait()
        stop(node)
        monitor.destroy_node()


def stage_checkpoints(stages: int, logs: Path) -> Dict[str, Path]:
    """`stages` checkpoints of random heads on one random backbone (as hil-serl's stages hold
    one frozen ResNet-10), stage_1 ... stage_N."""
    from hil_serl_reward.model.checkpoint import save_checkpoint
    from hil_serl_reward.model.reward_classifier import ClassifierSpec, init_params
    from hil_serl_reward.model.stages import split_backbones, with_backbones
    spec = ClassifierSpec(KEYS)
    backbone = split_backbones(init_params(spec, 0), spec)[1]
    folders = {}
    for seed in range(1, stages + 1):
        folders[f'stage_{seed}'] = logs / f'stage_checkpoint_{seed}'
        if not folders[f'stage_{seed}'].exists():
            own = split_backbones(init_params(spec, seed), spec)[0]
            save_checkpoint(folders[f'stage_{seed}'], with_backbones(own, backbone, spec), spec,
                            step=seed)
    return folders


def stages_scenario(stages: int, size: str, rate: float, seconds: float, logs: Path) -> Dict:
    """A task's `stages` binary classifiers on 2 cameras at `rate` Hz (set_publisher), served
    by one node (`stages`: one subscription, conversion and backbone pass per set) and by a
    node per stage (`/stage_i`, each reading the same cameras), one after the other: results
    per stage, stamp to publish, and the CPU and memory of the node processes together."""
    checkpoints = stage_checkpoints(stages, logs)
    names = list(checkpoints)
    common = ['random_init:=false', 'keep_cpus_awake:=true']
    one_node = [('', common + [f"stages:=[{','.join(names)}]"]
                 + [f'{name}.checkpoint_path:={path}' for name, path in checkpoints.items()])]
    per_stage = [(f'/{name}', common + [f'checkpoint_path:={path}']
                  + [f'cameras.{key}.topic:=/{key}/image_raw' for key in KEYS])
                 for name, path in checkpoints.items()]
    report: Dict = {'scenario': 'stages', 'stages': stages, 'camera': size, 'rate_hz': rate}
    for arrangement, nodes in (('one_node', one_node), ('node_per_stage', per_stage)):
        report[arrangement] = serve_stages(arrangement, nodes, names, size, rate, seconds, logs)
        print(json.dumps({arrangement: report[arrangement]}), file=sys.stderr, flush=True)
    return report


def serve_stages(arrangement: str, nodes: List[Tuple[str, List[str]]], names: List[str],
                 size: str, rate: float, seconds: float, logs: Path) -> Dict:
    """stages_scenario's measurement of one arrangement: `nodes` as (namespace, overrides)."""
    from diagnostic_msgs.msg import DiagnosticArray
    env = dds_env(True)
    params = config_dir() / 'demo.yaml'
    processes = [start('classifier_node', params, overrides, env,
                       logs / f"node_{arrangement}{namespace.replace('/', '_')}.log",
                       namespace=namespace) for namespace, overrides in nodes]
    monitor = rclpy.create_node('hil_serl_stages_monitor')
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    results: Dict[str, List[int]] = {name: [] for name in names}    # each result's set stamp
    diagnostics: Dict[str, Dict[str, str]] = {}
    for name in names:               # /stage_i/classification in either arrangement
        monitor.create_subscription(
            Classification, f'/{name}/{TOPIC}',
            lambda m, n=name: results[n].append(stamp_to_ns(m.header.stamp)), qos)

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            for name in names:
                if status.name.endswith(f'({name})') or status.name.startswith(f'/{name}/'):
                    diagnostics[name] = {kv.key: kv.value for kv in status.values}
    monitor.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, qos)
    executor = SingleThreadedExecutor()
    executor.add_node(monitor)
    report: Dict = {'nodes': len(processes)}
    publisher = None
    try:
        spin_for(executor, 180, until=lambda: len(diagnostics) == len(names)
                 or any(p.poll() is not None for p in processes))
        publisher = subprocess.Popen(
            [sys.executable, __file__, '--set-publisher', '0', size, str(rate),
             str(seconds + 4)], env=env, stdout=subprocess.PIPE, text=True)
        spin_for(executor, 60, until=lambda: all(results.values())
                 or any(p.poll() is not None for p in processes))
        if not all(results.values()):
            report['error'] = 'a stage had no result within 60 s'
            return report
        spin_for(executor, 1.0)
        cpu0, t0 = sum(cpu_seconds(p.pid) for p in processes), time.monotonic()
        counts0 = {name: len(times) for name, times in results.items()}
        spin_for(executor, seconds)
        wall = time.monotonic() - t0
        cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu0
        spin_for(executor, 1.2)                 # one more diagnostics message
        report.update({
            'seconds': round(wall, 1),
            'results_per_s': {n: results_per_camera_second(t[counts0[n]:])
                              for n, t in results.items()},
            'stamp_to_publish_ms': stamp_to_publish_ms(diagnostics),
            'inference_ms_p50': {n: number(d.get('inference latency p50 (ms)'))
                                 for n, d in sorted(diagnostics.items())},
            'nodes_cpu_cores': round(cpu / wall, 2),
            'nodes_rss_mib': round(sum(rss_mib(p.pid) for p in processes), 1),
        })
        return report
    finally:
        if publisher is not None:
            publisher.kill()
            publisher.wait()
        for process in processes:
            stop(process)
        monitor.destroy_node()


def stamp_to_publish_ms(diagnostics: Dict[str, Dict[str, str]]) -> Dict[str, Dict[str, float]]:
    """Each status's stamp-to-publish p50 / p95, by rig or stage name."""
    return {name: {q: number(values.get(f'stamp to publish latency {q} (ms)'))
                   for q in ('p50', 'p95')} for name, values in sorted(diagnostics.items())}


def results_per_camera_second(stamps: List[int]) -> float:
    """Results per second of the cameras' time (their set stamps): counted on arrival, a
    window's count also held what the monitor took late from the one before."""
    if len(stamps) < 2:
        return 0.0
    return round((len(stamps) - 1) / ((max(stamps) - min(stamps)) / 1e9), 2)


def rss_mib(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return 0.0


def flood(rate: float, seconds: float, logs: Path) -> Dict:
    """The node under a flood of 2 x 1280x720: latency per 5 s window, sets dropped."""
    env = dds_env(True)
    params = config_dir() / 'demo.yaml'
    node = start('classifier_node', params, [], env, logs / 'node_flood.log')
    monitor = Monitor()
    latencies: List[Tuple[float, float]] = []

    def result(msg: Classification) -> None:
        now = monitor.node.get_clock().now().nanoseconds
        latencies.append((time.monotonic(), (now - stamp_to_ns(msg.header.stamp)) / 1e6))

    monitor.node.create_subscription(Classification, TOPIC, result,
                                     QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    executor = SingleThreadedExecutor()
    executor.add_node(monitor.node)
    publisher = subprocess.Popen(
        [sys.executable, __file__, '--set-publisher', '0', '1280x720', str(rate),
         str(seconds + 130)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    report: Dict = {'scenario': 'flood', 'camera': '1280x720', 'offered_rate_hz': rate}
    try:
        spin_for(executor, 120, until=lambda: bool(latencies) or node.poll() is not None)
        if not latencies:
            report['error'] = 'no classification within 120 s'
            return report
        spin_for(executor, 2.0)
        base = dict(monitor.diagnostics)
        t0 = time.monotonic()
        spin_for(executor, seconds)
        spin_for(executor, 1.2)
        windows = []
        for start_s in np.arange(0, seconds - 4.99, 5.0):
            values = [ms for t, ms in latencies if t0 + start_s <= t < t0 + start_s + 5.0]
            if values:
                windows.append({'from_s': float(start_s), 'results': len(values),
                                'p50_ms': round(float(np.percentile(values, 50)), 1),
                                'p95_ms': round(float(np.percentile(values, 95)), 1)})
        d = monitor.diagnostics
        report.update({
            'seconds': seconds,
            'windows': windows,
            'last_over_first_window_p95': round(windows[-1]['p95_ms'] / windows[0]['p95_ms'], 2),
            'sets_synchronised': number(d.get('sets synchronised'))
            - number(base.get('sets synchronised')),
            'sets_published': number(d.get('sets published')) - number(base.get('sets published')),
            'sets_dropped_by_mailbox': number(d.get('sets dropped by mailbox'))
            - number(base.get('sets dropped by mailbox')),
            'camera_rate_hz': [number(d.get(f'{k} rate (Hz)')) for k in KEYS],
            'transport_p95_ms': number(d.get('transport latency p95 (ms)')),
        })
        return report
    finally:
        stop(publisher)
        stop(node)
        monitor.node.destroy_node()


def reload_scenario(rate: float, reloads: int, logs: Path) -> Dict:
    """The node serving 2 x 640x480 at `rate` while `checkpoint_path` is set to another
    checkpoint of the same shape, `reloads` times, as `ros2 param set` does: the longest gap
    between results from each change until 2 s after the new checkpoint shows in diagnostics
    (a gap that spans the change counts), in frame periods (target: at most two), next to the
    longest gap of a quiet stretch before."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    from hil_serl_reward.model.checkpoint import save_checkpoint
    from hil_serl_reward.model.reward_classifier import ClassifierSpec, init_params
    spec = ClassifierSpec(KEYS)
    folders = []
    for seed in (0, 1):
        folders.append(logs / f'reload_checkpoint_{seed}')
        save_checkpoint(folders[-1], init_params(spec, seed), spec, step=1)
    env = dds_env(True)
    params = config_dir() / 'demo.yaml'
    sim = start('camera_sim', params, [f'rate:={rate}', 'width:=640', 'height:=480'], env,
                logs / 'sim_reload.log')
    node = start('classifier_node', params, [f'checkpoint_path:={folders[0]}',
                                             'random_init:=false'], env, logs / 'node_reload.log')
    monitor = Monitor()
    client = monitor.node.create_client(SetParameters, '/hil_serl_reward/set_parameters')
    executor = SingleThreadedExecutor()
    executor.add_node(monitor.node)
    period_ms = 1e3 / rate
    report: Dict = {'scenario': 'reload', 'camera': '640x480', 'rate_hz': rate,
                    'frame_period_ms': round(period_ms, 1), 'reloads': []}

    def longest_gap_ms(start: float, end: float) -> float:
        times = [t for t, _ in monitor.probabilities if start <= t <= end]
        return round(max(np.diff(times)) * 1e3, 1) if len(times) > 1 else float('inf')
    try:
        spin_for(executor, 120,
                 until=lambda: bool(monitor.probabilities) or node.poll() is not None)
        if not monitor.probabilities:
            report['error'] = 'no result within 120 s'
            return report
        quiet = time.monotonic()
        spin_for(executor, 4.0)
        report['quiet_longest_gap_ms'] = longest_gap_ms(quiet, time.monotonic())
        for i in range(reloads):
            target = str(folders[(i + 1) % 2])
            changed = time.monotonic()
            future = client.call_async(SetParameters.Request(parameters=[
                Parameter('checkpoint_path', value=target).to_parameter_msg()]))
            spin_for(executor, 10, until=future.done)
            spin_for(executor, 30, until=lambda: monitor.diagnostics.get(
                'checkpoint', '').startswith(target))
            seen = time.monotonic()
            spin_for(executor, 2.0)
            last_before = max(t for t, _ in monitor.probabilities if t <= changed)
            gap = longest_gap_ms(last_before, time.monotonic())
            report['reloads'].append({
                'accepted': bool(future.done() and future.result().results[0].successful),
                'serving_new_checkpoint_within_s': round(seen - changed, 1),
                'longest_gap_ms': gap, 'longest_gap_periods': round(gap / period_ms, 2)})
        return report
    finally:
        stop(sim)
        stop(node)
        monitor.node.destroy_node()


def run(width: int, height: int, rate: float, profile: bool, seconds: float,
        logs: Path, compile_cache: str, checkpoint: str, debug_image: bool = False,
        keep_cpus_awake: bool = True, cpu_latency_limit_us: int = -1) -> Dict:
    """One configuration; with `debug_image` a subscriber of ~/debug_image listens too."""
    env = dds_env(profile)
    if compile_cache:
        env.update(JAX_COMPILATION_CACHE_DIR=compile_cache,
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')
    started = time.monotonic()
    params = config_dir() / 'demo.yaml'
    sim = start('camera_sim', params, [f'rate:={rate}', f'width:={width}', f'height:={height}'],
                env, logs / f'sim_{width}x{height}_{rate:g}_{profile}.log')
    overrides = [f'checkpoint_path:={checkpoint}', 'random_init:=false'] if checkpoint else []
    overrides += [f'keep_cpus_awake:={str(keep_cpus_awake).lower()}',
                  f'cpu_latency_limit_us:={cpu_latency_limit_us}']
    node = start('classifier_node', params, overrides, env, logs / (
        f'node_{width}x{height}_{rate:g}_{profile}_{debug_image}_{keep_cpus_awake}.log'))
    monitor = Monitor()
    debug_images: List[Image] = []
    if debug_image:
        monitor.node.create_subscription(Image, '/hil_serl_reward/debug_image',
                                         debug_images.append, 1)
    executor = SingleThreadedExecutor()
    executor.add_node(monitor.node)
    result: Dict = {'camera': f'{width}x{height}', 'rate_hz': rate, 'large_image_profile': profile,
                    'debug_image_subscriber': debug_image, 'keep_cpus_awake': keep_cpus_awake,
                    'cpu_latency_limit_us': cpu_latency_limit_us}
    try:
        spin_for(executor, 120, until=lambda: bool(monitor.rewards) or node.poll() is not None)
        if not monitor.rewards:
            result['error'] = 'no reward within 120 s'
            return result
        result['process_start_to_first_reward_s'] = round(time.monotonic() - started, 2)
        result['compile_cache'] = bool(compile_cache)
        spin_for(executor, 2.0)               # settle, then take the baseline
        base, base_stamp_ns = dict(monitor.diagnostics), monitor.diagnostics_stamp_ns
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

        frames = [delta(f'{k} images') for k in KEYS]
        result.update({
            'seconds': round(wall, 1),
            # the counters below are differences of two diagnostics messages: over this span
            'counters_seconds': round((monitor.diagnostics_stamp_ns - base_stamp_ns) / 1e9, 1),
            'camera_frames_received': frames,
            'sets_synchronised': delta('sets synchronised'),
            'sets_published': delta('sets published'),
            'sets_dropped_by_mailbox': delta('sets dropped by mailbox'),
            'rewards_received': len(monitor.rewards) - rewards0,
            'debug_images_received': len(debug_images),
            'camera_rate_hz': [number(d.get(f'{k} rate (Hz)')) for k in KEYS],
            'node_cpu_cores': round(cpu / wall, 2),
            'camera_sim_cpu_cores': round(sim_cpu / wall, 2),
            'stamp_to_publish_ms': {q: number(d.get(f'stamp to publish latency {q} (ms)'))
                                    for q in ('p50', 'p95', 'p99')},
            'stage_median_ms': {s: number(d.get(f'{s} latency p50 (ms)')) for s in STAGES},
            'latency_budget_ms': {s: {q: number(d.get(f'{s} latency {q} (ms)'))
                                      for q in ('p50', 'p95')} for s in BUDGET},
            'inference_p95_ms': number(d.get('inference latency p95 (ms)')),
            'mailbox_wait_p95_ms': number(d.get('mailbox wait latency p95 (ms)')),
            'node_xla_flags': d.get('xla flags'),
            'node_xla_preallocate': d.get('xla preallocate'),
            'node_device': d.get('device'),
            'node_device_memory_mib': {k: number(d.get(f'device memory {k} (MiB)'))
                                       for k in ('in use', 'peak')},
            'node_gil_switch_interval_ms': number(d.get('gil switch interval (ms)')),
            'node_malloc': d.get('malloc'),
            'node_cpu_latency': d.get('cpu latency'),
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
    parser.add_argument('--configs', nargs='*',
                        default=['640x480@30', '640x480@15', '1280x720@15', '1280x720@30'])
    parser.add_argument('--profile', choices=('both', 'on', 'off'), default='both')
    parser.add_argument('--checkpoint', default='',
                        help='classifier_ckpt/ for the node (default: untrained, random init)')
    parser.add_argument('--compile-cache', default='',
                        help='JAX persistent compilation cache folder for the node')
    parser.add_argument('--debug-image', action='store_true',
                        help='also 640x480 @ 30 Hz with and without a ~/debug_image subscriber')
    parser.add_argument('--flood', action='store_true',
                        help='also the flood scenario (2 x 1280x720 faster than the node)')
    parser.add_argument('--flood-rate', type=float, default=400.0,
                        help='Hz of each camera (at 120 a node on 2 Zen 5 vCPUs with '
                             'XLA\'s threads pinned kept up: no flood)')
    parser.add_argument('--flood-seconds', type=float, default=30.0)
    parser.add_argument('--set-publisher', nargs=4, help=argparse.SUPPRESS)
    parser.add_argument('--keep-cpus-awake', choices=('both', 'on', 'off'), default='on',
                        help="the node's keep_cpus_awake in each configuration (default: on, "
                             "the node's default; both: a run with and one without)")
    parser.add_argument('--cpu-latency-limit-us', type=int, default=-1,
                        help="the node's cpu_latency_limit_us (-1: no request)")
    parser.add_argument('--rigs', type=int, nargs='*', default=[], metavar='N',
                        help='also one node serving N rigs (each N given) of 2 cameras')
    parser.add_argument('--rigs-camera', default='640x480@15',
                        help="the rigs' cameras, WxH@Hz")
    parser.add_argument('--stages', type=int, default=0, metavar='N',
                        help='also N stages on one node against a node per stage')
    parser.add_argument('--stages-camera', default='1280x720@15',
                        help="the stages' two cameras, WxH@Hz (hil-serl's: 1280x720@15)")
    parser.add_argument('--reload', type=int, default=0, metavar='N',
                        help='also N checkpoint changes at 2 x 640x480 @ 15 Hz: the gaps')
    args = parser.parse_args()
    if args.set_publisher:
        rigs, size, rate, seconds = args.set_publisher
        set_publisher(int(rigs), size, float(rate), float(seconds))
        return
    profiles = {'both': (True, False), 'on': (True,), 'off': (False,)}[args.profile]
    awakes = {'both': (False, True), 'on': (True,), 'off': (False,)}[args.keep_cpus_awake]
    logs = Path(tempfile.mkdtemp(prefix='hil_serl_e2e_'))
    keep_image_buffers()                      # the transport probe receives like a node
    rclpy.init()
    results: List[Dict] = []
    try:
        for camera_config in args.configs:
            size, rate = camera_config.split('@')
            width, height = (int(v) for v in size.split('x'))
            for profile in profiles:
                for awake in awakes:
                    results.append(run(width, height, float(rate), profile, args.seconds, logs,
                                       args.compile_cache, args.checkpoint,
                                       keep_cpus_awake=awake,
                                       cpu_latency_limit_us=args.cpu_latency_limit_us))
                    print(json.dumps(results[-1]), file=sys.stderr, flush=True)
                results[-1]['transport_only'] = transport_only(
                    width, height, float(rate), profile, args.seconds, logs)
        if args.debug_image:                  # its cost: the same run with and without
            for subscribed in (False, True):
                results.append(run(640, 480, 30.0, True, args.seconds, logs, args.compile_cache,
                                   args.checkpoint, debug_image=subscribed))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        if args.flood:
            results.append(flood(args.flood_rate, args.flood_seconds, logs))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        if args.reload:
            results.append(reload_scenario(15.0, args.reload, logs))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        size, rate = args.rigs_camera.split('@')
        for rigs in args.rigs:
            results.append(rigs_scenario(rigs, size, float(rate), args.seconds, logs,
                                         args.checkpoint))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        if args.stages:
            size, rate = args.stages_camera.split('@')
            results.append(stages_scenario(args.stages, size, float(rate), args.seconds, logs))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        rclpy.try_shutdown()
    print(json.dumps({'benchmark': 'end_to_end', 'logs': str(logs), 'results': results},
                     indent=2))


if __name__ == '__main__':
    main()
