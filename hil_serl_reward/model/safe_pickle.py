"""Unpickling restricted to what hil-serl's pickles hold.

`classifier_data/*.pkl` and `resnet10_params.pkl` are pickles, and an unrestricted
`pickle.load` runs whatever code a crafted file names. These files hold only dicts, lists,
tuples, numbers, strings, numpy arrays and dtypes (and flax FrozenDicts in older weight files):
everything else is refused, with an explicit opt-out for files the user trusts.
"""
import argparse
import pickle
from pathlib import Path
from typing import Any, BinaryIO

ALLOWED = {
    ('numpy', 'ndarray'), ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),
    ('numpy.core.numeric', '_frombuffer'), ('numpy._core.numeric', '_frombuffer'),
    ('_codecs', 'encode'),                      # bytes in protocol-2 pickles of arrays
    ('collections', 'OrderedDict'),
    ('flax.core.frozen_dict', 'FrozenDict'),
}
TRUST_HINT = 'pass --trust-pickles (trusted=True) only for a file you trust'


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a callable outside ALLOWED: a crafted file, or not hil-serl's format."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise UnsafePickleError(
                f'refusing {module}.{name}: hil-serl pickles hold only dicts, lists, numbers, '
                f'strings and numpy arrays, and unpickling anything else can run code; '
                f'{TRUST_HINT}')
        return super().find_class(module, name)


def load(file: BinaryIO, trusted: bool = False) -> Any:
    return pickle.load(file) if trusted else _RestrictedUnpickler(file).load()


def load_path(path: Path, trusted: bool = False) -> Any:
    with Path(path).open('rb') as f:
        try:
            return load(f, trusted)
        except UnsafePickleError as exc:
            raise UnsafePickleError(f"'{path}': {exc}") from None


def add_trust_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """The opt-out flag every tool that reads these pickles offers."""
    parser.add_argument('--trust-pickles', action='store_true',
                        help=f'unpickle the {what} without restriction (a pickle can run '
                        f'code: only for files you trust); default: dicts, lists, numbers, '
                        f'strings and numpy arrays only')
