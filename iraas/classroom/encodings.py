"""Read a face_recognition-style encoding file without executing code from it, in bounded memory.

The file holds ``{"name": [...], "encoding": [128-d vectors, ...]}``, in one of three formats,
told apart by their first bytes:

- pickle (what face_recognition scripts write with ``pickle.dump``): parsed opcode by opcode, never
  unpickled; only dicts, lists, strings, numbers and float arrays as numpy pickles them are built,
  and anything else (``os.system``, another call, a dtype's forged state, ...) is refused;
- JSON: the same dict, vectors as lists of numbers;
- npz: arrays ``name`` (strings) and ``encoding`` (N x 128), read without pickle.

Bounds: the file is at most :data:`MAX_FILE_BYTES` (checked before it is read) and holds at most
:data:`MAX_ENCODINGS`; every array's declared shape and type are checked before numpy makes room
for it (a pickle's ``_reconstruct`` state or ``_frombuffer``, an npz member's header),
so no array is larger than :func:`max_array_bytes`, and none holds Python objects.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import pickletools
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

try:  # where numpy.dtype's scalars are built: numpy 2, then numpy 1
    _MULTIARRAY = importlib.import_module("numpy._core.multiarray")
except ImportError:  # pragma: no cover - numpy 1
    _MULTIARRAY = importlib.import_module("numpy.core.multiarray")

# 10,000 dlib encodings are 10.5 MB as a float64 pickle, 25 MB as JSON: a course is a few hundred.
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_ENCODINGS = 10_000


class InvalidEncodings(ValueError):
    """The file is not an encoding file, asks to run code, or is over a bound."""


def max_array_bytes(descriptor_size: int) -> int:
    """The largest array a file may declare: MAX_ENCODINGS float64 vectors of the engine's size."""
    return MAX_ENCODINGS * descriptor_size * 8


def _checked_shape(shape: Any, dtype: Any, max_bytes: int) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an array declares, refused if it would hold objects or be too large."""
    try:
        kind = np.dtype(dtype)
        dims = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidEncodings(f"an array declares an unreadable shape or type: {exc}") from None
    if kind.hasobject:
        raise InvalidEncodings("an array holds Python objects; only numbers and strings are allowed")
    if any(d < 0 for d in dims):
        raise InvalidEncodings(f"an array declares a negative dimension: {dims}")
    size = math.prod(dims) * kind.itemsize
    if size > max_bytes:
        raise InvalidEncodings(
            f"an array declares {dims} of {kind} ({size:,} bytes); the limit is {max_bytes:,} bytes"
        )
    return dims, kind


# --- pickle ---------------------------------------------------------------------------------------
#
# The pickle is parsed, never unpickled: its opcodes are read one by one (pickletools.genops) and only
# what a face_recognition file is made of is built: dicts, lists, tuples, strings, numbers, and numpy
# arrays exactly as numpy pickles them (``_reconstruct`` then its state, or ``_frombuffer`` from
# protocol 5), of float64 or float32 in either byte order. A dtype's pickled state must be the plain
# one numpy writes for those types: the state is what a forged file rewrote to declare a field of
# Python objects while numpy still reported none, and numpy then read the array's bytes as pointers.
# No other global, no other call, no other state, no out-of-band buffer: the file is refused instead.

_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_SCALAR = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}
_FROMBUFFER = {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}
_NDARRAY, _DTYPE, _CODECS_ENCODE = ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")
_FLOAT_CODES = {"f8", "f4"}
_MAX_NAME_CHARS = 1024  # a text array's element (names): numpy's "U<n>"
_BYTE_ORDERS = {"<", ">"}
_PUSH_VALUE: dict[str, Callable[[Any], Any]] = {
    "NONE": lambda arg: None, "NEWTRUE": lambda arg: True, "NEWFALSE": lambda arg: False,
    "EMPTY_DICT": lambda arg: {}, "EMPTY_LIST": lambda arg: [], "EMPTY_TUPLE": lambda arg: (),
}
_PUSH_ARG = {
    "BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG", "BINFLOAT", "FLOAT",
    "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
}
_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
_MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}


class _Global:
    """A global the file names: only a token, never the object itself."""

    def __init__(self, module: str, name: str) -> None:
        self.where = (module, name)


class _Dtype:
    """``numpy.dtype(code, False, True)`` as numpy pickles a float or a text type; usable once its
    state, which must be numpy's plain one for it, has been applied."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.order: str | None = None

    def build(self, state: Any) -> None:
        # A text type's state names its size (4 bytes a character), alignment and flags; a float's none.
        chars = int(self.code[1:]) if self.code.startswith("U") else 0
        tail = (4 * chars, 4, 8) if chars else (-1, -1, 0)
        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in _BYTE_ORDERS
                and state[2:] == (None, None, None, *tail)):
            raise InvalidEncodings("a dtype's pickled state is not numpy's for a float or text type (fields, "
                                   "sub-arrays or objects are not allowed)")
        self.order = state[1]

    def dtype(self) -> np.dtype:
        if self.order is None:
            raise InvalidEncodings("a dtype is used before its state was set")
        return np.dtype(self.order + self.code)


