"""The request and result schema, and the only place object keys are built.

Keys derive from the request id, so every write is idempotent: a retry overwrites the same
object instead of adding another. User input (file names, ids) goes through ``iraas.names`` first, so it
can never steer a key outside its prefix.

A request message points at its image in the input bucket; a small image also rides in it
(``image_b64``) when the whole message stays within SQS's first billed 64 KiB chunk, so the worker
skips the GET at no extra SQS cost. The input bucket keeps its copy either way. A message of schema
v1 without the field is read as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from iraas.callbacks.jobs import MAX_URL_LENGTH
from iraas.names import safe_name, safe_segment

SCHEMA_VERSION = 1
# SQS bills each 64 KiB chunk of a message as one request: a request carries its image only when the
# whole message stays within the first (about 47 KB of image, after base64). Ten such messages
# (a SendMessageBatch) stay within SendMessageBatch's 1 MiB.
CARRY_LIMIT = 64 * 1024
_CARRY_FIELD_BYTES = len(',"image_b64":""')
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
# A caller identity (iraas.web.auth.caller_identity: k<16 hex>, g<key id>, anonymous) as a key segment.
_OWNER_RE = re.compile(r"^[A-Za-z0-9]{1,80}$")


class MalformedRequest(ValueError):
    """A queue message that is not a request of this schema."""


def new_id() -> str:
    return uuid.uuid4().hex


def id_for_idempotency_key(key: str, owner: str) -> str:
    """The request id a client's ``Idempotency-Key`` maps to: same caller (``owner``, see
    ``iraas.web.auth.caller_identity``) and key, same id; another caller's same key, another id."""
    if not _IDEMPOTENCY_KEY_RE.match(key):
        raise ValueError("Idempotency-Key must be 1-128 printable ASCII characters without spaces")
    if not owner or "\0" in owner:
        raise ValueError(f"not a caller identity: {owner!r}")
    return hashlib.sha256(b"iraas-idempotency:" + owner.encode() + b"\0" + key.encode()).hexdigest()[:32]


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def stem(name: str) -> str:
    """The file name without its extension, as the course endpoint answers it."""
    return PurePosixPath(name).stem or name


# ---- object keys ---------------------------------------------------------------------------


def _check_id(request_id: str) -> str:
    if not is_valid_id(request_id):
        raise ValueError(f"not a request id: {request_id!r}")
    return request_id


def _check_owner(owner: str) -> str:
    if not _OWNER_RE.match(owner):
        raise ValueError(f"not a caller identity: {owner!r}")
    return owner


def input_prefix(owner: str, request_id: str) -> str:
    """The folder of one caller's request: ``inputs/<caller>/<id>/``, so that only its caller finds it."""
    return f"inputs/{_check_owner(owner)}/{_check_id(request_id)}/"


def input_key(owner: str, request_id: str, name: str) -> str:
    return input_prefix(owner, request_id) + safe_name(name)


def name_from_input_key(owner: str, request_id: str, key: str) -> str | None:
    """The file name in ``inputs/<owner>/<id>/<name>``, None if ``key`` is not that request's input."""
    prefix = input_prefix(owner, request_id)
    name = key[len(prefix) :] if key.startswith(prefix) else ""
    return name if name and "/" not in name else None


def owner_from_input_key(key: str) -> str | None:
    """The caller segment of an input key ``inputs/<owner>/<id>/<name>``, None if it has none."""
    parts = key.split("/")
    return parts[1] if len(parts) == 4 and parts[0] == "inputs" and _OWNER_RE.match(parts[1]) else None


def result_key(request_id: str, name: str) -> str:
    """The one result object: ``results/<file name>/<id>.json``.

    Found by file name (list ``results/<name>/``) and by id (the input key
    ``inputs/<caller>/<id>/<name>``, found only by its caller, names it), with one write per answer.
    """
    return f"results/{safe_name(name)}/{_check_id(request_id)}.json"


def poison_key(message_id: str) -> str:
    """Where the reason for a message that is not a request at all is recorded."""
    return f"errors/{safe_segment(message_id)}.json"


# ---- messages and results ------------------------------------------------------------------

MAX_TOP = 20  # the most predictions an answer's ``top`` can list (``?top=N``)


