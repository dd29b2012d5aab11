"""Model-only benchmark: the classifier on one camera set of two 128x128 images.

Prints one JSON document: the machine's float32 matmul GFLOP/s (measured in this run), the
FLOP count from XLA's cost analysis, and per contender the first-call time, batch-1 latency
(min / median / p95) and batch-8 (and for JAX batch-32) throughput, inputs as numpy uint8
(what the node holds); batch 8 in rounds interleaved with the torch contenders'
(`batch8_pairs_per_s_by_round`; their median, and `batch8_node_over_torch_compile`). Contenders:
  node            RewardClassifier with the node's XLA setting (xla_flags.py): what the
                  node runs. This process is started the way the node starts (its XLA
                  flags and its malloc setting, malloc_tuning.py), and on a CPU XLA's
                  compute threads are pinned as the node pins them (xla_threads.py).
  node_direct_convolutions  the same without the CPU inference form (convolutions.py):
                  every convolution is XLA's direct one
  torch_eager     the same network and weights in PyTorch (bench/torch_reference.py)
  torch_compile   the same under torch.compile with inductor freezing
  torch_compile_cudagraphs  on a GPU: the same in mode='reduce-overhead' (CUDA graphs)
  xla_defaults    jit(model.apply) with XLA's default flags, in a fresh process because XLA
                  reads its flags once per process (timed after the others)
  node_hil_serl_form  RewardClassifier(form='hil-serl'), hil-serl's own computation, with
                  the XLA flags the node leaves it (the defaults), in rounds with xla_defaults
The torch contenders run in a worker process of their own, as the node never has torch
loaded (in one A/B on the CI VM, torch imported into the JAX process slowed JAX by 20 %).
Batch-1 latencies are taken in interleaved rounds, so that load changes on a shared machine
hit the contenders alike: first node and node_direct_convolutions alone (`batch1`), then
with the worker's rounds in between (the torch contenders' `batch1`, the node's
`batch1_with_torch_rounds`: compare node and torch there). The node is also timed at
camera rates, one call per period as the node makes them (`batch1_paced_30hz`, `_15hz`,
`_10hz`), in rounds with back-to-back calls (`paced_median_over_back_to_back`: the median over
the rounds of each round's paced over back-to-back median, the rounds' own in
`paced_over_back_to_back_by_round`); on a CPU also with the node's `keep_cpus_awake`
tickers running, `..._cpus_awake`, and, where this process may, on any device with the
kernel's CPU latency request held at 0 as the node's `cpu_latency_limit_us: 0` holds it,
`..._cpu_latency_0`):
on the CI VM a vCPU left idle between calls made each call much slower; `between_frames`
says what a camera period does to the CPU apart from the model (its clock, its caches).
Every loop reports how busy the benchmark's processes (`self_busy_cores`) and the rest of
the machine (`others_busy_cores`) were. make bench runs this at high priority in its own
scheduler group (scripts/high_priority.sh). torch comes from requirements/bench.txt
(make bench installs it); without it the torch contenders are skipped.
`stages`: a node serving two stages of a task (`stages`, model/stages.py), their
classifiers on one backbone, answered by one call (`two_stages_one_call`), against the two
classifiers called in turn and one classifier alone, in interleaved rounds.
On a GPU (the node's `auto` device) the torch contenders run on CUDA, the matmul peak also
at n=8192 (the floor takes the best), and the node's logits are compared with float32 on
the CPU (`max_abs_logit_diff_vs_cpu`).

    python bench/model_bench.py [--seconds 5] [--no-torch]
"""
import argparse
import collections
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hil_serl_reward.model.xla_flags import (  # noqa: E402
    share_the_gpu, use_cpu_ynn_fusions, use_gpu_command_buffers)
from hil_serl_reward.ros import xla_threads  # noqa: E402
from hil_serl_reward.ros.cpu_latency import CpuLatencyRequest  # noqa: E402
from hil_serl_reward.ros.cpu_tickers import CpuTickers  # noqa: E402
from hil_serl_reward.ros.malloc_tuning import keep_image_buffers, malloc_setting  # noqa: E402

if TYPE_CHECKING:     # imported where used, after the XLA flags are set
    import jax

KEYS = ('wrist_1', 'front')
ROUND_CALLS = 20
PACED_RATES_HZ = (30.0, 15.0, 10.0)
Predict = Callable[[Dict[str, np.ndarray]], np.ndarray]


