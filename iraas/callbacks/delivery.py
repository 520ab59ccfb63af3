"""One POST of a signed answer to a checked destination: no redirects, bounded in time and bytes."""

from __future__ import annotations

from dataclasses import dataclass

import urllib3

from iraas.callbacks.policy import Destination
from iraas.callbacks.signing import DELIVERY_HEADER, SIGNATURE_HEADER, signature

USER_AGENT = "IRaaS-Callbacks/1"
RESPONSE_BYTES = 4096  # read of a receiver's answer (its status is what counts); the rest is dropped


@dataclass(frozen=True)
class Attempt:
    """How one POST went: ``delivered`` (a 2xx), else the reason."""

    delivered: bool
    reason: str = ""


def post(destination: Destination, body: bytes, secret: bytes, delivery_id: str, timeout_s: float) -> Attempt:
    """POST ``body`` to ``destination``'s checked address (TLS is still checked against its host
    name), signed; a 3xx is a failure like any other non-2xx answer: redirects are not followed."""
    default_port = 443 if destination.scheme == "https" else 80
    host_header = destination.host if destination.port == default_port else f"{destination.host}:{destination.port}"
    timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
    pool: urllib3.HTTPConnectionPool
    if destination.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            destination.address, destination.port, timeout=timeout, retries=False, maxsize=1,
            server_hostname=destination.host, assert_hostname=destination.host, cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(destination.address, destination.port, timeout=timeout, retries=False, maxsize=1)
    headers = {
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature(secret, body),
        DELIVERY_HEADER: delivery_id,
    }
    try:
        response = pool.urlopen(
            "POST", destination.target, body=body, headers=headers, redirect=False, retries=False,
            preload_content=False, assert_same_host=False,
        )
        try:
            response.read(RESPONSE_BYTES)
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:  # refused, reset, timed out, TLS
        return Attempt(False, f"{type(exc).__name__}: {exc}"[:300])
    finally:
        pool.close()
    if 200 <= response.status < 300:
        return Attempt(True)
    what = "a redirect, which callbacks do not follow" if 300 <= response.status < 400 else "not 2xx"
    return Attempt(False, f"HTTP {response.status} ({what})")
