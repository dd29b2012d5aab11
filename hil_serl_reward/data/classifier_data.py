"""hil-serl's `classifier_data` pickles (hil-serl-classifier.md §4).

Each file is a list of transition dicts {observations, actions, next_observations, rewards,
masks, dones}; `observations[key]` is uint8 RGB (1, 128, 128, 3). Positives live in
`*success*.pkl`, negatives in `*failure*.pkl`; the label is in the file name only.
Upstream names them `{exp}_{N}_success_images_{ts}.pkl` and `{exp}_failure_images_{ts}.pkl`.
"""
import datetime
import pickle
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from hil_serl_reward.model import safe_pickle
from hil_serl_reward.model.atomic_files import check_writable, write_atomically
from hil_serl_reward.model.constants import IMAGE_SIZE


class ClassifierDataError(ValueError):
    """Missing files, or transitions that lack the configured camera keys."""


def files(folder: Path) -> Tuple[List[Path], List[Path]]:
    folder = Path(folder)
    return sorted(folder.glob('*success*.pkl')), sorted(folder.glob('*failure*.pkl'))


def load_transitions(path: Path, trusted: bool = False) -> List[Dict[str, Any]]:
    """Restricted unpickling (safe_pickle.py) unless the user trusts the file; any file that
    does not unpickle is one line."""
    try:
        data = safe_pickle.load_path(path, trusted)
    except safe_pickle.UnsafePickleError as exc:
        raise ClassifierDataError(str(exc)) from None
    except Exception as exc:  # truncated, not a pickle, or a reader error on a crafted one
        raise ClassifierDataError(f"'{path}' is not a readable pickle: "
                                  f"{type(exc).__name__}: {exc}") from None
    if not isinstance(data, list):
        raise ClassifierDataError(f"'{path}' holds a {type(data).__name__}, not a list of "
                                  f"transitions")
    return data


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f'{value.dtype} {value.shape}'
    return type(value).__name__


def stack_images(transitions: Sequence[Any], keys: Sequence[str], path: Path,
                 max_bytes: Optional[int] = None) -> Dict[str, np.ndarray]:
    """(N, 128, 128, 3) uint8 per key, the last frame of each observation; raw-observation
    transitions are skipped as upstream skips them. Every transition is checked (a dict with
    an observations dict holding uint8 (..., 128, 128, 3) images: float images would be
    cast, NaN included, without a word), and no more than `max_bytes` are stacked: a pickle
    that repeats one memoised array 80,000 times is 217 KB on disk and 3.8 GB stacked."""
    usable = []
    for index, item in enumerate(transitions):
        observations = item.get('observations') if isinstance(item, dict) else None
        if not isinstance(observations, dict):
            raise ClassifierDataError(
                f"'{path}': transition {index} is not a dict with an 'observations' dict "
                f"(found {_describe(item)})")
        if 'images' not in observations:
            usable.append((index, observations))
    frame_shape = (*IMAGE_SIZE, 3)
    images = {key: [] for key in keys}
    for index, observations in usable:
        for key in keys:
            if key not in observations:
                raise ClassifierDataError(f"'{path}': observations lack camera '{key}' "
                                          f"(they hold {sorted(map(str, observations))})")
            image = observations[key]
            if not (isinstance(image, np.ndarray) and image.dtype == np.uint8
                    and image.ndim in (3, 4) and image.shape[-3:] == frame_shape):
                raise ClassifierDataError(
                    f"'{path}': transition {index}, camera '{key}': expected uint8 images "
                    f"(128, 128, 3) or (T, 128, 128, 3), found {_describe(image)}")
            images[key].append(image)
    needed = len(usable) * len(keys) * int(np.prod(frame_shape))
    if max_bytes is not None and needed > max_bytes:
        raise ClassifierDataError(
            f"'{path}': its {len(usable)} transitions hold {needed / 2**20:.0f} MiB of images, "
            f"more than the file's own {max_bytes / 2**20:.1f} MiB: they repeat shared "
            f"arrays (a crafted file)")
    out = {}
    for key, frames in images.items():
        stacked = np.empty((len(frames), *frame_shape), np.uint8)
        for row, image in enumerate(frames):
            stacked[row] = image.reshape(-1, *frame_shape)[-1]
        out[key] = stacked
    return out


