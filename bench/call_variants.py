"""The node's batch-1 call on a GPU: where its time goes, and which XLA flags cut it.

Variants, in interleaved rounds in one process (back to back, then one call per 30 Hz period):
  node             RewardClassifier.predict as the node calls it (on a GPU: gpu_forward, the
                   weights closed over, the output written to pinned host memory)
  node_polled      the same call, its output polled (Array.is_ready) until the program is
                   done instead of waited for, so the calling thread never sleeps on it
                   (no faster at 30 Hz on an H200; not kept)
  dict_in_two_out  the call of 2026-11: a dict of cameras in (a copy per camera), the weights
                   as an argument, logits and probabilities fetched by one jax.device_get
  shared_weights   the CPU's call (jitted_forward): cameras as one array in, outputs as one
                   array out, the weights as an argument
  closed_over      the same with the weights closed over (XLA folds them in as constants)
  pinned_in_out    the node's GPU call with the images also put in pinned host memory first
                   (measured slower on an H200; kept to show it)
  resident         the closed-over program on an input already on the device, its output left
                   there, waited for with block_until_ready: no copies (the program's floor)
  resident_in      the node's GPU program on an input already on the device (its output to
                   pinned host memory): the call without the input's copy
  input_only       the images' copy to the device alone (device_put, block_until_ready)
Each XLA_FLAGS value in --flags runs them all in a fresh process (XLA reads its flags once),
with exactly that XLA_FLAGS; a value the installed jaxlib does not know is reported as an
error, as is a variant that fails. Each --env NAME=VALUE runs them in a fresh process too,
with the node's GPU XLA flags and that variable set: the PJRT client's own settings, read
when it starts (XLA_PYTHON_CLIENT_USE_TFRT_GPU_CLIENT=1, XLA_PYTHON_CLIENT_ALLOCATOR=...).
Every process shares the card as the node does (XLA_PYTHON_CLIENT_PREALLOCATE=false). Per
process also the optimised program's fusions and custom calls (cuDNN convolutions), each one
kernel or more. With --torch every process also times the variants in turn with
model_bench's torch contenders (worker process, CUDA graphs included: `in_turn_with_torch`).
--variants keeps only the named ones. JSON on stdout.

    python bench/call_variants.py [--device auto] [--calls 500] [--rounds 2] [--torch]
                                  [--flags=VALUE ...] [--env NAME=VALUE ...] [--variants ...]
"""
import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hil_serl_reward.model.xla_flags import GPU_COMMAND_BUFFERS, PREALLOCATE  # noqa: E402
from model_bench import (  # noqa: E402
    KEYS, TorchWorker, call_times, images, interleaved_batch1, random_params)

FLAGS = ('', '--xla_gpu_enable_command_buffer=', '--xla_gpu_graph_min_graph_size=1',
         '--xla_gpu_enable_command_buffer=+CONVOLUTION', ' '.join(GPU_COMMAND_BUFFERS))


def variants(device: str) -> Dict[str, Callable[[], object]]:
    """Each call returns when its output is on the host (resident: on the device)."""
    import jax
    from jax.sharding import SingleDeviceSharding
    from hil_serl_reward.model.inference import (
        RewardClassifier, as_model_input, jitted_forward, padded, stack_cameras,
        stacked_outputs)
    from hil_serl_reward.model.reward_classifier import (
        ClassifierSpec, build_classifier, probabilities)
    spec = ClassifierSpec(KEYS)
    node = RewardClassifier(spec, random_params(), device=device, form='direct')
    one = images(1)
    observation = as_model_input(one, KEYS)
    stacked = stack_cameras(observation, KEYS)
    model = build_classifier(spec, 'direct')
    params = node.params

    def dict_forward(params, observations):
        logits = model.apply({'params': params}, observations, train=False)
        return logits, probabilities(logits)

    two_out = jax.jit(dict_forward)
    shared = jitted_forward(spec, 'direct')
    closed_over = jax.jit(lambda images: stacked_outputs(model, KEYS, params, images))
    host = SingleDeviceSharding(node.device, memory_kind='pinned_host')
    on_device = SingleDeviceSharding(node.device, memory_kind='device')
    pinned_in_out = jax.jit(lambda images: stacked_outputs(
        model, KEYS, params, jax.device_put(images, on_device)),
        in_shardings=host, out_shardings=host)
    resident_images = jax.device_put(stacked, node.device)

    def node_polled() -> np.ndarray:
        observations, _ = padded(as_model_input(one, KEYS), node.batch_sizes)
        outputs = node._forward(stack_cameras(observations, KEYS))
        while not outputs.is_ready():
            pass
        return np.asarray(outputs)

    return {
        'node': lambda: node.predict(one),
        'node_polled': node_polled,
        'dict_in_two_out': lambda: jax.device_get(two_out(params, observation)),
        'shared_weights': lambda: np.asarray(shared(params, stacked)),
        'closed_over': lambda: np.asarray(closed_over(stacked)),
        'pinned_in_out': lambda: np.asarray(pinned_in_out(jax.device_put(stacked, host))),
        'resident': lambda: closed_over(resident_images).block_until_ready(),
        'resident_in': lambda: np.asarray(node._forward(resident_images)),
        'input_only': lambda: jax.device_put(stacked, node.device).block_until_ready(),
    }


