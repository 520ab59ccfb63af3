"""iraas/classroom/encodings.py: an encoding file is bounded before numpy builds anything from it:
file size, count, every array's shape.

The findings these pin: a 119-byte pickle made 1.9 GB of array before the shape check, and a 250 KB
npz 446 MB. Memory is tracemalloc's peak (numpy reports its array buffers to it), in bytes.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from iraas.classroom.encodings import MAX_ENCODINGS, MAX_FILE_BYTES, InvalidEncodings, read_encodings

SIZE = 128  # dlib's descriptors
SMALL = 8 * 1024 * 1024  # what refusing a file may cost: nowhere near an array of the declared size
HUGE = 2**27  # float64s: 1 GiB, declared in a few bytes


def peak_while(read) -> tuple[BaseException | None, int]:
    """What ``read()`` raised, and the most memory Python and numpy held meanwhile."""
    tracemalloc.start()
    try:
        read()
        raised = None
    except Exception as exc:  # noqa: BLE001 - the caller asserts on it
        raised = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return raised, peak


# ---- pickles written opcode by opcode (protocol 2), as an attacker would --------------------------

def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _text(value: str) -> bytes:
    raw = value.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _call(function: bytes, *args: bytes) -> bytes:
    return function + b"(" + b"".join(args) + b"tR"  # MARK, args, TUPLE, REDUCE


def _shape(n: int) -> bytes:
    return b"J" + struct.pack("<i", n) + b"\x85"  # BININT, TUPLE1


def encoding_pickle(array: bytes) -> bytes:
    """``{"name": ["x"], "encoding": [<array>]}`` around the opcodes that make the array."""
    names = b"](" + _text("x") + b"e"
    encodings = b"](" + array + b"e"
    return b"\x80\x02}(" + _text("name") + names + _text("encoding") + encodings + b"u."


NDARRAY_CALLED = _call(_global("numpy", "ndarray"), _shape(HUGE), _text("f8"))
RECONSTRUCT_HUGE = _call(
    _global("numpy._core.multiarray", "_reconstruct"), _global("numpy", "ndarray"), _shape(HUGE), _text("f8")
)
RECONSTRUCT_OBJECTS = _call(
    _global("numpy._core.multiarray", "_reconstruct"), _global("numpy", "ndarray"), _shape(4), _text("O")
)
OTHER_CODEC = _call(_global("_codecs", "encode"), _text("x" * 64), _text("zlib_codec"))


@pytest.mark.parametrize(
    ("opcodes", "reason"),
    [
        (NDARRAY_CALLED, "calls numpy.ndarray itself"),
        (RECONSTRUCT_HUGE, "(1,073,741,824 bytes); the limit is"),
        (RECONSTRUCT_OBJECTS, "Python objects"),
        (OTHER_CODEC, "only latin1"),
    ],
    ids=["ndarray-called", "reconstruct-1-GiB", "object-array", "zlib-codec"],
)
def test_a_pickle_declaring_a_huge_or_odd_array_is_refused_before_numpy_allocates_it(
    tmp_path: Path, opcodes: bytes, reason: str
) -> None:
    path = tmp_path / "encodings.pickle"
    path.write_bytes(encoding_pickle(opcodes))
    assert path.stat().st_size < 200

    raised, peak = peak_while(lambda: read_encodings(path, SIZE))

    assert isinstance(raised, InvalidEncodings) and reason in str(raised)
    assert peak < SMALL


def test_a_pickled_array_whose_state_declares_a_huge_shape_is_refused(tmp_path: Path) -> None:
    # What numpy itself writes, with the shape in __setstate__'s state made huge.
    honest = pickle.dumps({"name": ["x"], "encoding": [np.zeros(SIZE)]}, protocol=2)
    forged = honest.replace(b"K\x80\x85", b"J" + struct.pack("<i", HUGE) + b"\x85", 1)  # (128,) -> (2**27,)
    assert forged != honest
    path = tmp_path / "encodings.pickle"
    path.write_bytes(forged)

    raised, peak = peak_while(lambda: read_encodings(path, SIZE))

    assert isinstance(raised, InvalidEncodings) and "limit" in str(raised) and peak < SMALL


def npz(members: dict[str, bytes], compress: bool = True) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return out.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    out = io.BytesIO()
    npy_format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue()


def test_an_npz_declaring_a_huge_array_is_refused_from_its_header(tmp_path: Path) -> None:
    names = io.BytesIO()
    np.save(names, np.array(["x"]))
    path = tmp_path / "encodings.npz"
    # 1 GiB declared, no data at all: np.load made room for it all before finding out.
    path.write_bytes(npz({"name": names.getvalue(), "encoding": npy_header((HUGE // SIZE, SIZE))}))

    raised, peak = peak_while(lambda: read_encodings(path, SIZE))

    assert isinstance(raised, InvalidEncodings) and "limit" in str(raised) and peak < SMALL


def test_a_compressed_npz_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    # 64 MiB of zeros deflate to ~64 KB: a real file, of the kind that made 446 MB from 250 KB.
    rows = 64 * 1024 * 1024 // (8 * SIZE)
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("name.npy", "w") as member:
            np.save(member, np.array(["x"] * rows))
        with archive.open("encoding.npy", "w") as member:  # streamed: the test never holds it either
            member.write(npy_header((rows, SIZE)))
            for _ in range(64):
                member.write(bytes(1024 * 1024))
    assert path.stat().st_size < 300_000

    raised, peak = peak_while(lambda: read_encodings(path, SIZE))

    assert isinstance(raised, InvalidEncodings) and "limit" in str(raised) and peak < SMALL


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "encodings.pickle"
    with open(path, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written

    with pytest.raises(InvalidEncodings, match=f"the limit is {MAX_FILE_BYTES:,} bytes"):
        read_encodings(path, SIZE)


def test_more_encodings_than_the_limit_are_refused_before_any_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "encodings.json"
    count = MAX_ENCODINGS + 1
    path.write_text(json.dumps({"name": ["x"] * count, "encoding": [[0] * SIZE] * count}))

    with pytest.raises(InvalidEncodings, match=f"at most {MAX_ENCODINGS:,}"):
        read_encodings(path, SIZE)


def test_deeply_nested_json_is_an_invalid_file_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "encodings.json"
    path.write_text("[" * 100_000)
    with pytest.raises(InvalidEncodings, match="nested too deeply"):
        read_encodings(path, SIZE)


def test_a_vector_of_the_wrong_length_is_refused_before_it_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "encodings.json"
    path.write_text(json.dumps({"name": ["x"], "encoding": [[0] * (SIZE + 1)]}))
    with pytest.raises(InvalidEncodings, match=f"not a vector of {SIZE} numbers"):
        read_encodings(path, SIZE)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("stacked", [False, True])
def test_what_face_recognition_scripts_write_is_still_read(tmp_path: Path, protocol: int, stacked: bool) -> None:
    rng = np.random.default_rng(7)
    vectors = [rng.normal(0, 0.1, SIZE) for _ in range(3)]
    names = ["Ada", "Ada", "Bob"]
    content = {"encoding": np.stack(vectors), "name": np.array(names)} if stacked else {"encoding": vectors, "name": names}
    path = tmp_path / "encodings.pickle"
    path.write_bytes(pickle.dumps(content, protocol=protocol))

    pairs = read_encodings(path, SIZE)

    assert [n for n, _ in pairs] == names
    assert all(np.allclose(v, expected, atol=1e-6) for (_, v), expected in zip(pairs, vectors, strict=True))


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_an_npz_of_names_and_encodings_is_still_read(tmp_path: Path, save) -> None:
    vectors = np.arange(2 * SIZE, dtype=np.float64).reshape(2, SIZE) / 1000
    path = tmp_path / "encodings.npz"
    with open(path, "wb") as f:
        save(f, name=np.array(["Ada", "Bob"]), encoding=vectors)

    pairs = read_encodings(path, SIZE)

    assert [n for n, _ in pairs] == ["Ada", "Bob"] and np.allclose(pairs[1][1], vectors[1])


# ---- the pickle is parsed, never unpickled: forged files and their neighbours ----------------------

_RECONSTRUCT_FUNCTION = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own _reconstruct, as it pickles it


class Reduced:
    """Pickles as ``function(*args)`` then ``BUILD state``: how a forger writes numpy's opcodes."""

    def __init__(self, function: object, args: tuple, state: object = None) -> None:
        self.function, self.args, self.state = function, args, state

    def __reduce__(self) -> tuple:
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)