def machine_busy_ticks() -> int:
    """Busy jiffies of all CPUs (user, nice, system, irq, softirq, steal)."""
    fields = [int(v) for v in Path('/proc/stat').read_text().split('\n', 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]


class LoadMeter:
    """Cores the benchmark (this process and `helper_cpu_s`'s) and everything else kept busy
    between start() and read()."""

    def __init__(self, helper_cpu_s: Callable[[], float] = lambda: 0.0) -> None:
        self._cpu_s = lambda: sum(os.times()[:2]) + helper_cpu_s()

    def start(self) -> None:
        self._ticks, self._own = machine_busy_ticks(), self._cpu_s()
        self._wall = time.perf_counter()

    def read(self) -> Dict[str, float]:
        wall = time.perf_counter() - self._wall
        own = self._cpu_s() - self._own
        machine = (machine_busy_ticks() - self._ticks) / os.sysconf('SC_CLK_TCK')
        return {'self_busy_cores': round(own / wall, 2),
                'others_busy_cores': round(max(machine - own, 0.0) / wall, 2)}


def call_times(call: Callable[[], object], calls: int, rate_hz: float = 0.0) -> List[float]:
    """Seconds per call: back to back, or with `rate_hz` one call per period, as a node at a
    camera's rate makes them (the machine idles in between)."""
    times, next_call = [], time.perf_counter()
    for _ in range(calls):
        if rate_hz:
            next_call += 1.0 / rate_hz
            time.sleep(max(0.0, next_call - time.perf_counter()))
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def latency_summary(times: List[float], load: Dict[str, float]) -> Dict[str, float]:
    t = np.asarray(times) * 1e3
    return {'min_ms': round(float(t.min()), 3), 'median_ms': round(float(np.median(t)), 3),
            'p95_ms': round(float(np.percentile(t, 95)), 3), 'calls': len(times), **load}


def batch1_round(contenders: Dict[str, Predict]) -> Dict[str, List[float]]:
    one = images(1)
    return {name: call_times(lambda: predict(one), ROUND_CALLS)
            for name, predict in contenders.items()}


class TorchWorker:
    """The torch contenders in a child process, driven one request (a JSON line) at a time."""

    def __init__(self, device: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, '--torch-worker', device], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self._process.stdout.readline() or '{"error": "no reply"}')
        self.names: List[str] = self.info.pop('contenders', [])

    def ask(self, command: str, **arguments: object) -> Dict:
        self._process.stdin.write(json.dumps({'command': command, **arguments}) + '\n')
        self._process.stdin.flush()
        return json.loads(self._process.stdout.readline())

    def cpu_seconds(self) -> float:
        return self.ask('cpu_seconds')['cpu_seconds'] if self.names else 0.0

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait(timeout=60)


