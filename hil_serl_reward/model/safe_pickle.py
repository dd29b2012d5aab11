"""Unpickling restricted to what hil-serl's pickles hold, checked as it is built.

`classifier_data/*.pkl` and `resnet10_params.pkl` are pickles, and an unrestricted
`pickle.load` runs whatever code a crafted file names. These files hold only dicts, lists,
tuples, numbers, strings, numpy arrays and dtypes (and flax FrozenDicts in older weight
files). An allow-list of globals alone is not enough: numpy's own reconstruction functions,
driven with crafted arguments, build an array with an object field over attacker-chosen
pointers (a segfault), allocate 1.5 GB from a 424-byte file, and `_codecs.encode` with
punycode spends minutes on 96 KB. So this unpickler (the standard library's pure-Python
one, with these opcodes replaced) checks every step:

- a global is looked up only in ALLOWED, and stands for a checked function, never for
  numpy's own: a dtype is one of the plain numeric ones (no fields, no objects, native byte
  order); an array gets its bytes in one piece, exactly as many as its shape and dtype
  declare (nothing is allocated before they are there); text becomes bytes only as latin-1;
- REDUCE calls only those functions, BUILD only completes such arrays and dtypes, and the
  opcodes that make class instances (NEWOBJ, OBJ, INST, extension codes) are refused;
- nothing the file declares is read beyond the file's own size.

Anything else is refused with UnsafePickleError, with an explicit opt-out for trusted files.
"""
import argparse
import collections
import io
import os
import pickle
import struct
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Tuple

import numpy as np

TRUST_HINT = 'pass --trust-pickles (trusted=True) only for a file you trust'
# dtype strings numpy writes for plain numeric arrays and scalars ('|b1', '<f4', ...)
_NUMERIC_KINDS = 'biufc'


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names or does something outside what hil-serl's files hold."""


def _refuse(what: str) -> UnsafePickleError:
    return UnsafePickleError(
        f'refusing {what}: hil-serl pickles hold only dicts, lists, numbers, strings and '
        f'numpy arrays, and unpickling anything else can run code or exhaust memory; '
        f'{TRUST_HINT}')


def _plain_dtype(dtype: Any) -> np.dtype:
    if not (isinstance(dtype, np.dtype) and dtype.kind in _NUMERIC_KINDS
            and dtype.fields is None and dtype.subdtype is None and dtype.isnative):
        raise _refuse(f"dtype '{dtype}' (only plain numeric dtypes of this machine)")
    return dtype


def _dtype(spec: Any, align: bool = False, copy: bool = True) -> np.dtype:
    if not isinstance(spec, str) or len(spec) > 4:
        raise _refuse(f'dtype {spec!r}')
    try:
        return _plain_dtype(np.dtype(spec))
    except TypeError:
        raise _refuse(f'dtype {spec!r}') from None


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    """numpy's first step of rebuilding an array: an empty one, filled by BUILD."""
    if subtype is not np.ndarray or shape != (0,):
        raise _refuse(f'_reconstruct({subtype!r}, {shape!r}) (only an empty ndarray)')
    return np.ndarray((0,), np.int8)


def _check_array(data: Any, dtype: Any, shape: Any) -> np.dtype:
    """An array's parts as numpy would take them, and exactly enough bytes for them."""
    dtype = _plain_dtype(dtype)
    if not isinstance(data, (bytes, bytearray)):
        raise _refuse(f'array data of type {type(data).__name__} (only bytes)')
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise _refuse(f'array shape {shape!r}')
    if int(np.prod(shape, dtype=object)) * dtype.itemsize != len(data):
        raise _refuse(f'an array of shape {shape} {dtype} over {len(data)} bytes')
    return dtype


