"""How a callback proves it comes from this stack: an HMAC-SHA256 of the raw body with the secret."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Iraas-Signature"
# The same for every attempt and every repeat of one answer (it is the request id): receivers drop repeats by it.
DELIVERY_HEADER = "Iraas-Delivery"
_PREFIX = "sha256="


def signature(secret: bytes, body: bytes) -> str:
    """The ``Iraas-Signature`` header's value: ``sha256=<hex HMAC-SHA256 of body>``."""
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (what a receiver checks; constant time)."""
    return header is not None and hmac.compare_digest(signature(secret, body), header.strip())
