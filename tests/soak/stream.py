"""The soak test's stream: mixed requests made from a seeded ``random.Random``, sent over HTTP as a
user's client sends them, each one's outcome recorded (what the service said, and when), so that
the end of the test can check that every request was answered, once.

Kinds of request (``KINDS``):

- ``image``: ``POST /v1/images?wait=0`` (202 and an id), answered on ``GET /v1/images/{id}``;
- ``image-wait``: ``POST /v1/images?wait=20``, answered in the reply (or later by id);
- ``course``: the course-style ``POST /`` multipart form, answered ``<stem>:<label>``;
- ``retry``: ``POST /v1/images`` with an ``Idempotency-Key``, sent twice: one request, one id;
- ``bad-*``: a truncated JPEG, a text file, a PNG whose header claims 30000 x 30000 pixels, and
  student records that are not JSON: a clear 4xx, or (an image the web tier let through) a
  recorded failed result (422), never a hang;
- ``video``: ``POST /v1/videos``, answered on ``GET /v1/videos/{id}/csv``;
- ``students``: ``POST /v1/students`` (JSON records), answered ``{"imported": n, "new", "changed", "unchanged"}``.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import requests

POST_TIMEOUT_S = 60  # far beyond any answer: a request that takes this long is a hang
WAIT_S = 20  # image-wait's ?wait=

# Each phase's fixed mix: kind -> how many.
PHASE_MIX = {
    "image": 5, "image-wait": 3, "course": 3, "retry": 1,
    "bad-truncated": 1, "bad-not-an-image": 1, "bad-huge": 1, "bad-students": 1,
    "video": 1, "students": 1,
}
IMAGE_KINDS = ("image", "image-wait", "course", "retry")
BAD_IMAGE_KINDS = ("bad-truncated", "bad-not-an-image", "bad-huge")
# What each bad input must be told: (HTTP status, error code) of the web tier's refusal.
REFUSALS = {
    "bad-truncated": (400, "undecodable"),
    "bad-not-an-image": (400, "not_an_image"),
    "bad-huge": (413, "too_many_pixels"),
    "bad-students": (400, "invalid_students"),
}


@dataclass(frozen=True)
class Video:
    path: Path
    csv: str  # the CSV it must get


@dataclass
class Outcome:
    """One request of the stream and what became of it."""

    kind: str
    name: str  # unique in the run: the announcement line of `iraas up` names it
    phase: int
    body: bytes = field(repr=False, default=b"")
    content_type: str = ""
    expect: Any = None  # a video's CSV, the student names of an import
    sent_at: float = 0.0  # time.monotonic()
    status: int | None = None  # the POST's HTTP status
    id: str | None = None  # the image request's id, or the video's
    replied: Any = None  # the answer in the POST's reply (a result, course text, error body)
    final: Any = None  # the answer at the end (GET by id, or the reply)
    final_status: int | None = None
    answered_at: float | None = None  # when the answer was first seen
    error: str | None = None  # the client's exception: no answer at all

    @property
    def accepted(self) -> bool:
        """Queued by the service: it owes an answer later."""
        return self.status == 202

    @property
    def latency_s(self) -> float | None:
        return None if self.answered_at is None else self.answered_at - self.sent_at


def truncated_jpeg(photo: bytes) -> bytes:
    return photo[: len(photo) // 2]


def huge_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (the pixel limit is checked before decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def build_phase(phase: int, rng: Random, photos: list[Path], videos: dict[str, Video]) -> list[Outcome]:
    """The phase's requests (``PHASE_MIX``), in a random order; photos and videos drawn by ``rng``."""
    kinds = [kind for kind, count in PHASE_MIX.items() for _ in range(count)]
    rng.shuffle(kinds)
    out = []
    for n, kind in enumerate(kinds):
        name = f"soak-p{phase:02d}-{n:02d}-{kind}"
        if kind in IMAGE_KINDS:
            out.append(Outcome(kind, f"{name}.jpg", phase, rng.choice(photos).read_bytes(), "image/jpeg"))
        elif kind == "bad-truncated":
            out.append(Outcome(kind, f"{name}.jpg", phase, truncated_jpeg(rng.choice(photos).read_bytes()), "image/jpeg"))
        elif kind == "bad-not-an-image":
            out.append(Outcome(kind, f"{name}.jpg", phase, b"this is a text file, not a photo\n" * 40, "image/jpeg"))
        elif kind == "bad-huge":
            out.append(Outcome(kind, f"{name}.png", phase, huge_png(), "image/png"))
        elif kind == "bad-students":
            out.append(Outcome(kind, name, phase, b'[{"id": "1", "name": "half a rec', "application/json"))
        elif kind == "video":
            clip = rng.choice(sorted(videos))
            out.append(Outcome(kind, f"{name}-{clip}.mp4", phase, videos[clip].path.read_bytes(), "video/mp4",
                               expect=videos[clip].csv))
        elif kind == "students":
            records = [{"id": f"{phase}{k}", "name": f"Soak Student {phase}-{k}", "major": "Load", "year": phase}
                       for k in range(rng.randint(1, 3))]
            out.append(Outcome(kind, name, phase, json.dumps(records).encode(), "application/json",
                               expect=[r["name"] for r in records]))
        else:
            raise ValueError(kind)
    return out


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def send(url: str, item: Outcome, rng_key: str) -> Outcome:
    """POST ``item`` as its kind says; record the reply (an exception is recorded, not raised)."""
    item.sent_at = time.monotonic()
    headers = {"Content-Type": item.content_type}
    try:
        if item.kind == "course":
            response = requests.post(f"{url}/", files={"myfile": (item.name, item.body, item.content_type)},
                                     timeout=POST_TIMEOUT_S)
        elif item.kind in ("students", "bad-students"):
            response = requests.post(f"{url}/v1/students", data=item.body, headers=headers, timeout=POST_TIMEOUT_S)
        elif item.kind == "video":
            response = requests.post(f"{url}/v1/videos", params={"name": item.name}, data=item.body, headers=headers,
                                     timeout=POST_TIMEOUT_S)
        else:
            wait = WAIT_S if item.kind == "image-wait" else 0
            if item.kind == "retry":
                headers["Idempotency-Key"] = rng_key
            params: dict[str, str | int] = {"wait": wait, "name": item.name}
            response = requests.post(f"{url}/v1/images", params=params, data=item.body, headers=headers,
                                     timeout=POST_TIMEOUT_S)
            if item.kind == "retry" and response.status_code in (200, 202):
                again = requests.post(f"{url}/v1/images", params=params, data=item.body, headers=headers,
                                      timeout=POST_TIMEOUT_S)
                first, second = response.json().get("id"), _body(again)
                if not isinstance(second, dict) or second.get("id") != first:
                    item.error = f"the retried POST answered {again.status_code} {second!r}, not id {first}"
    except requests.RequestException as exc:
        item.error = f"{type(exc).__name__}: {exc}"
        return item
    item.status = response.status_code
    item.replied = _body(response)
    if isinstance(item.replied, dict):
        item.id = item.replied.get("id") or item.replied.get("video")
    if response.status_code != 202:  # answered in the reply (a result, a refusal, an import)
        item.final, item.final_status, item.answered_at = item.replied, response.status_code, time.monotonic()
    return item


def poll(url: str, items: list[Outcome]) -> int:
    """One look at each accepted request still unanswered; returns how many are still waiting."""
    waiting = 0
    for item in items:
        if not item.accepted or item.final_status is not None or item.id is None:
            continue
        path = f"/v1/videos/{item.id}/csv" if item.kind == "video" else f"/v1/images/{item.id}"
        try:
            response = requests.get(url + path, timeout=30)
        except requests.RequestException:
            waiting += 1
            continue
        if response.status_code == 202 or (item.kind == "video" and response.status_code == 404):  # no CSV yet
            waiting += 1
        else:
            item.final, item.final_status, item.answered_at = _body(response), response.status_code, time.monotonic()
    return waiting


def get_result(url: str, request_id: str) -> tuple[int, Any]:
    response = requests.get(f"{url}/v1/images/{request_id}", timeout=30)
    return response.status_code, _body(response)
