"""Fuzzing every file the node and tools read: seeded random mutations of valid checkpoints
(legacy msgpack and Orbax), sidecars, classifier_data pickles, images, rosbag2 recordings
and params YAML, each read the way the node or a tool reads it, in a worker process with a
bounded address space and a time limit per case.

Every case must end in one of two ways: the file loads, or it is refused with the reader's
own error in one line naming the file. Anything else is counted: `unexpected` (another
exception: a traceback in a tool), `unnamed` (a refusal of several lines, or one that does
not name the file), `memory` (MemoryError under the address-space limit: an allocation
the file's size does not bound), `crash` (the worker died: a segfault, an abort) and `hang`
(no answer within the time limit). Prints the counts per kind as JSON; exit code 1 when any
of those is not zero.

    python test/fuzz_inputs.py [--seed 0] [--cases 40] [--kinds checkpoint image ...]
"""
import argparse
import json
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

KINDS = ('checkpoint', 'orbax', 'sidecar', 'classifier_data', 'image', 'bag', 'params')
CASE_SECONDS = 30.0
WORKER_ADDRESS_SPACE = 6 << 30          # the node's largest legitimate read is 2 GiB
BAD = ('unexpected', 'unnamed', 'memory', 'crash', 'hang')


# ---- mutations -------------------------------------------------------------------------

def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four of: flip bits, overwrite with extreme integers, insert, delete, duplicate
    a chunk, truncate; biased towards the first 4 KB, where the structure is."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not data:
            data = bytearray(rng.randbytes(16))
        span = min(len(data), 4096) if rng.random() < 0.7 else len(data)
        at = rng.randrange(span)
        op = rng.choice(('flip', 'extreme', 'insert', 'delete', 'duplicate', 'truncate'))
        if op == 'flip':
            data[at] ^= 1 << rng.randrange(8)
        elif op == 'extreme':
            value = rng.choice((0xFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 40, 1 << 62))
            width = rng.choice((1, 2, 4, 8))
            data[at:at + width] = (value & ((1 << 8 * width) - 1)).to_bytes(
                width, rng.choice(('little', 'big')))
        elif op == 'insert':
            data[at:at] = rng.randbytes(rng.randint(1, 64))
        elif op == 'delete':
            del data[at:at + rng.randint(1, 64)]
        elif op == 'duplicate':
            chunk = data[at:at + rng.randint(1, 256)]
            data[at:at] = chunk * rng.randint(1, 50)
        else:
            del data[rng.randrange(len(data)):]
    return bytes(data)


# ---- valid seeds ---------------------------------------------------------------------------

KEYS = ('front', 'wrist_1')


def seed_files(folder: Path) -> Dict[str, Path]:
    """One valid file (or folder) per kind."""
    import cv2
    import numpy as np
    from hil_serl_reward.data.classifier_data import transition, write_pickle
    from hil_serl_reward.model.checkpoint import save_checkpoint, sidecar_path
    from hil_serl_reward.model.reward_classifier import ClassifierSpec, init_params
    from hil_serl_reward.ros.bags import write_bag
    from sensor_msgs.msg import Image

    spec = ClassifierSpec(KEYS)
    params = init_params(spec)
    checkpoint = save_checkpoint(folder / 'ckpt', params, spec, step=1)
    import orbax.checkpoint as ocp
    orbax = folder / 'orbax' / 'checkpoint_1'
    ocp.Checkpointer(ocp.PyTreeCheckpointHandler(use_ocdbt=False)).save(
        orbax.resolve(), {'step': np.int32(1), 'params': params})
    shutil.copy(sidecar_path(checkpoint), sidecar_path(orbax))
    rng = np.random.default_rng(0)
    frames = {k: rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for k in KEYS}
    data = folder / 'data'
    data.mkdir()
    write_pickle(data / 'x_2_success_images_t.pkl',
                 [transition({k: v + i for k, v in frames.items()}, {}) for i in range(2)])
    images = folder / 'images'
    images.mkdir()
    for suffix in ('png', 'jpg', 'tiff'):            # the three codecs the node decodes
        cv2.imwrite(str(images / f'frame.{suffix}'), frames['front'])
    bag = write_bag(folder / 'bag', [(f'/{k}/image_raw', 1_000 + i, Image(
        height=48, width=64, encoding='rgb8', step=192, data=bytes(48 * 192)))
        for i, k in enumerate(KEYS)])
    params_file = folder / 'rig.yaml'
    params_file.write_text('/**:\n  ros__parameters:\n    image_keys: [front, wrist_1]\n'
                           '    threshold: 0.7\n    cameras:\n      front:\n'
                           '        crop: "10:-10, 20:120"\n        topic: /cam/front\n')
    return {'checkpoint': checkpoint, 'orbax': orbax, 'sidecar': sidecar_path(checkpoint),
            'classifier_data': data / 'x_2_success_images_t.pkl', 'image': images,
            'bag': bag, 'params': params_file}


def mutated_case(kind: str, seed: Path, work: Path, rng: random.Random) -> Path:
    """A copy of the seed with one file mutated; returns what the reader is given."""
    if work.exists():
        shutil.rmtree(work)
    if kind == 'orbax':
        target = work / 'checkpoint_1'
        shutil.copytree(seed, target)
        shutil.copy(seed.parent / f'hil_serl_reward_{seed.name}.json', work)
        small = [p for p in target.rglob('*') if p.is_file() and p.stat().st_size < 1 << 16]
        victim = rng.choice(small)                     # metadata, .zarray, small arrays
        victim.write_bytes(mutate(victim.read_bytes(), rng))
        return work
    if kind in ('checkpoint', 'sidecar'):
        shutil.copytree(seed.parent, work)
        victim = work / seed.name
        victim.write_bytes(mutate(victim.read_bytes(), rng))
        return work
    if kind == 'bag':
        shutil.copytree(seed, work)
        victim = rng.choice([p for p in work.iterdir() if p.is_file()])
        victim.write_bytes(mutate(victim.read_bytes(), rng))
        return work
    if kind == 'image':
        seed = rng.choice(sorted(seed.iterdir()))
    work.mkdir(parents=True)
    victim = work / seed.name
    victim.write_bytes(mutate(seed.read_bytes(), rng))
    return work if kind == 'classifier_data' else victim


