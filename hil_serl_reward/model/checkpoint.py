"""Reading and writing hil-serl classifier checkpoints.

Reads every format hil-serl writes (hil-serl-classifier.md §6): the legacy single msgpack
file, Orbax aggregate-msgpack directories (flax 0.8 era) and Orbax OCDBT directories
(flax 0.10+), given a `classifier_ckpt/` folder or one `checkpoint_<N>`. Writes the legacy
msgpack file with the full `{step, params, opt_state}` TrainState, which every hil-serl
install restores, plus a JSON sidecar recording what an upstream checkpoint cannot: the
camera order, the backbone options, crops and a threshold suggestion.

Unlike upstream's loader (§8) this one never fails silently: a missing checkpoint, a
backbone layout or camera set that does not match the configuration, or a camera order
that contradicts the sidecar all raise CheckpointError naming what was expected and found.
"""
import dataclasses
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import jax
import numpy as np
import optax
from flax import serialization
from flax.training import train_state

from hil_serl_reward.model.atomic_files import write_atomically
from hil_serl_reward.model.reward_classifier import ClassifierSpec, Params, param_shapes

LEGACY_MSGPACK = 'legacy-msgpack'
ORBAX = 'orbax'
SIDECAR_PREFIX = 'hil_serl_reward_'
SIDECAR_VERSION = 1
_CHECKPOINT_NAME = re.compile(r'^checkpoint_(\d+)$')
_ORBAX_MARKERS = ('_METADATA', 'checkpoint', 'manifest.ocdbt')
# The largest checkpoint read, on disk or as declared by Orbax metadata before anything is
# allocated: two cameras with a shared backbone and Adam's state take 87 MB, eight cameras with
# independent backbones about 0.6 GB. A larger claim is a crafted or foreign file.
MAX_CHECKPOINT_BYTES = 2 * 2**30
MAX_SIDECAR_BYTES = 2**20


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not match the configuration."""


@dataclasses.dataclass(frozen=True)
class CheckpointLayout:
    """What the parameter tree itself says about the model."""

    camera_keys: Tuple[str, ...]
    backbone: str
    backbone_owners: Tuple[str, ...]
    n_way: int


@dataclasses.dataclass
class LoadedCheckpoint:
    path: Path
    format: str
    step: Optional[int]
    params: Params
    spec: ClassifierSpec
    layout: CheckpointLayout
    sidecar: Optional[Dict[str, Any]]
    notes: List[str]


def sidecar_path(checkpoint: Path) -> Path:
    """`classifier_ckpt/hil_serl_reward_checkpoint_150.json` beside `checkpoint_150`.

    The name does not start with `checkpoint_`, so flax's newest-checkpoint glob ignores it.
    """
    return checkpoint.parent / f'{SIDECAR_PREFIX}{checkpoint.name}.json'


def resolve_checkpoint(path: os.PathLike) -> Tuple[Path, str]:
    """The single checkpoint `path` designates, and its format."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(
            f"no checkpoint at '{path}': expected a classifier_ckpt/ folder holding "
            f"checkpoint_<N>, or one checkpoint_<N> file or folder (hil-serl's own loader "
            f"would silently serve an untrained classifier here)")
    mode = path.stat().st_mode
    if stat.S_ISREG(mode):
        return path, LEGACY_MSGPACK
    if not stat.S_ISDIR(mode):
        raise CheckpointError(
            f"'{path}' is {_file_kind(mode)}, not a checkpoint: expected a classifier_ckpt/ "
            f"folder, or one checkpoint_<N> file or folder")
    if any((path / marker).exists() for marker in _ORBAX_MARKERS):
        return path, ORBAX
    steps = {int(m.group(1)): child for child in path.iterdir()
             if (m := _CHECKPOINT_NAME.match(child.name))}
    if not steps:
        found = sorted(child.name for child in path.iterdir())[:20]
        raise CheckpointError(
            f"'{path}' is a folder without checkpoint_<N> entries and is not an Orbax "
            f"checkpoint (no {', '.join(_ORBAX_MARKERS)}); it holds: {found or 'nothing'}")
    return resolve_checkpoint(steps[max(steps)])


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, 'a FIFO'), (stat.S_ISCHR, 'a character device'),
             (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'))
    return next((name for test, name in kinds if test(mode)), 'not a regular file')


def read_state_dict(path: Path, fmt: str) -> Dict[str, Any]:
    """The raw saved pytree (TrainState state dict or bare params), leaves as numpy."""
    try:
        if fmt == LEGACY_MSGPACK:
            _check_size(path, path.stat().st_size, 'is')
            tree = serialization.msgpack_restore(path.read_bytes())
        else:
            tree = _restore_orbax(path)
    except CheckpointError:
        raise
    except Exception as exc:  # every reader error means the same thing to the user
        raise CheckpointError(
            f"cannot read {fmt} checkpoint '{path}': {type(exc).__name__}: {exc}") from exc
    if not isinstance(tree, Mapping):
        raise CheckpointError(f"'{path}' holds a {type(tree).__name__}, not a checkpoint tree")
    return jax.tree_util.tree_map(np.asarray, dict(tree))


def _restore_orbax(path: Path) -> Any:
    """Restore as host numpy arrays, shaped by the checkpoint's own metadata.

    Restoring without a target on another orbax era than the writer's fails on sharding
    (§8); asking for numpy leaves avoids shardings altogether.
    """
    import orbax.checkpoint as ocp
    _check_orbax_files(path)
    checkpointer = ocp.PyTreeCheckpointer()
    metadata = checkpointer.metadata(str(path.resolve()))
    tree = getattr(metadata, 'item_metadata', metadata)
    tree = getattr(tree, 'tree', tree)
    declared = sum(int(np.prod(leaf.shape, dtype=object)) * np.dtype(leaf.dtype).itemsize
                   for leaf in jax.tree_util.tree_leaves(tree)
                   if getattr(leaf, 'shape', None) is not None)
    _check_size(path, declared, 'declares arrays of')
    restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    return checkpointer.restore(str(path.resolve()), restore_args=restore_args)


MAX_ORBAX_ENTRIES = 10_000


def _check_orbax_files(path: Path) -> None:
    """Only files and folders, and not too many: a FIFO inside would block the reader
    for ever."""
    count = 0
    for folder, subfolders, names in os.walk(path):
        for name in names + subfolders:
            count += 1
            mode = os.lstat(os.path.join(folder, name)).st_mode
            if count > MAX_ORBAX_ENTRIES or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                found = (f'more than {MAX_ORBAX_ENTRIES} entries' if count > MAX_ORBAX_ENTRIES
                         else f"'{name}', {_file_kind(mode)}")
                raise CheckpointError(f"Orbax checkpoint '{path}' holds {found}: expected "
                                      f"files and folders only")


def _check_size(path: Path, size: int, says: str) -> None:
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"'{path}' {says} {size / 2**30:.1f} GiB; a classifier checkpoint takes at most "
            f"{MAX_CHECKPOINT_BYTES / 2**30:.0f} GiB (two cameras: 0.09 GiB): refusing to read it")


