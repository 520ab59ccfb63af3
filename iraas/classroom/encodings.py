"""Read a face_recognition-style encoding file without executing code from it, in bounded memory.

The file holds ``{"name": [...], "encoding": [128-d vectors, ...]}``, in one of three formats,
told apart by their first bytes:

- pickle (what face_recognition scripts write with ``pickle.dump``): read by an Unpickler that only
  resolves the numpy names needed to rebuild arrays; any other global (``os.system``, ...) is refused;
- JSON: the same dict, vectors as lists of numbers;
- npz: arrays ``name`` (strings) and ``encoding`` (N x 128), read without pickle.

Bounds: the file is at most :data:`MAX_FILE_BYTES` (checked before it is read) and holds at most
:data:`MAX_ENCODINGS`; every array's declared shape and type are checked before numpy makes room
for it (a pickle's ``_reconstruct`` / ``__setstate__`` / ``_frombuffer``, an npz member's header),
so no array is larger than :func:`max_array_bytes`, and none holds Python objects.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import pickle
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

_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_SCALAR = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}
_FROMBUFFER = {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}


class _ArrayType:
    """What the pickle's ``numpy.ndarray`` resolves to: a token for ``_reconstruct``, never callable."""

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise InvalidEncodings("the pickle calls numpy.ndarray itself; only arrays numpy pickled are allowed")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only the numpy names a pickled dict of lists of arrays needs, each one checked."""

    def __init__(self, data: bytes, max_bytes: int) -> None:
        super().__init__(io.BytesIO(data))
        self._max_bytes = max_bytes
        self._array_type = _ArrayType()

        class CheckedArray(np.ndarray):
            """A pickled array as numpy rebuilds it; its state is checked before numpy takes it."""

            def __setstate__(self, state: Any) -> None:
                # (version, shape, dtype, is_fortran, data), or the same without the version.
                if not isinstance(state, tuple) or len(state) not in (4, 5):
                    raise InvalidEncodings("an array's pickled state is not numpy's")
                shape, dtype = state[-4], state[-3]
                _checked_shape(shape, dtype, max_bytes)
                super().__setstate__(state)

        self._array_class = CheckedArray

    def find_class(self, module: str, name: str) -> object:
        where = (module, name)
        checks: dict[tuple[str, str], Callable[..., object]] = {}
        checks.update(dict.fromkeys(_RECONSTRUCT, self._reconstruct))
        checks.update(dict.fromkeys(_SCALAR, self._scalar))
        checks.update(dict.fromkeys(_FROMBUFFER, self._frombuffer))
        if where in checks:
            return checks[where]
        if where == ("numpy", "ndarray"):
            return self._array_type
        if where == ("numpy", "dtype"):
            return np.dtype  # describes a type, allocates nothing; arrays of it are checked
        if where == ("_codecs", "encode"):  # protocol 2 pickles store bytes through it
            return _latin1
        raise InvalidEncodings(f"the pickle refers to {module}.{name}; only numpy arrays are allowed")

    def _reconstruct(self, subtype: object, shape: Any, dtype: Any) -> np.ndarray:
        # numpy pickles an array as _reconstruct(ndarray, (0,), b"b") then __setstate__ with the
        # real shape and data; a larger shape here would be allocated at once, so it is checked.
        if subtype is not self._array_type:
            raise InvalidEncodings("the pickle rebuilds an array of a type other than numpy.ndarray")
        dims, kind = _checked_shape(shape, dtype, self._max_bytes)
        return np.ndarray.__new__(self._array_class, dims, kind)

    def _scalar(self, dtype: Any, *data: Any) -> object:
        _dims, kind = _checked_shape((), dtype, self._max_bytes)
        return _MULTIARRAY.scalar(kind, *data)

    def _frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
        dims, kind = _checked_shape(shape, dtype, self._max_bytes)
        if order not in ("C", "F"):
            raise InvalidEncodings(f"an array declares the memory order {order!r}")
        return np.frombuffer(buffer, dtype=kind).reshape(dims, order="F" if order == "F" else "C")


def _latin1(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` for what numpy's protocol 2 pickles use it for, and nothing else."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise InvalidEncodings(f"the pickle encodes with {encoding!r}; only latin1 bytes are allowed")
    return text.encode("latin1")


def _from_pickle(data: bytes, max_bytes: int) -> object:
    try:
        return _NumpyOnlyUnpickler(data, max_bytes).load()
    except InvalidEncodings:
        raise
    except RecursionError:
        raise InvalidEncodings("not a readable pickle: nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - any malformed pickle is a bad file, not a crash
        raise InvalidEncodings(f"not a readable pickle: {exc}") from None


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