def program_kernels(device: str) -> Dict[str, int]:
    """What XLA made of the node's program: the entry computation's fusions and custom
    calls (cuDNN convolutions)."""
    import jax
    from hil_serl_reward.model.inference import (
        as_model_input, jitted_forward, select_device, stack_cameras)
    from hil_serl_reward.model.reward_classifier import ClassifierSpec
    spec = ClassifierSpec(KEYS)
    params = jax.device_put(random_params(), select_device(device))
    text = jitted_forward(spec, 'direct').lower(
        params, stack_cameras(as_model_input(images(1), KEYS), KEYS)).compile().as_text()
    entry = text[text.index('ENTRY'):]
    return {'fusions': len(re.findall(r'= \S+ fusion\(', entry)),
            'custom_calls': len(re.findall(r'custom-call\(', entry))}


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
    return {name: {'min_ms': round(float(np.min(back_to_back[name])) * 1e3, 3),
                   'median_ms': round(float(np.median(back_to_back[name])) * 1e3, 3),
                   'p95_ms': round(float(np.percentile(back_to_back[name], 95)) * 1e3, 3),
                   'paced_30hz_median_ms': round(float(np.median(at_30hz[name])) * 1e3, 3)}
            for name in calls}


def this_process(args: argparse.Namespace) -> Dict:
    import jax
    from hil_serl_reward.model.inference import select_device
    device = select_device(args.device)
    every = variants(args.device)
    reference = every['shared_weights']()
    calls = {name: call for name, call in every.items()
             if not args.variants or name in args.variants}
    failed = {}
    for name, call in list(calls.items()):
        try:
            call()
        except Exception as exc:  # report, never hide, a variant this jaxlib cannot run
            failed[name] = {'error': f'{type(exc).__name__}: {exc}'[:300]}
            del calls[name]
    report = {'jax': jax.__version__, 'device_kind': device.device_kind,
              'xla_flags': os.environ.get('XLA_FLAGS', ''),
              'client_env': {name: value for name, value in os.environ.items()
                             if name.startswith('XLA_PYTHON_CLIENT_')},
              'kernels': program_kernels(args.device),
              'variants': {**measure(calls, args.calls, args.paced_calls, args.rounds),
                           **failed}}
    logits = {'node': lambda: calls['node']().logits,
              **{name: lambda name=name: calls[name]()[:, :1]
                 for name in ('node_polled', 'closed_over', 'pinned_in_out')}}
    for name, logits_of in logits.items():
        if name in calls:
            report['variants'][name]['max_abs_logit_diff_vs_shared_weights'] = float(
                np.max(np.abs(logits_of() - reference[:, :1])))
    if args.torch:
        worker = TorchWorker('cpu' if device.platform == 'cpu' else 'cuda')
        report['torch'] = worker.info
        report['in_turn_with_torch'] = interleaved_batch1(
            {name: lambda batch, call=call: call() for name, call in calls.items()},
            args.seconds, worker)
        worker.close()
    return report


def why_it_failed(done: subprocess.CompletedProcess) -> str:
    """XLA's own complaint (an unknown flag value prints the whole flag list after it), else
    the exit status and the last line (a crash may print nothing)."""
    lines = done.stderr.strip().splitlines() or ['(nothing on stderr)']
    complaint = next((line for line in lines
                      if re.search(r'Illegal|Unknown|Check failed|Error', line)), lines[-1])
    return f'exit {done.returncode}: {complaint}'[:300]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--calls', type=int, default=500, help='back to back, per round')
    parser.add_argument('--paced-calls', type=int, default=30, help='at 30 Hz, per round')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--flags', action='append',
                        help='an XLA_FLAGS value to time in a fresh process (--flags=VALUE, '
                             'repeatable; without it and --env: the GPU set FLAGS)')
    parser.add_argument('--env', action='append', default=[], metavar='NAME=VALUE',
                        help="a PJRT client setting to time in a fresh process, with the "
                             "node's GPU XLA flags (repeatable)")
    parser.add_argument('--variants', nargs='+', help='only these variants')
    parser.add_argument('--torch', action='store_true',
                        help="also in turn with model_bench's torch contenders")
    parser.add_argument('--seconds', type=float, default=1.5,
                        help='per contender in the rounds with torch')
    parser.add_argument('--this-process', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.this_process:
        print(json.dumps(this_process(args)))
        return
    child = [sys.executable, __file__, '--this-process', '--device', args.device,
             '--calls', str(args.calls), '--paced-calls', str(args.paced_calls),
             '--rounds', str(args.rounds), '--seconds', str(args.seconds),
             *(['--torch'] if args.torch else []),
             *(['--variants', *args.variants] if args.variants else [])]
    shared = {**os.environ, PREALLOCATE: 'false'}
    runs = {('flags', value): {**shared, 'XLA_FLAGS': value}
            for value in args.flags or ([] if args.env else FLAGS)}
    for setting in args.env:
        name, _, value = setting.partition('=')
        runs['env', setting] = {**shared, 'XLA_FLAGS': ' '.join(GPU_COMMAND_BUFFERS),
                                name: value}
    report: Dict = {'benchmark': 'call_variants', 'flags': {}, 'env': {}}
    for (kind, key), environment in runs.items():
        done = subprocess.run(child, env=environment, capture_output=True, text=True,
                              timeout=600)
        report[kind][key] = (json.loads(done.stdout) if done.returncode == 0 else
                             {'error': why_it_failed(done)})
    print(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