def extract_params(tree: Mapping[str, Any], path: Path) -> Tuple[Params, Optional[int]]:
    if 'params' in tree:
        step = tree.get('step')
        return dict(tree['params']), None if step is None else int(np.asarray(step))
    if 'encoder_def' in tree:
        return dict(tree), None
    raise CheckpointError(
        f"'{path}' is not a classifier checkpoint: expected a TrainState "
        f"{{step, params, opt_state}} or a params tree with 'encoder_def'; "
        f"found top-level keys {sorted(tree)}")


def detect_layout(params: Mapping[str, Any], path: Path) -> CheckpointLayout:
    """Camera keys, shared vs independent backbones and binary vs n-way, from the tree."""
    encoders = params.get('encoder_def')
    if not isinstance(encoders, Mapping) or not encoders:
        raise CheckpointError(f"'{path}': params have no 'encoder_def' camera encoders; "
                              f"top-level params: {sorted(params)}")
    bad = [name for name in encoders if not name.startswith('encoder_')]
    if bad:
        raise CheckpointError(f"'{path}': encoder_def entries must be encoder_<key>, found {bad}")
    keys = tuple(sorted(name[len('encoder_'):] for name in encoders))
    owners = tuple(k for k in keys if 'pretrained_encoder' in encoders[f'encoder_{k}'])
    if not owners:
        raise CheckpointError(f"'{path}': no camera encoder holds 'pretrained_encoder' "
                              f"(cameras: {list(keys)}); the backbone params are missing")
    if owners == (min(keys),):
        backbone = 'shared'
    elif owners == keys:
        backbone = 'independent'
    else:
        raise CheckpointError(
            f"'{path}': backbone params under {['encoder_' + k for k in owners]} fit neither "
            f"layout: shared keeps one under encoder_{min(keys)} (the lexicographically "
            f"smallest key), independent keeps one under every camera {list(keys)}")
    try:
        outputs = int(np.shape(params['Dense_1']['kernel'])[-1])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"'{path}': no classifier head (Dense_1/kernel) in params") from exc
    return CheckpointLayout(keys, backbone, owners, 2 if outputs == 1 else outputs)


