"""Read a face_recognition-style encoding file without executing code from it.

The file holds ``{"name": [...], "encoding": [128-d vectors, ...]}``, in one of three formats,
told apart by their first bytes:

- pickle (what face_recognition scripts write with ``pickle.dump``): read by an Unpickler that only
  resolves the numpy names needed to rebuild arrays; any other global (``os.system``, ...) is refused;
- JSON: the same dict, vectors as lists of numbers;
- npz: arrays ``name`` (strings) and ``encoding`` (N x 128), read with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np

MAX_FILE_BYTES = 64 * 1024 * 1024

# The only globals a pickled dict of lists of numpy arrays needs (numpy 1.x and 2.x names).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # protocol 2 pickles store bytes through it
}


class InvalidEncodings(ValueError):
    """The file is not an encoding file, or it asks to run code."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise InvalidEncodings(f"the pickle refers to {module}.{name}; only numpy arrays are allowed")


def _from_pickle(data: bytes) -> object:
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except InvalidEncodings:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed pickle is a bad file, not a crash
        raise InvalidEncodings(f"not a readable pickle: {exc}") from None


def _from_npz(data: bytes) -> dict:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {"name": [str(n) for n in archive["name"]], "encoding": list(archive["encoding"])}
    except (KeyError, ValueError, OSError) as exc:
        raise InvalidEncodings(f"not an npz with 'name' and 'encoding' arrays: {exc}") from None


def read_encodings(path: str | Path, descriptor_size: int) -> list[tuple[str, np.ndarray]]:
    """(name, float32 vector) pairs from the file; raise InvalidEncodings naming the problem.

    ``descriptor_size`` is the engine's: face_recognition files hold dlib's 128-d descriptors.
    """
    path = Path(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidEncodings(f"{path} is larger than {MAX_FILE_BYTES} bytes")
    data = path.read_bytes()
    if data[:1] == b"\x80" or data[:1] in (b"(", b"}"):  # pickle protocol 2+ / protocol 0-1
        content = _from_pickle(data)
    elif data[:2] == b"PK":
        content = _from_npz(data)
    else:
        try:
            content = json.loads(data)
        except ValueError:
            raise InvalidEncodings(f"{path} is neither a pickle, an npz nor JSON") from None
    if not isinstance(content, dict) or "name" not in content or "encoding" not in content:
        raise InvalidEncodings("expected a dict with lists under 'name' and 'encoding'")
    names, vectors = list(content["name"]), list(content["encoding"])
    if len(names) != len(vectors):
        raise InvalidEncodings(f"{len(names)} names but {len(vectors)} encodings")
    pairs = []
    for index, (name, vector) in enumerate(zip(names, vectors, strict=True)):
        try:
            array = np.asarray(vector, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError):
            raise InvalidEncodings(f"encoding {index} is not a vector of numbers") from None
        if array.shape != (descriptor_size,) or not np.isfinite(array).all():
            raise InvalidEncodings(
                f"encoding {index} has shape {array.shape}; expected {descriptor_size} finite numbers"
            )
        if not isinstance(name, str) or not name.strip():
            raise InvalidEncodings(f"name {index} is not a non-empty string")
        pairs.append((name.strip(), array))
    return pairs