def load_classifier_data(folder: Path, keys: Sequence[str], trusted: bool = False
                         ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """All images per key and the labels (1 success, 0 failure), successes first."""
    successes, failures = files(folder)
    if not successes and not failures:
        raise ClassifierDataError(f"no *success*.pkl or *failure*.pkl in '{folder}'")
    parts, labels = [], []
    for label, paths in ((1, successes), (0, failures)):
        for path in paths:
            images = stack_images(load_transitions(path, trusted), keys, path,
                                  max_bytes=None if trusted else path.stat().st_size)
            parts.append(images)
            labels.append(np.full(len(images[keys[0]]), label, np.int32))
    images = {k: np.concatenate([p[k] for p in parts]) for k in keys}
    return images, np.concatenate(labels)


def transition(images: Dict[str, np.ndarray], extra: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """One upstream-shaped transition: each camera (1, 128, 128, 3), zero action and reward."""
    observations = {k: v[None] for k, v in images.items()}
    observations.update(extra)
    return {'observations': observations, 'actions': np.zeros(1, np.float32),
            'next_observations': observations, 'rewards': 0.0, 'masks': 1.0, 'dones': False}


def file_names(experiment: str, successes: int, when: datetime.datetime) -> Tuple[str, str]:
    stamp = when.strftime('%Y-%m-%d_%H-%M-%S')
    return (f'{experiment}_{successes}_success_images_{stamp}.pkl',
            f'{experiment}_failure_images_{stamp}.pkl')


class DataWriteError(RuntimeError):
    """The output folder or a chunk file could not be written. Transitions of a chunk that
    failed stay pending (`unwritten`), and no partial file is left behind."""


class ClassifierDataWriter:
    """Collects labelled transitions and writes them in chunks, each chunk a pair of files
    named as upstream names them, so nothing recorded is lost to a crash or Ctrl-C."""

    def __init__(self, folder: Path, experiment: str, flush_every: int,
                 clock=datetime.datetime.now) -> None:
        self.folder = Path(folder)
        try:
            check_writable(self.folder)
        except OSError as exc:
            raise DataWriteError(f"output folder '{self.folder}' is not writable: {exc}"
                                 ) from exc
        self.experiment = experiment
        self.flush_every = flush_every
        self._clock = clock
        self._pending: Dict[bool, List[Dict[str, Any]]] = {True: [], False: []}
        self.successes = 0
        self.failures = 0
        self.written: List[Path] = []

    def add(self, item: Dict[str, Any], success: bool) -> None:
        self._pending[success].append(item)
        if success:
            self.successes += 1
        else:
            self.failures += 1
        if sum(len(v) for v in self._pending.values()) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        names = file_names(self.experiment, len(self._pending[True]), self._clock())
        for success, name in zip((True, False), names):
            if not self._pending[success]:
                continue
            path = self.folder / name
            chunk = 1
            while path.exists():
                chunk += 1
                path = self.folder / name.replace('.pkl', f'_{chunk}.pkl')
            try:
                write_pickle(path, self._pending[success])
            except OSError as exc:
                raise DataWriteError(f'cannot write {path}: {exc}') from exc
            self.written.append(path)
            self._pending[success] = []

    def discard_unwritten(self) -> None:
        """Forget what could not be written (a writer that goes on after a failed write
        would otherwise hold it, and retry it, for ever)."""
        self._pending = {True: [], False: []}

    @property
    def unwritten(self) -> Tuple[int, int]:
        """(successes, failures) recorded but not in a file yet."""
        return len(self._pending[True]), len(self._pending[False])


def write_pickle(path: Path, transitions: List[Dict[str, Any]]) -> None:
    """Atomic write: a crash or a full disk mid-write never leaves a truncated pickle, nor
    the temporary file."""
    write_atomically({path: pickle.dumps(transitions, protocol=pickle.HIGHEST_PROTOCOL)})