def _flat_leaves(tree: Mapping[str, Any]) -> Dict[str, Any]:
    return {'/'.join(str(getattr(p, 'key', p)) for p in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _flat_shapes(tree: Mapping[str, Any]) -> Dict[str, Tuple[int, ...]]:
    return {name: tuple(np.shape(leaf)) for name, leaf in _flat_leaves(tree).items()}


def check_values(params: Params, path: Path) -> None:
    """Weights are floating point and finite. A bool or int head loads and serves a constant
    probability (1.0 or 0.0); corrupt bytes inside an array load and serve NaN."""
    for name, leaf in _flat_leaves(params).items():
        values = np.asarray(leaf)
        if not np.issubdtype(values.dtype, np.floating):
            raise CheckpointError(
                f"'{path}': parameter {name} {values.shape} is {values.dtype}, expected "
                f"floating point (float32): not a classifier's weights")
        if not np.isfinite(values).all():
            bad = values.size - int(np.isfinite(values).sum())
            raise CheckpointError(
                f"'{path}': parameter {name} {values.shape} holds {bad} non-finite values "
                f"(NaN or inf) of {values.size}: the checkpoint is corrupt")


def check_tree(params: Params, spec: ClassifierSpec, path: Path) -> None:
    """Every parameter the model needs is there with the right shape, and nothing else."""
    found = _flat_shapes(params)
    expected = _flat_shapes(param_shapes(spec))
    problems = [f'missing {k} {s}' for k, s in expected.items() if k not in found]
    problems += [f'unexpected {k} {s}' for k, s in found.items() if k not in expected]
    problems += [f'{k}: expected shape {s}, found {found[k]}'
                 for k, s in expected.items() if k in found and found[k] != s]
    if problems:
        shown = '; '.join(problems[:8]) + (f'; ... ({len(problems)} in all)'
                                           if len(problems) > 8 else '')
        raise CheckpointError(f"'{path}' does not match a {describe(spec)} model: {shown}")


def describe(spec: ClassifierSpec) -> str:
    kind = 'binary' if spec.n_way == 2 else f'{spec.n_way}-way'
    return f'{kind} {spec.backbone}-backbone classifier over cameras {list(spec.image_keys)}'


def read_sidecar(checkpoint: Path) -> Optional[Dict[str, Any]]:
    path = sidecar_path(checkpoint)
    if not path.exists():
        return None
    if not path.is_file() or path.stat().st_size > MAX_SIDECAR_BYTES:
        raise CheckpointError(f"sidecar '{path}' is not a JSON file of at most "
                              f"{MAX_SIDECAR_BYTES // 1024} KiB")
    try:
        data = json.loads(path.read_text())
    except (ValueError, RecursionError) as exc:
        reason = 'nested too deeply' if isinstance(exc, RecursionError) else exc
        raise CheckpointError(f"sidecar '{path}' is not valid JSON: {reason}") from None
    keys = data.get('image_keys') if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise CheckpointError(f"sidecar '{path}' has no image_keys list of camera names")
    return data


def _camera_order(layout: CheckpointLayout, configured: Optional[Sequence[str]],
                  sidecar: Optional[Mapping[str, Any]], path: Path,
                  notes: List[str]) -> Tuple[str, ...]:
    recorded = tuple(sidecar['image_keys']) if sidecar else None
    if configured is not None:
        configured = tuple(configured)
        if set(configured) != set(layout.camera_keys):
            missing = sorted(set(configured) - set(layout.camera_keys))
            extra = sorted(set(layout.camera_keys) - set(configured))
            raise CheckpointError(
                f"'{path}' holds cameras {list(layout.camera_keys)}, configured image_keys are "
                f"{list(configured)}: not in the checkpoint {missing}, in the checkpoint but "
                f"not configured {extra}")
        if recorded is not None and recorded != configured:
            raise CheckpointError(
                f"'{path}' was trained with image_keys {list(recorded)} (recorded in "
                f"{sidecar_path(path).name}), configured {list(configured)}: the order fixes "
                f"which head rows belong to which camera, so a different order gives wrong "
                f"logits; configure {list(recorded)}")
        if recorded is None and len(configured) > 1:
            notes.append(
                f'camera order {list(configured)} taken from the configuration: an upstream '
                f'checkpoint stores encoder names, not the concatenation order, so it cannot '
                f'be verified; it must equal the classifier_keys order used in training')
        return configured
    if recorded is not None:
        return recorded
    if len(layout.camera_keys) == 1:
        return layout.camera_keys
    raise CheckpointError(
        f"'{path}' holds cameras {list(layout.camera_keys)} but no sidecar recording their "
        f"order: give image_keys in the classifier_keys order used in training (an upstream "
        f"checkpoint stores encoder names only, and a wrong order gives wrong logits)")


def load_checkpoint(path: os.PathLike, image_keys: Optional[Sequence[str]] = None,
                    backbone: Optional[str] = None) -> LoadedCheckpoint:
    """Load and validate a checkpoint against the configured cameras and backbone.

    `image_keys=None` takes the order from the sidecar (or the only camera); `backbone=None`
    accepts whatever layout the tree holds.
    """
    ckpt, fmt = resolve_checkpoint(path)
    tree = read_state_dict(ckpt, fmt)
    params, step = extract_params(tree, ckpt)
    layout = detect_layout(params, ckpt)
    if backbone is not None and backbone != layout.backbone and len(layout.camera_keys) > 1:
        raise CheckpointError(
            f"configured backbone '{backbone}' but '{ckpt}' holds a {layout.backbone} layout "
            f"(pretrained_encoder under {['encoder_' + k for k in layout.backbone_owners]})")
    sidecar = read_sidecar(ckpt)
    notes: List[str] = []
    keys = _camera_order(layout, image_keys, sidecar, ckpt, notes)
    frozen = bool(sidecar.get('frozen', True)) if sidecar else True
    spec = ClassifierSpec(keys, n_way=layout.n_way, backbone=layout.backbone, frozen=frozen)
    check_tree(params, spec, ckpt)
    check_values(params, ckpt)
    return LoadedCheckpoint(ckpt, fmt, step, params, spec, layout, sidecar, notes)


def train_state_dict(params: Params, step: int, opt_state: Any = None) -> Dict[str, Any]:
    """The `{step, params, opt_state}` dict upstream's TrainState(adam(1e-4)) restores into.

    Without an optimiser state, Adam's is initialised (zero moments, as create_classifier has).
    """
    state = train_state.TrainState.create(apply_fn=None, params=params, tx=optax.adam(1e-4))
    state = state.replace(step=np.asarray(step, np.int32))
    if opt_state is not None:
        state = state.replace(opt_state=opt_state)
    return serialization.to_state_dict(state)


def save_checkpoint(directory: os.PathLike, params: Params, spec: ClassifierSpec, step: int,
                    opt_state: Any = None, metadata: Optional[Mapping[str, Any]] = None,
                    overwrite: bool = False) -> Path:
    """Write `directory/checkpoint_<step>` (legacy flax msgpack) and its sidecar, together or
    not at all: never a checkpoint without its sidecar (a wrong camera order) or beside an
    older one's."""
    check_tree(params, spec, Path(directory))
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f'checkpoint_{step}'
    if target.exists() and not overwrite:
        raise CheckpointError(f"'{target}' exists; pass overwrite=True to replace it")
    payload = serialization.msgpack_serialize(
        jax.tree_util.tree_map(np.asarray, train_state_dict(params, step, opt_state)))
    sidecar = {
        'format_version': SIDECAR_VERSION,
        'written_by': 'hil_serl_reward',
        'image_keys': list(spec.image_keys),
        'n_way': spec.n_way,
        'backbone': spec.backbone,
        'frozen': spec.frozen,
        'step': int(step),
        **dict(metadata or {}),
    }
    write_atomically({
        sidecar_path(target): (json.dumps(sidecar, indent=2, sort_keys=True) + '\n').encode(),
        target: payload})
    return target