def _array_from_bytes(data: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    dtype = _check_array(data, dtype, shape)
    return np.frombuffer(bytearray(data), dtype).reshape(shape, order=order)


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    """Protocol 5's form of an array."""
    if order not in ('C', 'F'):
        raise _refuse(f'array order {order!r}')
    return _array_from_bytes(buffer, dtype, shape, order)


def _scalar(dtype: Any, data: Any) -> Any:
    return _array_from_bytes(data, dtype, (), 'C')[()]


def _encode(text: Any, encoding: str = 'utf-8') -> bytes:
    """Protocol 2 stores bytes as latin-1 text; any other codec is refused (punycode took
    159 s on 96 KB)."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise _refuse(f'_codecs.encode(..., {encoding!r}) (only latin-1 text)')
    return text.encode('latin-1')


def _frozen_dict(mapping: Any = ()) -> Dict[Any, Any]:
    """An older weights file's FrozenDict, read as the dict it wraps."""
    if not isinstance(mapping, dict):
        raise _refuse(f'FrozenDict of {type(mapping).__name__}')
    return dict(mapping)


def _ordered_dict(*args: Any) -> Dict[Any, Any]:
    if args:
        raise _refuse('OrderedDict with arguments')
    return collections.OrderedDict()


ALLOWED: Dict[Tuple[str, str], Any] = {
    ('numpy', 'ndarray'): np.ndarray,         # only as _reconstruct's first argument
    ('numpy', 'dtype'): _dtype,
    ('collections', 'OrderedDict'): _ordered_dict,
    ('_codecs', 'encode'): _encode,
    ('flax.core.frozen_dict', 'FrozenDict'): _frozen_dict,
    **{(f'numpy.{core}.{module}', name): function
       for core in ('core', '_core')
       for module, name, function in (('multiarray', '_reconstruct', _reconstruct),
                                      ('multiarray', 'scalar', _scalar),
                                      ('numeric', '_frombuffer', _frombuffer))},
}
_CALLABLE = frozenset(function for function in ALLOWED.values() if function is not np.ndarray)


def _array_state(array: np.ndarray, state: Any) -> None:
    """BUILD of `_reconstruct`'s empty array: (version, shape, dtype, fortran, bytes),
    filled in place (the empty array may already be in the memo)."""
    if not (isinstance(state, tuple) and len(state) == 5 and array.size == 0):
        raise _refuse('an array state that is not (version, shape, dtype, fortran, bytes)')
    version, shape, dtype, fortran, data = state
    _check_array(data, dtype, shape)
    array.__setstate__((version, shape, dtype, bool(fortran), data))


def _dtype_state(dtype: np.dtype, state: Any) -> None:
    """BUILD of a dtype: numpy's state may add fields, sub-arrays or flags (how an object
    field is smuggled in); only the state of the plain dtype itself is accepted."""
    expected = dtype.__reduce__()[2]
    if state != expected:
        raise _refuse(f'dtype state {state!r} for {dtype} (expected {expected!r})')


class _BoundedReader:
    """The file, refusing any read the file cannot satisfy: a declared length is never
    allocated before it is known to be there."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        self._file, self._left = file, size

    def read(self, n: int) -> bytes:
        if n > self._left:
            raise UnsafePickleError(f'the pickle declares {n} bytes where {self._left} are '
                                    f'left in the file (truncated or crafted)')
        data = self._file.read(n)
        self._left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self._file.readline(min(self._left, 1 << 20))
        self._left -= len(line)
        return line


def _refusing(opcode: str) -> Callable[[Any], None]:
    def refuse(self: Any) -> None:
        raise _refuse(f'the {opcode} opcode (it makes class instances)')
    return refuse


class _RestrictedUnpickler(pickle._Unpickler):  # the pure-Python one: its steps can be replaced
    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise _refuse(f'{module}.{name}')
        return ALLOWED[(module, name)]

    def load_reduce(self) -> None:
        args = self.stack.pop()
        function = self.stack[-1]
        if function not in _CALLABLE or not isinstance(args, tuple):
            raise _refuse(f'calling {function!r}')
        self.stack[-1] = function(*args)
    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_build(self) -> None:
        state = self.stack.pop()
        target = self.stack[-1]
        if type(target) is np.ndarray:
            _array_state(target, state)
        elif isinstance(target, np.dtype):
            _dtype_state(target, state)
        else:
            raise _refuse(f'setting the state of a {type(target).__name__}')
    dispatch[pickle.BUILD[0]] = load_build

    def load_bytearray8(self) -> None:
        """The standard one allocates the declared length before reading it."""
        length, = struct.unpack('<Q', self.read(8))
        self.append(bytearray(self.read(length)))
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    for _name in ('NEWOBJ', 'NEWOBJ_EX', 'OBJ', 'INST', 'EXT1', 'EXT2', 'EXT4'):
        dispatch[getattr(pickle, _name)[0]] = _refusing(_name)
    del _name


def load(file: BinaryIO, trusted: bool = False) -> Any:
    if trusted:
        return pickle.load(file)
    try:
        size = os.fstat(file.fileno()).st_size - file.tell()
    except (AttributeError, OSError, io.UnsupportedOperation):
        data = file.read()
        file, size = io.BytesIO(data), len(data)
    return _RestrictedUnpickler(_BoundedReader(file, size)).load()


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
