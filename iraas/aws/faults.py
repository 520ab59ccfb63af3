"""Fault injection at the AWS client: throttling and transient errors, as AWS answers them.

``IRAAS_FAULTS`` names the faults, comma-separated; each entry is ``SERVICE:OPERATION=ERROR[@RATE][xCOUNT]``::

    IRAAS_FAULTS="s3:PutObject=SlowDown@0.3, s3:GetObject=503@0.2, sqs:*=ThrottlingException@0.1,
                  dynamodb:TransactWriteItems=ProvisionedThroughputExceededException@0.5, s3:GetObject=SlowDownx3"

- ``SERVICE`` is a boto3 service name (``s3``, ``sqs``, ``dynamodb``, ...), ``OPERATION`` an API
  operation of it as AWS spells it (``PutObject``) or ``*`` for all of them;
- ``ERROR`` is an error code of ``ERRORS`` (``SlowDown``, ``ThrottlingException``, ...) or an HTTP
  status of ``STATUS_ERRORS`` (``500``, ``503``, ...);
- ``@RATE`` is the chance in [0, 1] that a call fails (default 1: every call);
- ``xCOUNT`` stops after that many faults in this process: ``=SlowDownx3`` fails the first 3 calls.

Each attempt botocore makes (the first and every retry) is drawn anew, so a retried call can fail
again. Entries are tried in order and the first one that fires answers. ``IRAAS_FAULTS_SEED`` (an integer) makes the draws
repeatable (in call order, so only where the calls come in one order). The whole value is checked
when the first client is made: a bad entry is a ``ConfigError`` of one line that names it.

A fault is an ``AWSResponse`` returned from the client's ``before-send`` event, so the request never
leaves the process, and botocore parses and retries it exactly as it would the real error: the
status and body follow the service's protocol (S3's REST-XML ``<Error><Code>SlowDown</Code>``; the
JSON protocol's ``{"__type": "...#ThrottlingException"}`` for SQS and DynamoDB). Nothing is
installed unless ``IRAAS_FAULTS`` is set. ``injected()`` counts the faults per
``service:Operation``, for tests and for the log.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import re
import threading
import weakref
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSResponse

from iraas.errors import ConfigError

FAULTS_ENV = "IRAAS_FAULTS"
SEED_ENV = "IRAAS_FAULTS_SEED"
# Set on a request a fault answered (it is never sent): an in-process stub (moto's) can skip it.
FAULT_HEADER = "x-iraas-fault"

# Error code -> (HTTP status, message), as the services answer them. The throttling codes are in
# botocore's own list of throttling errors; the 5xx ones are transient by status.
ERRORS: dict[str, tuple[int, str]] = {
    "SlowDown": (503, "Please reduce your request rate."),  # S3
    "ServiceUnavailable": (503, "Service is unable to handle request."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "RequestTimeout": (400, "Your socket connection to the server was not read from or written to in time."),
    "ThrottlingException": (400, "Rate exceeded"),  # SQS (JSON protocol), DynamoDB
    "Throttling": (400, "Rate exceeded"),
    "RequestThrottled": (400, "Request is throttled."),  # SQS
    "ProvisionedThroughputExceededException": (400, "The provisioned throughput for the table was exceeded."),
    "RequestLimitExceeded": (400, "Throughput exceeds the current throughput limit for your account."),
    "TooManyRequestsException": (429, "Rate exceeded"),
}
STATUS_ERRORS: dict[int, str] = {500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
_PROTOCOLS = frozenset({"rest-xml", "json", "rest-json", "query", "ec2"})

_ENTRY = re.compile(
    r"(?P<service>[a-z0-9-]+):(?P<operation>\*|[A-Za-z0-9]+)=(?P<error>[A-Za-z0-9]+?)"
    r"(?:@(?P<rate>[0-9]*\.?[0-9]+))?(?:x(?P<count>[0-9]+))?"
)

log = logging.getLogger(__name__)

_lock = threading.Lock()
_injected: Counter[str] = Counter()
_plans: dict[tuple[str, int | None], FaultPlan] = {}  # one plan per process and value
_unseeded: weakref.WeakSet[FaultPlan] = weakref.WeakSet()


def _reseed_in_child() -> None:
    """A forked process (the zygote's runners) draws apart from its parent and its siblings."""
    for plan in list(_unseeded):
        plan._random.seed()


os.register_at_fork(after_in_child=_reseed_in_child)


@dataclass
class Fault:
    """One entry: which calls it hits, what they answer, how often, and how many times at most."""

    service: str
    operation: str  # an operation name, or "*"
    code: str
    status: int
    message: str
    rate: float = 1.0
    limit: int | None = None
    spec: str = ""
    fired: int = 0

    def matches(self, service: str, operation: str) -> bool:
        return self.service == service and self.operation in ("*", operation)


@dataclass(eq=False)
class FaultPlan:
    """The faults of one process (the parsed ``IRAAS_FAULTS``), with their draws and counts."""

    faults: list[Fault]
    seed: int | None = None
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        if self.seed is None:
            _unseeded.add(self)

    def draw(self, service: str, operation: str) -> Fault | None:
        """The fault this call answers with, if one fires (counted), else None."""
        with _lock:
            for fault in self.faults:
                if not fault.matches(service, operation) or (fault.limit is not None and fault.fired >= fault.limit):
                    continue
                if fault.rate >= 1 or self._random.random() < fault.rate:
                    fault.fired += 1
                    _injected[f"{service}:{operation}"] += 1
                    return fault
        return None

    def install(self, client: Any) -> None:
        """Answer ``client``'s calls with these faults (before anything else sees the request)."""
        service = client.meta.service_model.service_name
        if not any(f.service == service for f in self.faults):
            return
        protocol = client.meta.service_model.protocol
        if protocol not in _PROTOCOLS:
            raise ConfigError(f"{FAULTS_ENV}: cannot inject faults into {service} (protocol {protocol})")
        service_id = client.meta.service_model.service_id.hyphenize()

        def before_send(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
            operation = event_name.rsplit(".", 1)[-1]
            fault = self.draw(service, operation)
            if fault is None:
                return None
            request.headers[FAULT_HEADER] = fault.code
            return error_response(protocol, service, request.url, fault.status, fault.code, fault.message)

        # On the service's own event, registered first: it runs before any other send handler.
        client.meta.events.register_first(f"before-send.{service_id}", before_send)


def parse(text: str, seed: int | None = None) -> FaultPlan:
    """The plan ``text`` (``IRAAS_FAULTS``'s syntax) describes; ConfigError names a bad entry."""
    faults: list[Fault] = []
    for raw in text.split(","):
        spec = raw.strip()
        if not spec:
            continue
        faults.append(_parse_entry(spec))
    return FaultPlan(faults, seed)


def _parse_entry(spec: str) -> Fault:
    def bad(why: str) -> ConfigError:
        return ConfigError(f"{FAULTS_ENV}: {spec!r} {why}")

    match = _ENTRY.fullmatch(spec)
    if match is None:
        raise bad("is not SERVICE:OPERATION=ERROR[@RATE][xCOUNT] (e.g. s3:PutObject=SlowDown@0.3)")
    service, operation, error = match["service"], match["operation"], match["error"]
    operations = _operations(service)
    if operations is None:
        raise bad(f"names no AWS service {service!r}")
    if operation != "*" and operation not in operations:
        raise bad(f"names no {service} operation {operation!r}")
    if error.isdigit():
        status = int(error)
        if status not in STATUS_ERRORS:
            raise bad(f"has status {status}; use one of {', '.join(map(str, STATUS_ERRORS))}")
        code, message = STATUS_ERRORS[status], f"injected {status}"
    elif error in ERRORS:
        code, (status, message) = error, ERRORS[error]
    else:
        raise bad(f"has an unknown error {error!r}; use an HTTP status or one of {', '.join(ERRORS)}")
    rate = float(match["rate"]) if match["rate"] is not None else 1.0
    if not 0 < rate <= 1:
        raise bad(f"has rate {rate:g}; use (0, 1]")
    limit = int(match["count"]) if match["count"] is not None else None
    if limit == 0:
        raise bad("has count 0; use 1 or more")
    return Fault(service, operation, code, status, message, rate, limit, spec)


@cache
def _operations(service: str) -> frozenset[str] | None:
    import botocore.session

    session = botocore.session.get_session()
    if service not in session.get_available_services():
        return None
    return frozenset(session.get_service_model(service).operation_names)


def from_environ(environ: Mapping[str, str] | None = None) -> FaultPlan | None:
    """The plan ``IRAAS_FAULTS`` asks for, one per process (all its clients draw from it and share
    its counts); None when it is unset or empty (no faults, no hooks)."""
    env = os.environ if environ is None else environ
    text = env.get(FAULTS_ENV, "").strip()
    if not text:
        return None
    raw_seed = env.get(SEED_ENV, "").strip()
    try:
        seed = int(raw_seed) if raw_seed else None
    except ValueError:
        raise ConfigError(f"{SEED_ENV}={raw_seed!r} is not a whole number") from None
    with _lock:
        plan = _plans.get((text, seed))
    if plan is None:
        plan = parse(text, seed)
        with _lock:
            known = (text, seed) in _plans
            plan = _plans.setdefault((text, seed), plan)
        if plan.faults and not known:
            log.warning("%s is set: AWS calls fail on purpose (%s)", FAULTS_ENV, ", ".join(f.spec for f in plan.faults))
    return plan if plan.faults else None


def error_response(protocol: str, service: str, url: str, status: int, code: str, message: str) -> AWSResponse:
    """An error answer as ``service`` sends it over ``protocol``, for botocore to parse."""
    request_id = f"iraas-fault-{random.getrandbits(48):012x}"
    headers = {"x-amzn-RequestId": request_id, "x-amz-request-id": request_id}
    if protocol in ("json", "rest-json"):
        headers["Content-Type"] = "application/x-amz-json-1.0" if protocol == "json" else "application/json"
        headers["x-amzn-ErrorType"] = code
        body = json.dumps({"__type": f"com.amazonaws.{service}#{code}", "message": message})
    else:
        headers["Content-Type"] = "text/xml" if protocol != "rest-xml" else "application/xml"
        error = f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        if protocol == "rest-xml":
            body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{error}<RequestId>{request_id}</RequestId></Error>'
        elif protocol == "ec2":
            body = f"<Response><Errors><Error>{error}</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        else:  # query
            body = f"<ErrorResponse><Error><Type>Sender</Type>{error}</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    return AWSResponse(url, status, headers, _Raw(body.encode()))


class _Raw(io.BytesIO):
    """A response body as urllib3 would stream it."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(65536):
            yield chunk


def injected() -> Counter[str]:
    """Faults injected in this process so far, per ``service:Operation`` (a copy)."""
    with _lock:
        return Counter(_injected)


def reset() -> None:
    """Forget the counts and the plans read from the environment, with their draws (tests)."""
    with _lock:
        _injected.clear()
        _plans.clear()


def injected_into(request: Any) -> bool:
    """Whether a fault answered ``request`` (it never reached the endpoint)."""
    return FAULT_HEADER in request.headers