OBJECT_FIELD = (3, "|", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, 0x3F)  # the finding's dtype state
FLOAT_FIELD = (3, "|", None, ("a",), {"a": (np.dtype("f8"), 0)}, 8, 1, 0x10)  # fields, even of floats
PLAIN = (3, "<", None, None, None, -1, -1, 0)  # what numpy writes for float64


def forged_array(dtype_state: tuple, code: str = "f8", data: bytes = bytes(8 * SIZE), shape: tuple = (SIZE,)) -> Reduced:
    dtype = Reduced(np.dtype, (code, False, True), dtype_state)
    return Reduced(_RECONSTRUCT_FUNCTION, (np.ndarray, (0,), b"b"), (1, shape, dtype, False, data))


class Shell:
    def __reduce__(self) -> tuple:
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    ("encoding", "reason"),
    [
        (forged_array(OBJECT_FIELD), "Python objects"),  # the finding: a float64 whose state declares objects
        (forged_array(FLOAT_FIELD), "fields, sub-arrays or objects are not allowed"),
        (forged_array((3, "|", None, None, None, -1, -1, 0)), "not numpy's"),  # a byte order floats never have
        (forged_array(PLAIN, code="V8"), "only floats and text"),
        (forged_array(PLAIN, data=bytes(8 * SIZE - 1)), "holds 1,023 bytes"),
        (forged_array(PLAIN, shape=(-1,)), "negative dimension"),
        (np.array([object()] * SIZE, dtype=object), "Python objects"),
        (Shell(), "refers to posix.system"),
        (Reduced(eval, ("1+1",)), "refers to __builtin__.eval"),
        (Reduced(dict, ((("a", 1),),), {"x": 1}), "refers to __builtin__.dict"),
    ],
    ids=["object-field-state", "float-field-state", "odd-byte-order", "void-dtype", "short-data", "negative-shape",
         "object-array", "os-system", "eval", "dict-with-state"],
)
def test_a_forged_pickle_is_refused_with_a_reason_and_nothing_of_it_runs(tmp_path: Path, encoding: object, reason: str) -> None:
    path = tmp_path / "forged.pickle"
    path.write_bytes(pickle.dumps({"name": ["x"], "encoding": [encoding]}, protocol=2))
    with pytest.raises(InvalidEncodings, match=re.escape(reason)):
        read_encodings(path, SIZE)


