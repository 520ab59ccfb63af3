"""iraas/media/validation.py's memory bounds, measured: what a decode takes is a forked child's peak.

The findings these pin: a 190 KB 7000 x 7000 PNG, inside the former 50-megapixel limit, cost 211 MB
in the web tier and 819 MB in the worker. Memory is a forked child's peak resident set, in bytes
(Pillow's buffers are C allocations that tracemalloc does not see), so these start a process: the
formats and pixel checks themselves are in tests/unit/media/test_validation.py. No assertion here is
about time.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from iraas.errors import ServiceError
from iraas.media.uploads import UploadLimits, parse_upload
from iraas.media.validation import BYTES_PER_PIXEL, ImageError, decode_rgb
from iraas.web.errors import http_error

REPO_ROOT = Path(__file__).resolve().parents[3]
MIB = 1024 * 1024

# What a decode may take beyond its budget: libraries' own tables, Python objects, page rounding.
SLACK = 6 * MIB
WORKER_MIN_SIDE = 256  # what the classifier asks decode_rgb for (resize_for(224))


def png_bomb(width: int, height: int) -> bytes:
    """An all-black RGB PNG, made by hand a row at a time: ~140 KB on disk for 7000 x 7000."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    deflate = zlib.compressobj(9)
    row = bytes(1 + 3 * width)  # filter byte 0, then black pixels
    rows = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def photo_like(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Smooth content in every band, so the encoders do real work (not a flat colour)."""
    grey = Image.linear_gradient("L").resize(size)
    if mode == "L":
        return grey
    bands = {"RGB": 3, "RGBA": 4}[mode]
    return Image.merge(mode, [grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey, grey][:bands])


# A child process that forks once per case, so that each case's peak is its own.
MEASURE = r"""
import json, os, resource, sys
from PIL import Image
from iraas.media.uploads import UploadLimits
from iraas.errors import ServiceError
from iraas.web.errors import http_error
from iraas.media.uploads import parse_upload
from iraas.media.validation import ImageError, decode_rgb, inspect_image

Image.init()

def run(case, data):
    if case["call"] == "upload":
        return parse_upload(data, "image/png", "bomb.png", UploadLimits())
    if case["call"] == "inspect":
        return inspect_image(data, case["max_pixels"])
    return decode_rgb(data, case["max_pixels"], min_side=case.get("min_side"))

for case in json.load(sys.stdin):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        with open(case["path"], "rb") as f:
            data = f.read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            run(case, data)
            outcome = "ok"
        except ImageError as exc:
            outcome = exc.code
        except ServiceError as exc:
            outcome = f"{http_error(exc).status} {exc.code}"
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024  # KiB on Linux
        os.write(write, json.dumps({"outcome": outcome, "peak": peak}).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        print(answer.read())
    os.waitpid(pid, 0)
"""


def peaks(cases: list[dict]) -> list[dict]:
    """Each case's outcome ("ok" or the error code) and the peak bytes its call added."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE], input=json.dumps(cases), capture_output=True, text=True,
        cwd=REPO_ROOT, check=True, timeout=120,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_a_7000_by_7000_png_is_refused_from_its_header_by_the_web_tier_and_the_worker(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(7000, 7000))
    assert bomb.stat().st_size < 200_000 and UploadLimits().max_image_pixels < 7000 * 7000

    with pytest.raises(ServiceError) as refused:
        parse_upload(bomb.read_bytes(), "image/png", "bomb.png", UploadLimits())
    assert (http_error(refused.value).status, refused.value.code) == (413, "too_many_pixels")
    with pytest.raises(ImageError) as worker:
        decode_rgb(bomb.read_bytes(), UploadLimits().max_image_pixels, min_side=WORKER_MIN_SIDE)
    assert worker.value.code == "too_many_pixels"

    web, work = peaks([
        {"path": str(bomb), "call": "upload"},
        {"path": str(bomb), "call": "decode", "max_pixels": UploadLimits().max_image_pixels, "min_side": WORKER_MIN_SIDE},
    ])
    assert web == {"outcome": "413 too_many_pixels", "peak": web["peak"]} and web["peak"] < SLACK
    assert work == {"outcome": "too_many_pixels", "peak": work["peak"]} and work["peak"] < SLACK


def test_the_web_tier_checks_a_png_at_the_limit_without_holding_its_pixels(tmp_path: Path) -> None:
    # 25 MP is 100 MB of Pillow image; the web tier inflates the rows a slice at a time instead.
    side = int(UploadLimits().max_image_pixels**0.5)
    png = tmp_path / "at-the-limit.png"
    png.write_bytes(png_bomb(side, side))

    (checked,) = peaks([{"path": str(png), "call": "inspect", "max_pixels": UploadLimits().max_image_pixels}])

    assert checked["outcome"] == "ok" and checked["peak"] < SLACK


LIMIT = 4_000_000  # the memory cases' pixel limit: 16 MB of budget, small enough to run quickly

# (name, file builder, size, what the format's decoder takes per pixel: its share of the limit)
MEMORY_CASES = [
    ("png-rgb", lambda s: encode(photo_like(s), "PNG", compress_level=1), (2000, 2000)),
    ("png-rgba", lambda s: encode(photo_like(s, "RGBA"), "PNG", compress_level=1), (2000, 2000)),
    ("png-16-bit", lambda s: encode(Image.new("I;16", s, 40000), "PNG"), (2000, 2000)),
    ("gif", lambda s: encode(photo_like(s, "L"), "GIF"), (2000, 2000)),
    ("bmp", lambda s: encode(photo_like(s), "BMP"), (2000, 2000)),
    ("tiff-raw", lambda s: encode(photo_like(s), "TIFF"), (2000, 2000)),
    # libtiff's strip buffer holds the whole image when there is one strip: half the pixels.
    ("tiff-lzw-one-strip", lambda s: encode(photo_like(s), "TIFF", compression="tiff_lzw", tiffinfo={278: s[1]}),
     (1414, 1414)),
    ("jpeg-baseline", lambda s: encode(photo_like(s), "JPEG", quality=90), (2000, 2000)),
    # Every DCT coefficient kept, 2 bytes x 3 samples: 4 / (4 + 6) of the limit.
    ("jpeg-progressive-444", lambda s: encode(photo_like(s), "JPEG", progressive=True, subsampling=0), (1264, 1264)),
    # libwebp's own canvases: a quarter of the limit.
    ("webp", lambda s: encode(photo_like(s), "WEBP", lossless=True, method=0), (1000, 1000)),
]


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    folder = tmp_path_factory.mktemp("memory")
    cases = []
    for name, build, size in MEMORY_CASES:
        path = folder / name
        path.write_bytes(build(size))
        cases += [
            {"name": name, "path": str(path), "call": "inspect", "max_pixels": LIMIT},
            {"name": name, "path": str(path), "call": "decode", "max_pixels": LIMIT},
        ]
    return {(c["name"], c["call"]): result for c, result in zip(cases, peaks(cases), strict=True)}


@pytest.mark.parametrize("name", [case[0] for case in MEMORY_CASES])
def test_memory_per_decode_is_bounded_by_the_pixel_limit(measured: dict, name: str) -> None:
    budget = BYTES_PER_PIXEL * LIMIT  # the decoder and the image it makes
    inspected, decoded = measured[name, "inspect"], measured[name, "decode"]

    assert inspected["outcome"] == decoded["outcome"] == "ok"  # each is at its format's limit
    assert inspected["peak"] <= budget + SLACK
    assert decoded["peak"] <= 2 * budget + SLACK  # and at most one conversion or rotation of it
    if name.startswith("png") or name == "jpeg-baseline":
        # Rows inflated and dropped; a JPEG drafted at 1/8 scale: nowhere near the budget.
        assert inspected["peak"] <= budget // 16 + SLACK