# ---- the readers (in the worker) -------------------------------------------------------------

def readers() -> Dict[str, Tuple[Callable[[Path], object], Tuple[type, ...]]]:
    """kind: (read as the node or tool reads, the errors that are a one-line refusal)."""
    from hil_serl_reward.data.classifier_data import ClassifierDataError, load_classifier_data
    from hil_serl_reward.model.checkpoint import CheckpointError, load_checkpoint
    from hil_serl_reward.pipeline.image_conversion import ImageError, image_file_to_rgb
    from hil_serl_reward.ros import config
    from hil_serl_reward.ros.bags import BagError, read_messages
    from hil_serl_reward.ros.params_file import read_node_parameters

    def checkpoint(path: Path) -> object:
        return load_checkpoint(path, image_keys=KEYS)

    def params(path: Path) -> object:
        values = config.with_defaults(read_node_parameters(path))
        return config.check(values), config.cameras_from(values)

    return {
        'checkpoint': (checkpoint, (CheckpointError,)),
        'orbax': (checkpoint, (CheckpointError,)),
        'sidecar': (checkpoint, (CheckpointError,)),
        'classifier_data': (lambda path: load_classifier_data(path, KEYS),
                            (ClassifierDataError,)),
        'image': (lambda path: image_file_to_rgb(path, max_pixels=4096 * 4096), (ImageError,)),
        'bag': (lambda path: list(read_messages(path)), (BagError,)),
        'params': (params, (ValueError,)),
    }


def worker() -> None:
    """Reads `kind path` lines, answers one JSON line each: loaded, refused, or what else."""
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_ADDRESS_SPACE, WORKER_ADDRESS_SPACE))
    table = readers()
    print(json.dumps({'ready': True}), flush=True)
    for line in sys.stdin:
        kind, path = line.rstrip('\n').split(' ', 1)
        read, refusals = table[kind]
        try:
            read(Path(path))
            outcome, detail = 'loaded', ''
        except refusals as exc:
            outcome, detail = 'refused', str(exc)
            if '\n' in detail.strip() or path not in detail:
                outcome = 'unnamed'                 # one line, naming the file
        except MemoryError as exc:
            outcome, detail = 'memory', repr(exc)
        except Exception as exc:
            outcome, detail = 'unexpected', f'{type(exc).__name__}: {exc}'
        print(json.dumps({'outcome': outcome, 'detail': detail[:300]}), flush=True)


# ---- the driver ------------------------------------------------------------------------------

class Worker:
    def __init__(self) -> None:
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, '--worker'], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        assert json.loads(self._line(120.0) or '{}').get('ready'), 'the fuzz worker did not start'

    def _line(self, timeout: float) -> Optional[str]:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline() if ready else None

    def run(self, kind: str, path: Path) -> Tuple[str, str]:
        if self.process is None or self.process.poll() is not None:
            self.start()
        self.process.stdin.write(f'{kind} {path}\n')
        self.process.stdin.flush()
        line = self._line(CASE_SECONDS)
        if line is None:
            self.stop()
            return 'hang', f'no answer within {CASE_SECONDS:g} s'
        if not line:
            code = self.process.wait()
            self.process = None
            return 'crash', f'worker exit code {code}'
        answer = json.loads(line)
        return answer['outcome'], answer['detail']

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def fuzz(seed: int, cases: int, kinds: List[str]) -> Dict[str, Dict[str, object]]:
    rng = random.Random(seed)
    report: Dict[str, Dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix='fuzz_') as tmp:
        seeds = seed_files(Path(tmp) / 'seeds')
        worker = Worker()
        try:
            for kind in kinds:
                counts = {'loaded': 0, 'refused': 0, **{bad: 0 for bad in BAD}}
                examples: List[str] = []
                start = time.monotonic()
                for case in range(cases):
                    path = mutated_case(kind, seeds[kind], Path(tmp) / 'case', rng)
                    outcome, detail = worker.run(kind, path)
                    counts[outcome] += 1
                    if outcome in BAD and len(examples) < 5:
                        kept = Path(tmp).parent / f'fuzz_{kind}_{seed}_{case}'
                        if path.is_dir():
                            shutil.copytree(path, kept, dirs_exist_ok=True)
                        else:
                            shutil.copy(path, kept)
                        examples.append(f'{outcome}: {detail} (kept in {kept})')
                report[kind] = {**counts, 'seconds': round(time.monotonic() - start, 1),
                                'examples': examples}
        finally:
            worker.stop()
    return report


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cases', type=int, default=40, help='per kind')
    parser.add_argument('--kinds', nargs='+', default=list(KINDS), choices=KINDS)
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker()
        return 0
    report = fuzz(args.seed, args.cases, args.kinds)
    print(json.dumps({'seed': args.seed, 'cases_per_kind': args.cases, 'kinds': report},
                     indent=2))
    return 1 if any(report[k][bad] for k in report for bad in BAD) else 0


if __name__ == '__main__':
    sys.exit(main())
