"""Model-only benchmark: the classifier on one camera set of two 128x128 images.

Prints one JSON document: the machine's float32 matmul GFLOP/s (measured in this run), the
FLOP count XLA's cost analysis gives, and per variant the compile time, batch-1 latency
(min / median / p95) and batch-8/32 throughput, with inputs as numpy uint8 (what the node
holds). With torch installed (make bench installs requirements/bench.txt) the same network
runs in PyTorch eager and torch.compile in the same process for comparison.

    python bench/model_bench.py [--seconds 5] [--no-torch]
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hil_serl_reward.inference import RewardClassifier  # noqa: E402
from hil_serl_reward.reward_classifier import (  # noqa: E402
    ClassifierSpec, build_classifier, init_params, sample_observation)

KEYS = ('wrist_1', 'front')


def timed_calls(call: Callable[[], None], seconds: float, min_calls: int) -> List[float]:
    for _ in range(5):
        call()
    times: List[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < min_calls:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def summary_ms(times: List[float]) -> Dict[str, float]:
    t = np.asarray(times) * 1e3
    return {'min_ms': round(float(t.min()), 3), 'median_ms': round(float(np.median(t)), 3),
            'p95_ms': round(float(np.percentile(t, 95)), 3), 'calls': len(times)}


def matmul_gflops(seconds: float) -> Dict[str, float]:
    n = 1024
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n), np.float32))
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    times = timed_calls(lambda: f(a).block_until_ready(), seconds / 2, 20)
    b = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    np_times = timed_calls(lambda: b @ b, seconds / 2, 5)
    return {'jax_n1024': round(2 * n ** 3 / np.median(times) / 1e9, 1),
            'numpy_n2048': round(2 * 2048 ** 3 / np.median(np_times) / 1e9, 1)}


def images(batch: int) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(batch)
    return {k: rng.integers(0, 256, (batch, 128, 128, 3), dtype=np.uint8) for k in KEYS}


def bench_flax(spec: ClassifierSpec, params, seconds: float, device: str) -> Dict:
    start = time.perf_counter()
    classifier = RewardClassifier(spec, params, device=device, warm_up=True)
    compile_s = time.perf_counter() - start
    result = {'compile_s': round(compile_s, 3), 'device': str(classifier.device)}
    one = images(1)
    result['batch1'] = summary_ms(timed_calls(lambda: classifier.predict(one), seconds, 50))
    for batch in (8, 32):
        x = images(batch)
        classifier.predict(x)
        times = timed_calls(lambda: classifier.predict(x), seconds, 5)
        result[f'batch{batch}_pairs_per_s'] = round(batch / float(np.median(times)), 1)
    model = build_classifier(spec)
    lowered = jax.jit(lambda p, o: model.apply({'params': p}, o)).lower(
        params, sample_observation(spec))
    cost = lowered.compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    result['xla_flops_per_pair'] = float(cost['flops'])
    return result


def bench_torch(params, seconds: float, reference_logits: np.ndarray) -> Dict:
    import torch
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from torch_reference import TorchClassifier
    torch.set_num_threads(os.cpu_count() or 1)
    model = TorchClassifier(params, KEYS).eval()
    out: Dict = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
    variants = {'eager': model}
    try:
        import torch._inductor.config as inductor_config
        inductor_config.freezing = True
        start = time.perf_counter()
        compiled = torch.compile(model)
        with torch.inference_mode():
            compiled({k: torch.from_numpy(v) for k, v in images(1).items()})
        out['compile_first_call_s'] = round(time.perf_counter() - start, 1)
        variants['compile'] = compiled
    except Exception as exc:  # report, never hide, a compile failure
        out['compile_error'] = f'{type(exc).__name__}: {exc}'[:300]
    with torch.inference_mode():
        check = model({k: torch.from_numpy(v) for k, v in images(8).items()}).numpy()
        out['max_abs_logit_diff_vs_flax'] = float(np.max(np.abs(check - reference_logits)))
        for name, fn in variants.items():
            one = {k: torch.from_numpy(v) for k, v in images(1).items()}
            entry = {'batch1': summary_ms(timed_calls(lambda: fn(one), seconds, 50))}
            x8 = {k: torch.from_numpy(v) for k, v in images(8).items()}
            fn(x8)
            times = timed_calls(lambda: fn(x8), seconds, 5)
            entry['batch8_pairs_per_s'] = round(8 / float(np.median(times)), 1)
            out[name] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=5.0, help='per timed loop')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--no-torch', action='store_true')
    args = parser.parse_args()
    spec = ClassifierSpec(KEYS)
    params = init_params(spec)
    report: Dict = {'benchmark': 'model', 'machine': platform.processor() or platform.machine(),
                    'cpus': os.cpu_count(), 'jax': jax.__version__,
                    'backend': jax.default_backend(),
                    'matmul_gflops': matmul_gflops(args.seconds)}
    flax_result = bench_flax(spec, params, args.seconds, args.device)
    report['flax_jit'] = flax_result
    peak = report['matmul_gflops']['jax_n1024'] * 1e9
    flops = flax_result['xla_flops_per_pair']
    report['floor_ms'] = round(flops / peak * 1e3, 3)
    report['achieved_over_peak_batch1'] = round(
        flops / (flax_result['batch1']['median_ms'] / 1e3) / peak, 3)
    report['batch1_over_floor'] = round(flax_result['batch1']['median_ms'] / report['floor_ms'], 2)
    if not args.no_torch:
        try:
            import torch  # noqa: F401  (only whether it is installed)
        except ImportError:
            report['torch'] = 'not installed (pip install -r requirements/bench.txt)'
        else:
            reference = np.asarray(RewardClassifier(spec, params, device='cpu').predict(
                images(8)).logits)
            report['torch'] = bench_torch(params, args.seconds, reference)
    print(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