def test_a_pickle_that_uses_anything_else_is_refused_by_its_opcode(tmp_path: Path) -> None:
    # Out-of-band buffers (protocol 5), an instance of another class, a truncated file.
    vector = np.zeros(SIZE)
    cases = {
        "NEXT_BUFFER": pickle.dumps({"name": ["x"], "encoding": [vector]}, protocol=5, buffer_callback=lambda b: False),
        "refers to pathlib.PosixPath": pickle.dumps({"name": ["x"], "encoding": [Path("x")]}, protocol=2),
        "not a readable pickle": pickle.dumps({"name": ["x"], "encoding": [vector]}, protocol=4)[:-20],
    }
    for reason, data in cases.items():
        path = tmp_path / "odd.pickle"
        path.write_bytes(data)
        with pytest.raises(InvalidEncodings, match=reason):
            read_encodings(path, SIZE)


def test_plain_python_lists_in_a_pickle_are_read(tmp_path: Path) -> None:
    path = tmp_path / "lists.pickle"
    path.write_bytes(pickle.dumps({"name": ["Ada"], "encoding": [[0.25] * SIZE]}, protocol=4))
    [(name, vector)] = read_encodings(path, SIZE)
    assert name == "Ada" and vector.dtype == np.float32 and (vector == 0.25).all()