class _Array:
    """``_reconstruct(ndarray, (0,), b"b")``: an array waiting for its state (shape, dtype, data)."""

    def __init__(self) -> None:
        self.value: np.ndarray | None = None


def _allowed_code(code: Any) -> bool:
    """A float64 or float32 type, or numpy's text type of up to _MAX_NAME_CHARS characters (names)."""
    if code in _FLOAT_CODES:
        return True
    return isinstance(code, str) and code[:1] == "U" and code[1:].isdigit() and 0 < int(code[1:]) <= _MAX_NAME_CHARS


def _array_from(raw: Any, dtype: Any, shape: Any, fortran: bool, max_bytes: int) -> np.ndarray:
    """The array ``raw`` holds, once its dtype, shape and length are checked."""
    if not isinstance(dtype, _Dtype):
        raise InvalidEncodings("an array's type is not a float or text dtype")
    if not isinstance(raw, (bytes, bytearray)):
        raise InvalidEncodings("an array's data is not bytes")
    dims, kind = _checked_shape(shape, dtype.dtype(), max_bytes)
    if len(raw) != math.prod(dims) * kind.itemsize:
        raise InvalidEncodings(f"an array declares {dims} of {kind} but holds {len(raw):,} bytes")
    return np.frombuffer(bytes(raw), dtype=kind).reshape(dims, order="F" if fortran else "C").copy()


def _reduce(function: Any, args: Any, max_bytes: int) -> Any:
    """The one call a pickle may make: to build a numpy array, a float dtype, or latin1 bytes."""
    where = function.where if isinstance(function, _Global) else None
    if not isinstance(args, tuple):
        raise InvalidEncodings("the pickle calls something with arguments that are not a tuple")
    if where in _RECONSTRUCT:
        if len(args) != 3 or not (isinstance(args[0], _Global) and args[0].where == _NDARRAY):
            raise InvalidEncodings("the pickle rebuilds an array of a type other than numpy.ndarray")
        # The placeholder numpy writes is ((0,), b"b"); another shape is checked (nothing is allocated here).
        _checked_shape(args[1], args[2] if isinstance(args[2], (str, bytes)) else "b", max_bytes)
        return _Array()
    if where == _DTYPE:
        code = args[0] if args else None
        if code == "O" or code == "O8":
            raise InvalidEncodings("an array holds Python objects; only numbers and strings are allowed")
        if len(args) != 3 or not _allowed_code(code) or args[1:] != (False, True):
            raise InvalidEncodings(f"the pickle declares the dtype {code!r}; only floats and text are allowed")
        return _Dtype(str(code))
    if where in _FROMBUFFER:
        if len(args) != 4 or args[3] not in ("C", "F"):
            raise InvalidEncodings("an array declares an unreadable memory order")
        return _array_from(args[0], args[1], args[2], args[3] == "F", max_bytes)
    if where in _SCALAR:
        if len(args) != 2:
            raise InvalidEncodings("a pickled number is not numpy's")
        return float(_array_from(args[1], args[0], (), False, max_bytes))
    if where == _CODECS_ENCODE:  # protocol 2 pickles store bytes as latin1 text
        if len(args) != 2 or args[1] not in ("latin1", "latin-1") or not isinstance(args[0], str):
            raise InvalidEncodings(f"the pickle encodes with {args[1:]!r}; only latin1 bytes are allowed")
        return args[0].encode("latin1")
    if where == _NDARRAY:
        raise InvalidEncodings("the pickle calls numpy.ndarray itself; only arrays numpy pickled are allowed")
    raise InvalidEncodings("the pickle calls something other than numpy's array and dtype builders")


def _build(target: Any, state: Any, max_bytes: int) -> None:
    """A ``BUILD``: a state applied to a dtype or an array numpy pickled, and to nothing else."""
    if isinstance(target, _Dtype):
        target.build(state)
    elif isinstance(target, _Array):
        # (version, shape, dtype, is_fortran, data), or the same without the version.
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise InvalidEncodings("an array's pickled state is not numpy's")
        shape, dtype, fortran, raw = state[-4:]
        target.value = _array_from(raw, dtype, shape, bool(fortran), max_bytes)
    else:
        raise InvalidEncodings("the pickle sets the state of something other than a numpy array or dtype")


