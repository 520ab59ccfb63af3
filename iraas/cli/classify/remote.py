"""``iraas classify --remote URL PATH...``: send the files to a running service, many at a time.

Each file is one ``POST /v1/images?wait=S`` (the raw bytes, its name in ``?name=``); an answer
that takes longer than the service's wait (a cold fleet, a long queue) comes back ``202`` and is
then read with ``GET /v1/images/{id}`` until it is there. The HTTP API offers no longer wait to a
client, so this is the one place that polls, with a growing interval. Every request carries the
API key of ``IRAAS_API_KEY`` (``x-api-key``), when it is set.
"""

from __future__ import annotations

import json
import mimetypes
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlencode, urlsplit

import urllib3

from iraas.cli.api_key import client_headers, client_refusal
from iraas.errors import UsageError

from .report import FileResult, Messages, Progress, ResultWriter, Summary, isatty

DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT_S = 120.0
SERVER_WAIT_S = 25.0  # below the service's longest wait (30 s; 25 s behind API Gateway's 29 s limit)
POLL_FIRST_S, POLL_MAX_S = 0.25, 2.0  # after a 202: the first pause, the longest one
# A keyed route that touches nothing: 404 with a good key, 401/403 without one.
KEY_PROBE_PATH = "/v1/images/" + "0" * 32


def check_url(value: str) -> str:
    """``--remote``'s check: an http(s) URL with a host (``host:port`` alone means http); the
    URL without a trailing slash. Raises ValueError otherwise."""
    url = value if "://" in value else f"http://{value}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValueError(f"{value!r} has a port outside 1-65535") from None
    return url.rstrip("/")