def torch_worker(device: str) -> None:
    """The worker's side: replies on the original stdout; torch's own output goes to stderr."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), 'w')
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def reply(message: Dict) -> None:
        replies.write(json.dumps(message) + '\n')
        replies.flush()

    try:
        contenders, info = torch_contenders(device)
    except ImportError:
        reply({'error': 'not installed (pip install -r requirements/bench.txt)'})
        return
    except RuntimeError as exc:
        reply({'error': str(exc)})
        return
    for predict in contenders.values():
        call_times(lambda: predict(images(1)), 5)
    reply({**info, 'contenders': list(contenders)})
    for line in sys.stdin:
        request = json.loads(line)
        if request['command'] == 'round':
            reply(batch1_round(contenders))
        elif request['command'] == 'throughput':
            reply({name: throughput(predict, request['batch'], request['seconds'])
                   for name, predict in contenders.items()})
        elif request['command'] == 'logits':
            reply({name: predict(images(8)).ravel().tolist()
                   for name, predict in contenders.items()})
        elif request['command'] == 'cpu_seconds':
            reply({'cpu_seconds': sum(os.times()[:2])})


def interleaved_batch1(contenders: Dict[str, Predict], seconds: float,
                       worker: Optional[TorchWorker] = None) -> Dict[str, Dict]:
    """Rounds of ROUND_CALLS calls per contender (here, then the worker's) until each had
    `seconds` (and 50 calls)."""
    one = images(1)
    for predict in contenders.values():
        call_times(lambda: predict(one), 5)
    remote = worker.names if worker else []
    times: Dict[str, List[float]] = {name: [] for name in (*contenders, *remote)}
    meter = LoadMeter(worker.cpu_seconds if worker else lambda: 0.0)
    meter.start()
    while any(sum(t) < seconds or len(t) < 50 for t in times.values()):
        for name, round_times in batch1_round(contenders).items():
            times[name] += round_times
        for name, round_times in (worker.ask('round') if remote else {}).items():
            times[name] += round_times
    load = meter.read()
    return {name: latency_summary(t, load) for name, t in times.items()}


PACED_ROUNDS = 5
Mode = Callable[[], contextlib.AbstractContextManager]


def paced_rounds(predict: Predict, modes: Dict[str, Mode], seconds: float,
                 rounds: int = PACED_ROUNDS) -> Dict[str, Dict]:
    """The node's calls at camera rates (one per period, the machine idle in between; at
    least 50 per rate and mode), in rounds: in each, for each rate and mode, 20 back-to-back
    calls, then that mode's calls at that rate, whose median is divided by those 20's. On
    the Zen 5 VM back-to-back calls went from 4.0-4.5 to 6.1-7.6 ms and back for minutes at
    a time: a ratio of calls timed a minute apart said more of that than of the pacing. The
    ratio reported is the median over the rounds; the rounds' own are kept."""
    one = images(1)
    call_times(lambda: predict(one), 5)
    calls = {rate: -(-max(50, int(seconds * rate)) // rounds) for rate in PACED_RATES_HZ}
    back_to_back: List[float] = []
    paced: Dict[Tuple[str, float], List[float]] = collections.defaultdict(list)
    ratios: Dict[Tuple[str, float], List[float]] = collections.defaultdict(list)
    meter = LoadMeter()
    meter.start()
    for _ in range(rounds):
        for rate in PACED_RATES_HZ:
            for suffix, mode in modes.items():
                just_before = call_times(lambda: predict(one), 20)
                back_to_back += just_before
                with mode():
                    time.sleep(0.1)             # a helper process starting settles first
                    times = call_times(lambda: predict(one), calls[rate], rate)
                paced[suffix, rate] += times
                ratios[suffix, rate].append(float(np.median(times) / np.median(just_before)))
    load = meter.read()
    report: Dict[str, Dict] = {
        'batch1_back_to_back_in_paced_rounds': latency_summary(back_to_back, load)}
    for suffix in modes:
        for rate in PACED_RATES_HZ:
            report[f'batch1_paced_{rate:g}hz{suffix}'] = latency_summary(paced[suffix, rate],
                                                                         load)
        report[f'paced_median_over_back_to_back{suffix}'] = {
            f'{rate:g}hz': round(float(np.median(ratios[suffix, rate])), 2)
            for rate in PACED_RATES_HZ}
        report[f'paced_over_back_to_back_by_round{suffix}'] = {
            f'{rate:g}hz': [round(ratio, 2) for ratio in ratios[suffix, rate]]
            for rate in PACED_RATES_HZ}
    return report


BETWEEN_FRAMES_GAP_S = 1.0 / 15.0
BETWEEN_FRAMES_READS_KB = (512, 4096)     # about one core's L2, and a share of a shared L3


def between_frames(calls: int = 40) -> Dict[str, Dict[str, float]]:
    """What one camera period (15 Hz) does to a CPU, without the model: the median time of
    a loop that touches no memory (the clock) and of reading 512 KB and 4 MB (the caches),
    back to back, after sleeping a period, and after a period kept busy on that CPU.
    Slower after a busy period too means other work took the caches meanwhile (on a VM, the
    host's other tenants): no keeping the CPU awake brings that back. Runs on one CPU."""
    buffers = {kb: np.random.default_rng(kb).random(kb * 1024 // 8)
               for kb in BETWEEN_FRAMES_READS_KB}

    def clock_loop() -> None:
        total = 0
        for i in range(20_000):
            total += i

    def timed(work: Callable[[], object], pause: Callable[[], None]) -> float:
        times = []
        for _ in range(calls):
            work()
            pause()
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return round(float(np.median(times)) * 1e6, 1)

    def busy_period() -> None:
        end = time.perf_counter() + BETWEEN_FRAMES_GAP_S
        while time.perf_counter() < end:
            pass

    pauses = {'back_to_back_us': lambda: None,
              'after_sleeping_a_period_us': lambda: time.sleep(BETWEEN_FRAMES_GAP_S),
              'after_a_busy_period_us': busy_period}
    works = {'clock_loop': clock_loop,
             **{f'read_{kb}kb': buffer.sum for kb, buffer in buffers.items()}}
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        return {name: {pause: timed(work, wait) for pause, wait in pauses.items()}
                for name, work in works.items()}
    finally:
        os.sched_setaffinity(0, allowed)


BATCH8_ROUNDS = 5


def interleaved_batch8(contenders: Dict[str, Predict], seconds: float,
                       worker: Optional[TorchWorker] = None, rounds: int = BATCH8_ROUNDS
                       ) -> Dict[str, List[float]]:
    """Batch-8 sets/s per contender in rounds (here, then the worker's), each `seconds` /
    `rounds` long: the node and torch.compile compared within seconds of each other, not a
    minute apart (the Zen 5 VM's slow mode comes and goes; `batch8_node_over_torch_compile`
    is the median of the rounds' ratios)."""
    remote = worker.names if worker else []
    by_round: Dict[str, List[float]] = {name: [] for name in (*contenders, *remote)}
    for _ in range(rounds):
        for name, predict in contenders.items():
            by_round[name].append(throughput(predict, 8, seconds / rounds))
        if remote:
            for name, pairs_per_s in worker.ask('throughput', batch=8,
                                                seconds=seconds / rounds).items():
                by_round[name].append(pairs_per_s)
    return by_round


def stages_rounds(device: str, seconds: float) -> Dict[str, object]:
    """Batch 1 of two stages sharing a backbone (other heads): in one call, in turn, and
    one classifier alone, in interleaved rounds (interleaved_batch1)."""
    import jax
    from hil_serl_reward.model.inference import RewardClassifier
    from hil_serl_reward.model.reward_classifier import ClassifierSpec
    from hil_serl_reward.model.stages import StageClassifiers, split_backbones, with_backbones
    spec = ClassifierSpec(KEYS)
    first = random_params()
    second, _ = split_backbones(jax.tree_util.tree_map(lambda leaf: leaf[::-1].copy(), first),
                                spec)
    second = with_backbones(second, split_backbones(first, spec)[1], spec)
    alone = {name: RewardClassifier(spec, params, device=device)
             for name, params in (('first', first), ('second', second))}
    stages = StageClassifiers({name: RewardClassifier(spec, params, device=device,
                                                      warm_up=False)
                               for name, params in (('first', first), ('second', second))})
    contenders = {'one_classifier': alone['first'].predict,
                  'two_classifiers_in_turn': lambda batch: [c.predict(batch)
                                                            for c in alone.values()],
                  'two_stages_one_call': stages.predict}
    summaries = interleaved_batch1(contenders, seconds)
    one = summaries['one_classifier']['median_ms']
    return {'backbone_passes': stages.backbone_passes, **summaries,
            'two_stages_over_one_classifier': round(
                summaries['two_stages_one_call']['median_ms'] / one, 2),
            'two_in_turn_over_one_classifier': round(
                summaries['two_classifiers_in_turn']['median_ms'] / one, 2)}


def throughput(predict: Predict, batch: int, seconds: float) -> float:
    x = images(batch)
    predict(x)
    times: List[float] = []
    while sum(times) < seconds or len(times) < 5:
        times += call_times(lambda: predict(x), 1)
    return round(batch / float(np.median(times)), 1)


def images(batch: int) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(batch)
    return {k: rng.integers(0, 256, (batch, 128, 128, 3), dtype=np.uint8) for k in KEYS}


NUMERICS_SETS = 200


def numerics_sets():
    """Random two-camera sets, one at a time, in hil-serl's observation shape (T=1)."""
    rng = np.random.default_rng(2024)
    return [{k: rng.integers(0, 256, (1, 128, 128, 3), dtype=np.uint8) for k in KEYS}
            for _ in range(NUMERICS_SETS)]


def random_params():
    """Weights of the right tree; timing does not depend on their values, and init's
    compile would cost seconds."""
    import jax
    from hil_serl_reward.model.reward_classifier import ClassifierSpec, param_shapes
    rng = np.random.default_rng(0)
    return jax.tree_util.tree_map(lambda leaf: rng.normal(0.0, 0.05, leaf.shape).astype(
        np.float32), param_shapes(ClassifierSpec(KEYS)))


def cpu_description() -> Dict[str, object]:
    """Which CPU the numbers come from: family/model and the vector ISA XLA can use."""
    info: Dict[str, object] = {}
    try:
        text = Path('/proc/cpuinfo').read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(':'))
        if key in ('model name', 'cpu family', 'model') and key not in info:
            info[key] = value
        elif key == 'flags':
            flags = set(value.split())
            info['avx2'], info['avx512f'] = 'avx2' in flags, 'avx512f' in flags
            break
    return info


def matmul_gflops(seconds: float, device: 'jax.Device') -> Dict[str, float]:
    """float32 n x n products at JAX's default precision, as the model runs (on a GPU that
    is TF32 where the card has it), on the model's device; a GPU gets a size that fills it."""
    import jax
    result = {}
    for n in (1024,) if device.platform == 'cpu' else (1024, 8192):
        a = jax.device_put(np.random.default_rng(0).standard_normal((n, n), np.float32), device)
        f = jax.jit(lambda x: x @ x)
        f(a).block_until_ready()
        jax_s = min(np.median(call_times(lambda: f(a).block_until_ready(), 20))
                    for _ in range(max(1, int(seconds))))
        result[f'jax_n{n}'] = round(2 * n ** 3 / jax_s / 1e9, 1)
    b = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    numpy_s = np.median(call_times(lambda: b @ b, 10))
    result['numpy_n2048'] = round(2 * 2048 ** 3 / numpy_s / 1e9, 1)
    return result


def xla_flops_per_pair(form: str = 'direct') -> float:
    """The network's FLOPs as XLA:CPU counts them (plain form: what defines the floor), or
    what the fast form executes (fewer: Winograd). Counted on the CPU whatever the model's
    device, so that every machine's floor divides the same number."""
    import jax
    from hil_serl_reward.model.reward_classifier import (
        ClassifierSpec, build_classifier, param_shapes, sample_observation)
    spec = ClassifierSpec(KEYS)
    model = build_classifier(spec, form)
    with jax.default_device(jax.devices('cpu')[0]):
        cost = jax.jit(lambda p, o: model.apply({'params': p}, o)).lower(
            param_shapes(spec, form), sample_observation(spec)
        ).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost['flops'])


def xla_defaults(seconds: float) -> Dict:
    """The straightforward jitted model with XLA's default flags, and the node's `hil-serl`
    form, which runs with them (classifier_node.xla_flags_for), timed in interleaved rounds
    (run in a fresh process)."""
    import jax
    from hil_serl_reward.model.inference import RewardClassifier, as_model_input
    from hil_serl_reward.model.reward_classifier import ClassifierSpec, build_classifier
    model = build_classifier(ClassifierSpec(KEYS))
    jitted = jax.jit(lambda p, o: model.apply({'params': p}, o, train=False))
    params = jax.device_put(random_params())

    def predict(batch: Dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(jitted(params, as_model_input(batch, KEYS)))

    start = time.perf_counter()
    predict(images(1))
    result = {'first_call_s': round(time.perf_counter() - start, 3),
              'xla_flags': os.environ.get('XLA_FLAGS', '')}
    start = time.perf_counter()
    hil_serl = RewardClassifier(ClassifierSpec(KEYS), random_params(), form='hil-serl')
    hil_serl_form = {'first_call_s': round(time.perf_counter() - start, 3),
                     'xla_flags': result['xla_flags'], 'device': str(hil_serl.device)}
    batch1 = interleaved_batch1({'xla_defaults': predict, 'node_hil_serl_form':
                                 lambda batch: hil_serl.predict(batch).logits}, seconds)
    result['batch1'], hil_serl_form['batch1'] = batch1['xla_defaults'], batch1['node_hil_serl_form']
    for batch in (8, 32):
        result[f'batch{batch}_pairs_per_s'] = throughput(predict, batch, seconds)
    result['logits_batch8'] = predict(images(8)).ravel().tolist()
    hil_serl_form['logits_batch8'] = hil_serl.predict(images(8)).logits.ravel().tolist()
    hil_serl_form['logits_numerics_sets'] = [float(hil_serl.predict(obs).logits[0, 0])
                                             for obs in numerics_sets()]
    return {'xla_defaults': result, 'node_hil_serl_form': hil_serl_form}


def xla_defaults_in_subprocess(seconds: float) -> Dict:
    env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
    done = subprocess.run([sys.executable, __file__, '--xla-defaults', '--seconds',
                           str(seconds)], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {'error': (done.stderr.strip().splitlines() or [f'exit {done.returncode}'])[-1]}
    return json.loads(done.stdout)


def logits_against_cpu(logits: np.ndarray) -> Dict[str, float]:
    """The node's device against float32 on the CPU (plain form), for the same weights and
    images: a GPU's TF32 convolutions round differently."""
    from hil_serl_reward.model.inference import RewardClassifier
    from hil_serl_reward.model.reward_classifier import ClassifierSpec
    cpu = RewardClassifier(ClassifierSpec(KEYS), random_params(), device='cpu',
                           form='direct').predict(images(8)).logits.ravel()
    return {'max_abs_logit_diff_vs_cpu': float(np.max(np.abs(logits - cpu))),
            'max_abs_cpu_logit': float(np.max(np.abs(cpu)))}


def node_contender(device: str, form: Optional[str] = None) -> Tuple[Predict, Dict]:
    from hil_serl_reward.model.inference import RewardClassifier
    from hil_serl_reward.model.reward_classifier import ClassifierSpec
    start = time.perf_counter()
    classifier = RewardClassifier(ClassifierSpec(KEYS), random_params(), device=device,
                                  form=form)
    info = {'first_call_s': round(time.perf_counter() - start, 3),
            'device': str(classifier.device), 'xla_flags': os.environ.get('XLA_FLAGS', ''),
            'form': classifier.form, 'malloc': malloc_setting(),
            'largest_call': classifier.largest_call}
    if classifier.device.platform == 'cpu':         # as the node serves (pin_xla_threads)
        info['xla_threads'] = xla_threads.describe(xla_threads.pin_compute_threads())
    return (lambda batch: classifier.predict(batch).logits), info


def torch_contenders(device: str) -> Tuple[Dict[str, Predict], Dict]:
    """Eager and torch.compile on `device` (cpu or cuda); on CUDA also compile's CUDA-graph
    mode, which a batch-1 user there would pick."""
    import torch
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from torch_reference import TorchClassifier
    if device == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'torch {torch.__version__} sees no CUDA device')
    torch.set_num_threads(os.cpu_count() or 1)
    eager = TorchClassifier(random_params(), KEYS, device).eval()
    modules = {'torch_eager': eager}
    info: Dict = {'torch': torch.__version__, 'threads': torch.get_num_threads(),
                  'device': torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}
    compile_modes = {'torch_compile': 'default'}
    if device == 'cuda':
        compile_modes['torch_compile_cudagraphs'] = 'reduce-overhead'
    import torch._inductor.config as inductor_config
    inductor_config.freezing = True
    for name, mode in compile_modes.items():
        try:
            compiled = torch.compile(eager, mode=mode)
            start = time.perf_counter()
            with torch.inference_mode():
                compiled({k: torch.from_numpy(v).to(device) for k, v in images(1).items()})
            info[f'{name}_first_call_s'] = round(time.perf_counter() - start, 1)
            modules[name] = compiled
        except Exception as exc:  # report, never hide, a compile failure
            info[f'{name}_error'] = f'{type(exc).__name__}: {exc}'[:300]

    def predictor(module: torch.nn.Module) -> Predict:
        def predict(batch: Dict[str, np.ndarray]) -> np.ndarray:
            with torch.inference_mode():
                return module({k: torch.from_numpy(v).to(device)
                               for k, v in batch.items()}).cpu().numpy()
        return predict

    return {name: predictor(module) for name, module in modules.items()}, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=5.0, help='per timed loop')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--no-torch', action='store_true')
    parser.add_argument('--xla-defaults', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--torch-worker', choices=('cpu', 'cuda'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.xla_defaults:
        print(json.dumps(xla_defaults(args.seconds)))
        return
    if args.torch_worker:
        torch_worker(args.torch_worker)
        return
    use_cpu_ynn_fusions()
    use_gpu_command_buffers()
    share_the_gpu()                 # the torch worker and xla_defaults share the card
    keep_image_buffers()
    import jax
    from hil_serl_reward.model.inference import select_device
    device = select_device(args.device)
    report: Dict = {'benchmark': 'model', 'machine': platform.processor() or platform.machine(),
                    'cpu': cpu_description(), 'cpus': os.cpu_count(), 'jax': jax.__version__,
                    'backend': jax.default_backend(), 'device_kind': device.device_kind,
                    'matmul_gflops': matmul_gflops(args.seconds, device),
                    'xla_flops_per_pair': xla_flops_per_pair(),
                    'xla_flops_per_pair_fast_form': xla_flops_per_pair('fast')}
    node, report['node'] = node_contender(args.device)
    contenders = {'node': node}
    if report['node']['form'] == 'fast':
        contenders['node_direct_convolutions'], report['node_direct_convolutions'] = (
            node_contender(args.device, form='direct'))
    for name, summary in interleaved_batch1(contenders, args.seconds).items():
        report[name]['batch1'] = summary
    modes: Dict[str, Mode] = {'': contextlib.nullcontext}
    if device.platform == 'cpu':    # the node's keep_cpus_awake
        modes['_cpus_awake'] = CpuTickers
    try:                            # the node's cpu_latency_limit_us: 0, on any device
        CpuLatencyRequest(0).close()
        modes['_cpu_latency_0'] = lambda: CpuLatencyRequest(0)
    except OSError as error:
        report['node']['cpu_latency_0'] = f'not held: {error}'
    report['node'].update(paced_rounds(node, modes, args.seconds))
    report['between_frames'] = between_frames(calls=max(10, int(8 * args.seconds)))
    report['stages'] = stages_rounds(args.device, args.seconds)
    worker = None if args.no_torch else TorchWorker(
        'cpu' if device.platform == 'cpu' else 'cuda')
    if worker:
        report['torch'] = worker.info
    if worker and worker.names:
        for name, summary in interleaved_batch1(contenders, args.seconds, worker).items():
            key = 'batch1' if name in worker.names else 'batch1_with_torch_rounds'
            report.setdefault(name, {})[key] = summary
    reference = node(images(8)).ravel()
    if device.platform != 'cpu':
        report['node'].update(logits_against_cpu(reference))
    for name, by_round in interleaved_batch8(contenders, args.seconds, worker).items():
        report[name]['batch8_pairs_per_s'] = float(np.median(by_round))
        report[name]['batch8_pairs_per_s_by_round'] = by_round
    if 'torch_compile' in report:
        report['batch8_node_over_torch_compile'] = round(float(np.median(
            np.divide(report['node']['batch8_pairs_per_s_by_round'],
                      report['torch_compile']['batch8_pairs_per_s_by_round']))), 2)
    for name, predict in contenders.items():
        report[name]['batch32_pairs_per_s'] = throughput(predict, 32, args.seconds)
        report[name]['max_abs_logit_diff_vs_node'] = float(
            np.max(np.abs(predict(images(8)).ravel() - reference)))
    if worker and worker.names:
        for name, logits in worker.ask('logits').items():
            report[name]['max_abs_logit_diff_vs_node'] = float(
                np.max(np.abs(np.asarray(logits) - reference)))
    if worker:
        worker.close()
    fresh = xla_defaults_in_subprocess(args.seconds)
    report.update(fresh if 'error' not in fresh else {'xla_defaults': fresh})
    hil_serls = report.get('node_hil_serl_form', {}).pop('logits_numerics_sets', None)
    if hil_serls is not None:      # what the node's forms give, against hil-serl's own bits
        for name, predict in contenders.items():
            ours = [float(predict(obs)[0, 0]) for obs in numerics_sets()]
            report[name]['max_abs_logit_diff_vs_hil_serl'] = float(
                np.max(np.abs(np.asarray(ours) - np.asarray(hil_serls))))
            report[name]['numerics_sets'] = NUMERICS_SETS
    for name in ('xla_defaults', 'node_hil_serl_form'):
        if 'logits_batch8' in report.get(name, {}):
            report[name]['max_abs_logit_diff_vs_node'] = float(
                np.max(np.abs(np.asarray(report[name].pop('logits_batch8')) - reference)))
    peak_gflops = max(v for k, v in report['matmul_gflops'].items() if k.startswith('jax_'))
    report['floor_ms'] = round(report['xla_flops_per_pair'] / (peak_gflops * 1e9) * 1e3, 3)
    report['batch32_gflops'] = {
        name: round(result['batch32_pairs_per_s'] * report['xla_flops_per_pair'] / 1e9, 1)
        for name, result in report.items()
        if isinstance(result, dict) and 'batch32_pairs_per_s' in result}
    report['batch1_median_over_floor'] = {
        name: round(report[name]['batch1']['median_ms'] / report['floor_ms'], 2)
        for name, result in report.items() if isinstance(result, dict) and 'batch1' in result}
    print(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