def _value(item: Any) -> Any:
    """What the parsed object is, with arrays in place of their builders."""
    if isinstance(item, _Array):
        if item.value is None:
            raise InvalidEncodings("an array's state is missing")
        return item.value
    if isinstance(item, (_Global, _Dtype)):
        raise InvalidEncodings("the pickle holds a type where data was expected")
    return item


def _from_pickle(data: bytes, max_bytes: int) -> object:
    """The object the pickle describes, built by reading its opcodes (no unpickling, see above)."""
    stack: list[Any] = []
    marks: list[list[Any]] = []
    memo: dict[int, Any] = {}

    def pop_mark() -> list[Any]:
        nonlocal stack
        if not marks:
            raise InvalidEncodings("not a readable pickle: an item list without its mark")
        items, stack = stack, marks.pop()
        return items

    try:
        for opcode, arg, _pos in pickletools.genops(data):
            name = opcode.name
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                if len(stack) != 1 or marks:
                    raise InvalidEncodings("not a readable pickle: it ends with items left over")
                return _resolve(stack[0])
            if name in _PUSH_VALUE:
                stack.append(_PUSH_VALUE[name](arg))
            elif name in _PUSH_ARG:
                stack.append(arg)
            elif name == "MARK":
                marks.append(stack)
                stack = []
            elif name in _MEMO_PUT:
                memo[int(str(arg))] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in _MEMO_GET:
                stack.append(memo[int(str(arg))])
            elif name in ("GLOBAL", "STACK_GLOBAL"):
                if name == "GLOBAL":
                    module, _, attribute = str(arg).partition(" ")
                else:
                    module, attribute = stack.pop(-2), stack.pop()
                if not isinstance(module, str) or not isinstance(attribute, str):
                    raise InvalidEncodings("not a readable pickle: a global named by something other than text")
                where = (module, attribute)
                if where not in _RECONSTRUCT | _SCALAR | _FROMBUFFER | {_NDARRAY, _DTYPE, _CODECS_ENCODE}:
                    raise InvalidEncodings(f"the pickle refers to {module}.{attribute}; only numpy arrays are allowed")
                stack.append(_Global(module, attribute))
            elif name == "REDUCE":
                args = stack.pop()
                stack.append(_reduce(stack.pop(), tuple(_value(a) if isinstance(a, _Array) else a for a in args)
                                     if isinstance(args, tuple) else args, max_bytes))
            elif name == "BUILD":
                state = stack.pop()
                _build(stack[-1], state, max_bytes)
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                count = int(name[-1])
                items = stack[-count:]
                del stack[-count:]
                stack.append(tuple(items))
            elif name == "TUPLE":  # (pop_mark() rebinds ``stack``: take the items first, then push)
                items = pop_mark()
                stack.append(tuple(items))
            elif name == "LIST":
                items = pop_mark()
                stack.append(items)
            elif name == "DICT":
                items = pop_mark()
                stack.append({_key(k): v for k, v in zip(items[::2], items[1::2], strict=True)})
            elif name == "APPEND":
                value = stack.pop()
                _container(stack[-1], list).append(value)
            elif name == "APPENDS":
                items = pop_mark()
                _container(stack[-1], list).extend(items)
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                _container(stack[-1], dict)[_key(key)] = value
            elif name == "SETITEMS":
                items = pop_mark()
                target = _container(stack[-1], dict)
                for key, value in zip(items[::2], items[1::2], strict=True):
                    target[_key(key)] = value
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                pop_mark()
            else:
                raise InvalidEncodings(f"the pickle uses {name}, which an encoding file does not need")
        raise InvalidEncodings("not a readable pickle: no STOP")
    except InvalidEncodings:
        raise
    except (ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
        raise InvalidEncodings(f"not a readable pickle: {exc}") from None


def _container(item: Any, kind: type) -> Any:
    if not isinstance(item, kind):
        raise InvalidEncodings(f"not a readable pickle: items added to something other than a {kind.__name__}")
    return item


def _key(key: Any) -> Any:
    if not isinstance(key, (str, int)):
        raise InvalidEncodings("not a readable pickle: a dict key that is not text or a number")
    return key


def _resolve(item: Any) -> Any:
    """The parsed object with every array builder replaced by its array (iteratively: no recursion)."""
    root = [item]
    todo: list[tuple[Any, Any]] = [(root, 0)]
    seen: set[int] = set()
    while todo:
        container, key = todo.pop()
        value = _value(container[key])
        container[key] = value
        if isinstance(value, (list, dict)) and id(value) not in seen:
            seen.add(id(value))
            keys = range(len(value)) if isinstance(value, list) else list(value)
            todo.extend((value, k) for k in keys)
        elif isinstance(value, tuple):
            items = list(value)
            for index in range(len(items)):
                items[index] = _value(items[index])
            container[key] = tuple(items)
    return root[0]


# --- npz ------------------------------------------------------------------------------------------


def _from_npz(data: bytes, max_bytes: int) -> dict:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {key: _npz_member(archive, key, max_bytes) for key in ("name", "encoding")}
    except InvalidEncodings:
        raise
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InvalidEncodings(f"not an npz with 'name' and 'encoding' arrays: {exc}") from None


def _npz_member(archive: zipfile.ZipFile, key: str, max_bytes: int) -> np.ndarray:
    """One ``.npy`` member: its header read and checked, then exactly the bytes it declares."""
    with archive.open(f"{key}.npy") as member:
        version = npy_format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(member)
        else:
            raise InvalidEncodings(f"{key}.npy is in .npy format {version}; 1.0 and 2.0 are read")
        dims, kind = _checked_shape(shape, dtype, max_bytes)
        size = math.prod(dims) * kind.itemsize
        raw = member.read(size)  # at most what the (checked) header declares
    if len(raw) != size:
        raise InvalidEncodings(f"{key}.npy is truncated: {len(raw):,} of {size:,} bytes")
    return np.frombuffer(raw, dtype=kind).reshape(dims, order="F" if fortran else "C")


# --- the file -------------------------------------------------------------------------------------


def read_encodings(path: str | Path, descriptor_size: int) -> list[tuple[str, np.ndarray]]:
    """(name, float32 vector) pairs from the file; raise InvalidEncodings naming the problem.

    ``descriptor_size`` is the engine's: face_recognition files hold dlib's 128-d descriptors.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InvalidEncodings(f"{path} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes")
    data = path.read_bytes()
    max_bytes = max_array_bytes(descriptor_size)
    if data[:1] == b"\x80" or data[:1] in (b"(", b"}"):  # pickle protocol 2+ / protocol 0-1
        content = _from_pickle(data, max_bytes)
    elif data[:2] == b"PK":
        content = _from_npz(data, max_bytes)
    else:
        try:
            content = json.loads(data)
        except RecursionError:
            raise InvalidEncodings(f"{path} is JSON nested too deeply") from None
        except ValueError:
            raise InvalidEncodings(f"{path} is neither a pickle, an npz nor JSON") from None
    if not isinstance(content, dict) or "name" not in content or "encoding" not in content:
        raise InvalidEncodings("expected a dict with lists under 'name' and 'encoding'")
    names, vectors = _sequence(content["name"], "name"), _sequence(content["encoding"], "encoding")
    if len(names) != len(vectors):
        raise InvalidEncodings(f"{len(names)} names but {len(vectors)} encodings")
    pairs = []
    for index, (name, vector) in enumerate(zip(names, vectors, strict=True)):
        # The size first: a vector is converted only once it is known to be one descriptor long.
        length = vector.size if isinstance(vector, np.ndarray) else len(vector) if isinstance(vector, (list, tuple)) else -1
        if length != descriptor_size:
            raise InvalidEncodings(f"encoding {index} is not a vector of {descriptor_size} numbers")
        try:
            array = np.asarray(vector, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError):
            raise InvalidEncodings(f"encoding {index} is not a vector of numbers") from None
        if array.shape != (descriptor_size,) or not np.isfinite(array).all():
            raise InvalidEncodings(
                f"encoding {index} has shape {array.shape}; expected {descriptor_size} finite numbers"
            )
        if isinstance(name, np.str_):
            name = str(name)
        if not isinstance(name, str) or not name.strip():
            raise InvalidEncodings(f"name {index} is not a non-empty string")
        pairs.append((name.strip(), array))
    return pairs


def _sequence(value: Any, key: str) -> list[Any]:
    """``value`` as a list of at most MAX_ENCODINGS items, counted before anything is converted."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            raise InvalidEncodings(f"{key!r} is not a list")
        count = value.shape[0]
    elif isinstance(value, (list, tuple)):
        count = len(value)
    else:
        raise InvalidEncodings(f"{key!r} is not a list")
    if count > MAX_ENCODINGS:
        raise InvalidEncodings(f"{count:,} entries under {key!r}; a file holds at most {MAX_ENCODINGS:,}")
    return list(value)