def base64_length(size: int) -> int:
    """The length of ``size`` bytes in base64 (padded)."""
    return 4 * ((size + 2) // 3)


@dataclass(frozen=True)
class ImageRequest:
    """What the web tier puts on the request queue: where the image is, and a small image's bytes."""

    id: str
    name: str
    bucket: str
    key: str
    submitted_at: float = field(default_factory=time.time)
    # The waiting web process's reply queue; the request id is the correlation id. None: nobody waits.
    reply_to: str | None = None
    # The image's bytes in base64, when they fit the message (see ``carrying``); None: fetch the input.
    image_b64: str | None = None
    # How many predictions the answer's ``top`` lists (``?top=N``, 1..MAX_TOP); None: no ``top``.
    top: int | None = None
    # Where the answer is POSTed once stored (``?callback=``, checked by the web tier); None: nowhere.
    callback: str | None = None

    def to_message(self) -> str:
        data = {"v": SCHEMA_VERSION, **asdict(self)}
        for optional in ("reply_to", "image_b64", "top", "callback"):
            if data[optional] is None:
                del data[optional]
        return json.dumps(data, separators=(",", ":"))

    def carrying(self, image: bytes, limit: int = CARRY_LIMIT) -> ImageRequest:
        """This request with ``image`` in it if the whole message stays within ``limit`` bytes; else itself."""
        if len(self.to_message()) + _CARRY_FIELD_BYTES + base64_length(len(image)) > limit:
            return self
        return replace(self, image_b64=base64.b64encode(image).decode("ascii"))

    def carried_image(self) -> bytes | None:
        """The image bytes the message carries, None if it carries none; MalformedRequest if they are
        not base64 (a forged or garbled message)."""
        if self.image_b64 is None:
            return None
        try:
            return base64.b64decode(self.image_b64, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: characters that are not ASCII
            raise MalformedRequest(f"the image the request carries is not base64: {exc}") from None

    @classmethod
    def from_message(cls, body: str) -> ImageRequest:
        try:
            data = json.loads(body)
        except RecursionError:  # [[[[...: the C parser refuses to recurse past the interpreter's limit
            raise MalformedRequest("message body is not JSON we accept: nested too deeply") from None
        except ValueError as exc:
            raise MalformedRequest(f"message body is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("v") != SCHEMA_VERSION:
            raise MalformedRequest(f"message is not an IRaaS request of schema v{SCHEMA_VERSION}")
        try:
            request = cls(
                id=str(data["id"]),
                name=str(data["name"]),
                bucket=str(data["bucket"]),
                key=str(data["key"]),
                submitted_at=float(data.get("submitted_at", 0.0)),
                reply_to=str(data["reply_to"]) if data.get("reply_to") else None,
                image_b64=_optional_text(data, "image_b64"),
                top=_optional_top(data),
                callback=_optional_text(data, "callback"),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # OverflowError: float(10**400)
            raise MalformedRequest(f"request lacks a valid field: {exc}") from None
        if request.callback is not None and len(request.callback) > MAX_URL_LENGTH:
            raise MalformedRequest(f"callback URL is over {MAX_URL_LENGTH} characters")
        if not is_valid_id(request.id):
            raise MalformedRequest(f"request id {request.id!r} is not a valid id")
        owner = owner_from_input_key(request.key)
        if owner is None or request.key != input_key(owner, request.id, request.name):
            # A forged message must not make the worker read objects outside the request's prefix.
            raise MalformedRequest(f"key {request.key!r} is not the input of request {request.id}")
        return request


def _optional_top(data: dict[str, Any]) -> int | None:
    value = data.get("top")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TOP:
        raise ValueError(f"top is not a whole number from 1 to {MAX_TOP}")
    return value


def _optional_text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str


@dataclass(frozen=True)
class ImageResult:
    """The answer to one request; stored in S3 and sent on the response queue."""

    id: str
    name: str
    status: str  # "done" or "failed"
    label: str | None = None
    wnid: str | None = None  # None (and left out of the JSON) for a model of one's own: plain labels
    confidence: float | None = None
    top5: tuple[dict[str, Any], ...] = ()
    error: ErrorInfo | None = None
    completed_at: float = field(default_factory=time.time)
    top: tuple[dict[str, Any], ...] | None = None  # the request's ``top`` predictions, when it asked

    @classmethod
    def done(cls, request: ImageRequest, classification: Any) -> ImageResult:
        """The answer from a ``Classification`` (anything with ``to_dict(top)`` of label, wnid, ...)."""
        best = classification.to_dict(top=request.top)
        return cls(
            id=request.id,
            name=request.name,
            status="done",
            label=best["label"],
            wnid=best.get("wnid"),
            confidence=best["confidence"],
            top5=tuple(best["top5"]),
            top=tuple(best["top"]) if request.top is not None else None,
        )

    @classmethod
    def failed(cls, request_id: str, name: str, code: str, message: str) -> ImageResult:
        return cls(id=request_id, name=name, status="failed", error=ErrorInfo(code, message))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        """The fields that apply, in the schema's order (built by hand: ``asdict`` deep-copies top5,
        and the worker serialises every answer once)."""
        data: dict[str, Any] = {"id": self.id, "name": self.name, "status": self.status}
        if self.error is None:
            data["label"] = self.label
            if self.wnid is not None:  # left out, not null, where the model has no WordNet ids
                data["wnid"] = self.wnid
            data.update(confidence=self.confidence, top5=list(self.top5))
            if self.top is not None:
                data["top"] = list(self.top)
        else:
            data["error"] = {"code": self.error.code, "message": self.error.message}
        data["completed_at"] = self.completed_at
        return data

    @classmethod
    def from_json(cls, body: str | bytes) -> ImageResult:
        data = json.loads(body)
        error = data.pop("error", None)
        data["top5"] = tuple(data.get("top5", ()))
        if data.get("top") is not None:
            data["top"] = tuple(data["top"])
        return cls(**data, error=ErrorInfo(**error) if error else None)

    def public(self) -> dict[str, Any]:
        """What the HTTP API shows (no internal timestamps)."""
        data = self.to_dict()
        data.pop("completed_at", None)
        return data
