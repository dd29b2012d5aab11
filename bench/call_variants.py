"""The node's batch-1 call four ways, and XLA GPU flags: the leads of README "On a GPU",
measured once on an H100, to confirm with a second run before the node adopts them.

Variants, in interleaved rounds in one process (back to back, then one call per 30 Hz period):
  two_asarray     the jitted forward, logits and probabilities fetched one after the other
  device_get      both fetched in one jax.device_get (what RewardClassifier.predict does)
  logits_only     one output (probabilities would be computed on the host)
  stacked_input   both cameras as one array: one copy to the device instead of two
Each XLA_FLAGS value in --flags runs `device_get` in a fresh process (XLA reads its flags once);
a value the installed jaxlib does not know is reported as an error. JSON on stdout.

    python bench/call_variants.py [--device auto] [--calls 1000] [--rounds 2] [--flags ...]
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_bench import KEYS, call_times, images, random_params  # noqa: E402

GPU_FLAGS = ('', '--xla_gpu_graph_min_graph_size=1', '--xla_gpu_enable_command_buffer=')


def variants(device: str) -> Dict[str, Callable[[], np.ndarray]]:
    import jax
    from hil_serl_reward.model.inference import RewardClassifier, as_model_input, jitted_forward
    from hil_serl_reward.model.reward_classifier import (
        ClassifierSpec, build_classifier, probabilities)
    spec = ClassifierSpec(KEYS)
    params = RewardClassifier(spec, random_params(), device=device,
                              form='direct').params
    observation = as_model_input(images(1), KEYS)
    model = build_classifier(spec)
    forward = jitted_forward(spec, 'direct')
    logits_only = jax.jit(lambda p, o: model.apply({'params': p}, o))

    def from_stack(p, stacked):
        logits = model.apply({'params': p}, {k: stacked[i] for i, k in enumerate(KEYS)})
        return logits, probabilities(logits)

    stacked_forward = jax.jit(from_stack)
    stacked = np.stack([observation[k] for k in KEYS])
    return {       # each returns the logits as numpy
        'two_asarray': lambda: [np.asarray(x) for x in forward(params, observation)][0],
        'device_get': lambda: jax.device_get(forward(params, observation))[0],
        'logits_only': lambda: np.asarray(logits_only(params, observation)),
        'stacked_input': lambda: jax.device_get(stacked_forward(params, stacked))[0],
    }


def measure(calls: Dict[str, Callable[[], np.ndarray]], count: int, paced: int,
            rounds: int) -> Dict[str, Dict[str, float]]:
    for call in calls.values():
        call_times(call, 10)
    back_to_back = {name: [] for name in calls}
    at_30hz = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            back_to_back[name] += call_times(call, count)
            at_30hz[name] += call_times(call, paced, rate_hz=30.0)
    return {name: {'median_ms': round(float(np.median(back_to_back[name])) * 1e3, 3),
                   'p95_ms': round(float(np.percentile(back_to_back[name], 95)) * 1e3, 3),
                   'paced_30hz_median_ms': round(float(np.median(at_30hz[name])) * 1e3, 3)}
            for name in calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--calls', type=int, default=1000, help='back to back, per round')
    parser.add_argument('--paced-calls', type=int, default=60, help='at 30 Hz, per round')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--flags', nargs='*', default=None,
                        help=f'XLA_FLAGS values to time in fresh processes '
                             f'(default on a GPU: {GPU_FLAGS})')
    parser.add_argument('--only', help=argparse.SUPPRESS)
    args = parser.parse_args()
    import jax
    from hil_serl_reward.model.inference import select_device
    device = select_device(args.device)
    calls = variants(args.device)
    reference = calls['device_get']()
    if args.only:
        calls = {args.only: calls[args.only]}
    report: Dict = {'benchmark': 'call_variants', 'jax': jax.__version__,
                    'device_kind': device.device_kind,
                    'xla_flags': os.environ.get('XLA_FLAGS', ''),
                    'variants': measure(calls, args.calls, args.paced_calls, args.rounds)}
    for name, call in calls.items():
        report['variants'][name]['max_abs_logit_diff_vs_device_get'] = float(
            np.max(np.abs(call() - reference)))
    flags = args.flags if args.flags is not None else (
        [] if device.platform == 'cpu' or args.only else list(GPU_FLAGS))
    report['flags'] = {}
    for value in flags:
        child = [sys.executable, __file__, '--only', 'device_get', '--flags', '--device',
                 args.device, '--calls', str(args.calls), '--paced-calls',
                 str(args.paced_calls), '--rounds', str(args.rounds)]
        done = subprocess.run(child, env={**os.environ, 'XLA_FLAGS': value},
                              capture_output=True, text=True, timeout=600)
        report['flags'][value] = (json.loads(done.stdout)['variants']['device_get']
                                  if done.returncode == 0 else
                                  {'error': (done.stderr.strip().splitlines() or ['?'])[-1]})
    print(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