class Service:
    """One running IRaaS web tier, spoken to over a pool of ``concurrency`` connections."""

    def __init__(
        self, url: str, concurrency: int = DEFAULT_CONCURRENCY, timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.url = check_url(url)
        self.auth = client_headers(env)  # {"x-api-key": ...} from IRAAS_API_KEY, or nothing
        self.timeout_s, self.clock, self.sleep = timeout_s, clock, sleep
        self.wait_s = min(SERVER_WAIT_S, timeout_s)
        # A connection refused or reset before the request went out is retried; the
        # Idempotency-Key on each POST makes a retry after a lost answer the same request too.
        retries = urllib3.Retry(total=3, connect=3, read=1, status=0, other=0, backoff_factor=0.2,
                                allowed_methods=None, raise_on_status=False)
        self.http = urllib3.PoolManager(maxsize=concurrency, block=True, retries=retries)

    def check(self) -> None:
        """Raise UsageError in one line unless the service answers its health check and takes the
        API key (or needs none): a missing key is said once, not once per file."""
        try:
            response = self.http.request("GET", f"{self.url}/v1/healthz", timeout=5.0, retries=1)
            if response.status == 200:
                probe = self.http.request("GET", self.url + KEY_PROBE_PATH, headers=self.auth, timeout=10.0, retries=1)
        except urllib3.exceptions.HTTPError as exc:
            raise UsageError(f"no IRaaS service at {self.url}: {reason(exc)}; is `iraas up` running?") from None
        if response.status != 200:
            raise UsageError(f"{self.url}/v1/healthz answered HTTP {response.status}: {_error_message(response)}")
        refusal = client_refusal(self.url, probe.status, bool(self.auth))
        if refusal:
            raise UsageError(f"{refusal}: {_error_message(probe)}")

    def classify(self, path: str) -> FileResult:
        """Send one file and wait for its answer; every failure is a FileResult with an error."""
        started = self.clock()
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            return FileResult(path, error=exc.strerror or str(exc))
        query = urlencode({"wait": f"{self.wait_s:g}", "name": os.path.basename(path)})
        headers = {"Content-Type": _content_type(path), "Idempotency-Key": uuid.uuid4().hex, **self.auth}
        try:
            response = self.http.request(
                "POST", f"{self.url}/v1/images?{query}", body=data, headers=headers,
                timeout=urllib3.Timeout(connect=10.0, read=self.wait_s + 15.0),
            )
            while response.status == 202:  # not answered within the wait: read it by id
                if self.clock() - started >= self.timeout_s:
                    return FileResult(path, error=f"no answer within {self.timeout_s:g} s")
                response = self._poll(_json(response).get("id", ""), started)
        except urllib3.exceptions.HTTPError as exc:
            return FileResult(path, error=f"cannot reach {self.url}: {reason(exc)}")
        if response.status != 200:
            return FileResult(path, error=_error_message(response))
        body = _json(response)
        return FileResult(
            path, body.get("label"), body.get("confidence"), body.get("wnid"), tuple(body.get("top5") or ()),
            latency_s=self.clock() - started,
        )

    def _poll(self, request_id: str, started: float) -> Any:
        """``GET /v1/images/{id}`` after a pause that grows with the time already waited."""
        waited = self.clock() - started
        self.sleep(min(POLL_MAX_S, max(POLL_FIRST_S, waited / 20)))
        return self.http.request("GET", f"{self.url}/v1/images/{quote(request_id)}", headers=self.auth, timeout=10.0)


def run(
    url: str,
    paths: list[str],
    writer: ResultWriter,
    err: TextIO,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    summary: bool = True,
    skipped: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Classify ``paths`` on the service at ``url``, ``concurrency`` requests at a time; write the
    results in input order, show progress on a terminal and end with a summary (with latency
    percentiles) on ``err``. Returns 0 if every file got a label, 1 otherwise; raises UsageError
    if the service does not answer at all."""
    service = Service(url, concurrency, timeout_s, clock=clock)
    service.check()
    started = clock()
    progress = Progress(err, len(paths), min_interval_s=0.1, clock=clock) if isatty(err) else None
    report = Messages(err, progress)
    jobs: queue.Queue[tuple[int, str] | None] = queue.Queue()
    answers: queue.Queue[tuple[int, FileResult]] = queue.Queue()
    for job in enumerate(paths):
        jobs.put(job)
    senders = min(concurrency, len(paths))
    for _ in range(senders):
        jobs.put(None)  # one stop sign each
        # Daemon threads: Ctrl-C ends the run at once instead of waiting for requests in flight.
        threading.Thread(target=_send_all, args=(jobs, answers, service.classify), daemon=True).start()
    arrived: dict[int, FileResult] = {}
    written = failed = 0
    latencies: list[float] = []
    try:
        for finished in range(1, len(paths) + 1):
            index, result = answers.get()
            arrived[index] = result
            failed += not result.ok
            if result.latency_s is not None:
                latencies.append(result.latency_s)
            if progress:
                progress.update(finished, failed)
            while written in arrived:  # in input order, as soon as the earlier ones are in
                ready = arrived.pop(written)
                if not ready.ok:
                    report(f"{ready.path}: {ready.error}")
                writer.write(ready)
                written += 1
    finally:
        if progress:
            progress.done()
    if summary:
        lines = Summary(len(paths), failed, clock() - started, skipped, latencies, senders).lines()
        for line in lines:
            print(line, file=err)
    return 1 if failed else 0


def _send_all(
    jobs: queue.Queue[tuple[int, str] | None],
    answers: queue.Queue[tuple[int, FileResult]],
    classify: Callable[[str], FileResult],
) -> None:
    while (job := jobs.get()) is not None:
        index, path = job
        try:
            result = classify(path)
        except Exception as exc:  # noqa: BLE001 - one file's surprise must not stall the run
            result = FileResult(path, error=f"{type(exc).__name__}: {exc}")
        answers.put((index, result))


def _content_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    return guessed if guessed and guessed.startswith("image/") else "application/octet-stream"


def _json(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.data)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_message(response: Any) -> str:
    """The service's own message (``{"error": {"code", "message"}}``), else the status."""
    error = _json(response).get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    text = response.data[:200].decode("utf-8", "replace").strip()
    return f"HTTP {response.status}" + (f": {text}" if text else "")


def reason(exc: Exception) -> str:
    """The innermost cause of a urllib3 error, e.g. "Failed to establish a new connection:
    [Errno 111] Connection refused", without the connection object urllib3 puts first."""
    cause: Any = exc
    while getattr(cause, "reason", None) is not None:
        cause = cause.reason
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return re.sub(r"^\w*Connection(Pool)?\([^)]*\): ", "", str(cause))
