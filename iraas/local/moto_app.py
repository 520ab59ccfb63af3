"""The embedded stack's AWS endpoint: moto's server with its hot path patched.

``python -m iraas.local.moto_app -H HOST -p PORT`` serves exactly what ``python -m moto.server``
serves (the same Flask apps, the same threaded werkzeug server and request handler), after five
patches that take CPU out of every call, a sixth that takes it out of DynamoDB transactions
(``dynamodb_transaction_copy``), and a seventh (``sqs_abandoned_long_poll``, below) that ends the
long polls of clients that are gone. The endpoint is one process, and every S3 and SQS call
of the web tier and the workers goes through it, so its CPU per call bounds the whole stack.
Measured with ``python -m bench.moto_calls``, SQS calls cost 8 to 12 times less CPU with a backlog
of 100 requests in the queue (about 3 times less with 10: moto's SQS cost grows with the queue),
S3 calls about 0.5 ms less; each of the five is there because leaving it out measurably costs CPU:

``dispatcher_host_cache``
    moto's dispatcher resolves the backend of every request under one global lock, and the
    resolution lists moto's ~180 module folders on disk (``backends.list_of_moto_modules()``:
    ``os.listdir`` plus an ``isdir`` per entry), ~0.6 ms a call. :class:`CachedDomainDispatcherApplication`
    resolves each distinct host once, with moto's own code, and remembers the answer.
``sqs_clock``
    moto's SQS models read the clock through ``moto.core.utils.unix_time``: two datetimes, two
    import statements and a subtraction per reading, and they read it for every message held in
    a queue on every receive, send and depth query. The patch gives ``moto.sqs.models`` a clock
    that reads the same system clock, floors it to microseconds as ``datetime.now`` does, and
    returns the same float, bit for bit.
``sqs_queue_counts``
    ``Queue.messages`` and the not-visible and delayed counts test each message's visibility and
    delay with a clock reading per message per test; the patch reads the clock once per scan and
    applies moto's tests (``now > visible_at``, ``now < delayed_until``) to every message.
``sqs_retention_check``
    For every message a receive hands out, moto checks its retention period by asking
    ``get_queue_attributes`` for it, which builds every attribute of the queue (three counts of
    its messages) three times. The patch reads the queue's ``message_retention_period`` (the
    value that attribute reports) directly.
``sqs_attributes_once``
    ``get_queue_attributes`` builds the queue's attributes three times per attribute name asked
    for (the web tier, the scaler and the worker ask for the queue depth); the patch builds them
    once per call and picks the same names from them.

``dynamodb_transaction_copy``
    Before a ``TransactWriteItems`` applies anything, moto deep-copies the table of each of its
    actions to roll back to: the same table again for every action, up to 100 copies of it per
    call (12 s for one 100-update transaction on a table of 5,000 students). The patch hands moto's
    backup loop the first copy of a table again for the later actions of the same call: nothing
    has changed in between, so it is the copy moto would have made. The transaction, its checks,
    its errors and its rollback are moto's own code.

``sqs_abandoned_long_poll``
    moto's receive goes on long-polling after its client has closed the connection (a worker
    stopped or killed in its receive) and then takes a message for nobody, counting a receive:
    three such and an untouched request is dead-lettered. The patch ends such a receive when it
    would wait again (before it has taken anything).

SQS semantics (visibility timeouts, receive counts, redrive to the dead-letter queue, delays,
retention) are moto's own: the patches change how often moto reads the clock and builds a
queue's attributes, not what it does with them. Each patch has a check that the moto internals it relies on still have
the shape it expects; :func:`apply_patches` runs them all first and raises :class:`MotoPatchError`
naming the patch, so a moto upgrade that breaks one fails loudly at start-up instead of serving
with the patch silently not applied (moto is pinned in pyproject.toml for the same reason).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import inspect
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import moto.backends as moto_backends
import moto.core.utils as moto_utils
import moto.dynamodb.models as ddb_models
import moto.sqs.models as sqs_models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from iraas.local.keep_alive import KeepAliveMixin, keeping_alive
from iraas.proctitle import endpoint_title, set_title, stack_of


class MotoPatchError(RuntimeError):
    """A patch no longer fits the installed moto: its internals changed shape."""


@dataclass(frozen=True)
class Patch:
    name: str
    check: Callable[[], None]  # raises MotoPatchError when the patch no longer fits
    apply: Callable[[], None]  # idempotent


def _require(patch: str, condition: bool, what: str) -> None:
    if not condition:
        raise MotoPatchError(
            f"moto patch {patch!r} does not fit the installed moto: {what}. "
            "Update iraas/local/moto_app.py for this moto version, or pin moto back."
        )


def _params(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def _source(obj: Any) -> str:
    """The source of a moto function ("" when it cannot be read: the check then fails, loudly)."""
    try:
        return inspect.getsource(getattr(obj, "fget", obj))
    except (OSError, TypeError):
        return ""


def _moto_attr(owner: Any, attr: str, ours: Any, saved: Any) -> Any:
    """What moto has at ``owner.attr``: the live attribute, or the one saved at import once ours
    replaced it (so a check still looks at moto's code after the patch is applied)."""
    current = getattr(owner, attr, None)
    if current is ours or (isinstance(current, property) and current.fget is ours):
        return saved
    return current


def _calls(function: Any, name: str) -> bool:
    """True if ``function``'s code (or a nested comprehension's) looks up ``name``."""
    code = getattr(getattr(function, "fget", function), "__code__", None)
    stack = [code] if code is not None else []
    while stack:
        current = stack.pop()
        if name in current.co_names:
            return True
        stack.extend(const for const in current.co_consts if hasattr(const, "co_names"))
    return False


# --- dispatcher_host_cache -------------------------------------------------------------------

HOST_CACHE_LIMIT = 1024  # distinct hosts remembered; a client inventing hosts cannot grow it further


class CachedDomainDispatcherApplication(DomainDispatcherApplication):
    """moto's dispatcher, resolving each distinct host to its backend once.

    ``get_backend_for_host`` depends only on the host and on what is fixed for the life of the
    process (moto's module folders, its URL patterns), so the first answer for a host is the
    answer for every later request: the same backend is chosen for the same request.
    """

    def __init__(self, create_app: Callable[..., Any]) -> None:
        super().__init__(create_app)
        self._backend_by_host: dict[str, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host is None:
            return None
        try:
            return self._backend_by_host[host]
        except KeyError:
            pass
        backend = super().get_backend_for_host(host)  # moto's own resolution, lists the folders
        if len(self._backend_by_host) < HOST_CACHE_LIMIT:
            self._backend_by_host[host] = backend
        return backend


def check_dispatcher_host_cache() -> None:
    name = "dispatcher_host_cache"
    _require(name, callable(getattr(moto_backends, "list_of_moto_modules", None)),
             "moto.backends.list_of_moto_modules is gone")
    method = getattr(DomainDispatcherApplication, "get_backend_for_host", None)
    _require(name, callable(method) and _params(method) == ["self", "host"],
             "DomainDispatcherApplication.get_backend_for_host(self, host) is gone or changed")
    _require(name, _calls(method, "list_of_moto_modules"),
             "get_backend_for_host no longer lists moto's modules (the cost the cache avoids)")
    get_application = getattr(DomainDispatcherApplication, "get_application", None)
    _require(name, callable(get_application) and _calls(get_application, "get_backend_for_host"),
             "DomainDispatcherApplication.get_application no longer resolves through get_backend_for_host")
    _require(name, not _calls(get_application, "list_of_moto_modules"),
             "DomainDispatcherApplication.get_application lists moto's modules itself")
    _require(name, "lock" in _source(DomainDispatcherApplication.__init__),
             "DomainDispatcherApplication no longer guards its lookups with self.lock")


def apply_dispatcher_host_cache() -> None:
    """Nothing to patch in place: :func:`make_app` builds the subclass."""


# --- sqs_clock -------------------------------------------------------------------------------

_MICROSECONDS_PER_DAY = 86_400 * 1_000_000
_original_unix_time: Callable[..., float] = moto_utils.unix_time
_original_unix_time_millis: Callable[..., float] = moto_utils.unix_time_millis


def fast_unix_time(dt: Any = None) -> float:
    """``moto.core.utils.unix_time``, bit for bit, without building datetimes for "now".

    moto computes ``utcnow() - utcfromtimestamp(0)`` and adds up the timedelta as
    ``days * 86400 + (seconds + microseconds / 1e6)``; ``datetime.now`` reads the same system
    clock as ``time.time_ns`` and floors it to microseconds. The same integers, added up the same
    way, give the same float.
    """
    if dt is not None:
        return _original_unix_time(dt)
    days, rest = divmod(time.time_ns() // 1000, _MICROSECONDS_PER_DAY)
    seconds, microseconds = divmod(rest, 1_000_000)
    return (days * 86400) + (seconds + (microseconds / 1e6))


def fast_unix_time_millis(dt: Any = None) -> float:
    """``moto.core.utils.unix_time_millis``: ``unix_time(dt) * 1000.0``."""
    return fast_unix_time(dt) * 1000.0


def check_sqs_clock() -> None:
    name = "sqs_clock"
    for attr, original in (("unix_time", _original_unix_time), ("unix_time_millis", _original_unix_time_millis)):
        current = getattr(sqs_models, attr, None)
        _require(name, current is original or current in (fast_unix_time, fast_unix_time_millis),
                 f"moto.sqs.models.{attr} is no longer moto.core.utils.{attr}")
        _require(name, _params(original) == ["dt"], f"moto.core.utils.{attr}(dt=None) changed its signature")
    _require(name, _calls(_original_unix_time, "utcnow") and _calls(_original_unix_time, "utcfromtimestamp"),
             "moto.core.utils.unix_time no longer measures from utcnow() to utcfromtimestamp(0)")
    message = getattr(sqs_models, "Message", None)
    _require(name, message is not None and all(
        _calls(getattr(message, attr), "unix_time_millis") for attr in ("visible", "delayed", "change_visibility")
    ), "moto.sqs.models.Message no longer reads the clock through unix_time_millis")
    # The same clock: the two agree (each reading is a fresh "now", so allow for the time between).
    before = _original_unix_time()
    fast = fast_unix_time()
    after = _original_unix_time()
    _require(name, before - 0.001 <= fast <= after + 0.001,
             f"the fast clock disagrees with moto's ({before} <= {fast} <= {after} fails)")
    sample = datetime.datetime(2024, 2, 29, 12, 34, 56, 789012)
    _require(name, fast_unix_time(sample) == _original_unix_time(sample), "unix_time(dt) is not delegated")


def apply_sqs_clock() -> None:
    sqs_models.unix_time = fast_unix_time
    sqs_models.unix_time_millis = fast_unix_time_millis


# --- sqs_retention_check ---------------------------------------------------------------------

_original_retention_check = getattr(sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", None)


def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
    """moto's check, reading ``MessageRetentionPeriod`` from the queue rather than through
    ``get_queue_attributes`` (which builds every attribute of the queue three times to return it)."""
    queue = self.get_queue(queue_name)  # raises QueueDoesNotExist as before
    retain_until = queue.message_retention_period + message.sent_timestamp / 1000
    return not retain_until <= sqs_models.unix_time()


def check_sqs_retention_check() -> None:
    name = "sqs_retention_check"
    original = _moto_attr(sqs_models.SQSBackend, "is_message_valid_based_on_retention_period",
                          is_message_valid_based_on_retention_period, _original_retention_check)
    _require(name, original is not None and _params(original) == ["self", "queue_name", "message"],
             "SQSBackend.is_message_valid_based_on_retention_period(self, queue_name, message) is gone or changed")
    _require(name, _calls(original, "get_queue_attributes") and _calls(original, "unix_time"),
             "SQSBackend.is_message_valid_based_on_retention_period no longer reads the attribute and the clock")
    _require(name, _calls(sqs_models.SQSBackend.receive_message, "is_message_valid_based_on_retention_period"),
             "SQSBackend.receive_message no longer checks retention through that method")
    queue_cls = sqs_models.Queue
    _require(name, "MessageRetentionPeriod" in getattr(queue_cls, "BASE_ATTRIBUTES", ()),
             "MessageRetentionPeriod is no longer a base attribute of moto's Queue")
    _require(name, moto_utils.camelcase_to_underscores("MessageRetentionPeriod") == "message_retention_period",
             "Queue.attributes no longer reads MessageRetentionPeriod from message_retention_period")
    _require(name, "MessageRetentionPeriod" in _source(queue_cls._set_attributes)
             and "integer_fields" in _source(queue_cls._set_attributes),
             "Queue._set_attributes no longer stores MessageRetentionPeriod as an integer")


def apply_sqs_retention_check() -> None:
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )


# --- sqs_queue_counts ------------------------------------------------------------------------


def _queue_messages(self: Any) -> list[Any]:
    """``Queue.messages`` (visible and not delayed), reading the clock once per scan."""
    now = sqs_models.unix_time_millis()
    return [message for message in self._messages if now > message.visible_at and not now < message.delayed_until]


def _queue_not_visible(self: Any) -> int:
    """``Queue.approximate_number_of_messages_not_visible``, reading the clock once per scan."""
    now = sqs_models.unix_time_millis()
    return len([message for message in self._messages if not now > message.visible_at])


def _queue_delayed(self: Any) -> int:
    """``Queue.approximate_number_of_messages_delayed``, reading the clock once per scan."""
    now = sqs_models.unix_time_millis()
    return len([message for message in self._messages if now < message.delayed_until])


_QUEUE_COUNTS: dict[str, tuple[Callable[..., Any], str]] = {
    # property of moto's Queue: (its replacement, the test moto applies to each message)
    "messages": (_queue_messages, "message.visible and not message.delayed"),
    "approximate_number_of_messages_not_visible": (_queue_not_visible, "if not m.visible"),
    "approximate_number_of_messages_delayed": (_queue_delayed, "if m.delayed"),
}
_original_queue_counts = {name: getattr(sqs_models.Queue, name, None) for name in _QUEUE_COUNTS}


def check_sqs_queue_counts() -> None:
    name = "sqs_queue_counts"
    message = sqs_models.Message
    for attr, needle in (("visible", "current_time > self.visible_at"), ("delayed", "current_time < self.delayed_until")):
        prop = getattr(message, attr, None)
        _require(name, isinstance(prop, property) and needle in _source(prop),
                 f"Message.{attr} no longer tests {needle!r}")
    init = _source(message.__init__)
    _require(name, "self.visible_at = " in init and "self.delayed_until = " in init,
             "Message no longer keeps visible_at and delayed_until")
    for attr, (_, needle) in _QUEUE_COUNTS.items():
        original = _moto_attr(sqs_models.Queue, attr, _QUEUE_COUNTS[attr][0], _original_queue_counts[attr])
        _require(name, isinstance(original, property) and needle in _source(original)
                 and "self._messages" in _source(original),
                 f"Queue.{attr} no longer filters self._messages by {needle!r}")
    _require(name, "len(self.messages)" in _source(sqs_models.Queue.approximate_number_of_messages),
             "Queue.approximate_number_of_messages no longer counts Queue.messages")


def apply_sqs_queue_counts() -> None:
    for attr, (replacement, _) in _QUEUE_COUNTS.items():
        setattr(sqs_models.Queue, attr, property(replacement, doc=replacement.__doc__))


# --- sqs_attributes_once ---------------------------------------------------------------------

_original_get_queue_attributes = getattr(sqs_models.SQSBackend, "get_queue_attributes", None)


def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
    """moto's ``SQSBackend.get_queue_attributes``, building the queue's attributes once per call
    (moto builds them three times per name asked for)."""
    queue = self.get_queue(queue_name)
    if not attribute_names:
        return {}
    valid_names = ["All"] + queue.BASE_ATTRIBUTES + queue.FIFO_ATTRIBUTES + queue.KMS_ATTRIBUTES
    invalid_name = next((name for name in attribute_names if name not in valid_names), None)
    if invalid_name or invalid_name == "":
        raise sqs_models.InvalidAttributeName(invalid_name)
    current = queue.attributes
    if "All" in attribute_names:
        return current
    return {name: current[name] for name in attribute_names if name in current and current[name] is not None}


def check_sqs_attributes_once() -> None:
    name = "sqs_attributes_once"
    original = _moto_attr(sqs_models.SQSBackend, "get_queue_attributes", get_queue_attributes,
                          _original_get_queue_attributes)
    _require(name, original is not None and _params(original) == ["self", "queue_name", "attribute_names"],
             "SQSBackend.get_queue_attributes(self, queue_name, attribute_names) is gone or changed")
    source = _source(original)
    for needle in (
        "if not attribute_names:",
        '["All"]',
        "+ queue.BASE_ATTRIBUTES",
        "+ queue.FIFO_ATTRIBUTES",
        "+ queue.KMS_ATTRIBUTES",
        "if invalid_name or invalid_name == \"\":",
        "raise InvalidAttributeName(invalid_name)",
        'if "All" in attribute_names:',
        "attributes = queue.attributes",
        "if name in queue.attributes",
        "if queue.attributes.get(name) is not None:",
        "return attributes",
    ):
        _require(name, needle in source, f"SQSBackend.get_queue_attributes no longer has {needle!r}")
    _require(name, isinstance(getattr(sqs_models.Queue, "attributes", None), property),
             "Queue.attributes is no longer a property")
    _require(name, isinstance(getattr(sqs_models, "InvalidAttributeName", None), type),
             "moto.sqs.models.InvalidAttributeName is gone")


def apply_sqs_attributes_once() -> None:
    sqs_models.SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]


# --- dynamodb_transaction_copy ---------------------------------------------------------------

_original_transact_write_items = getattr(ddb_models.DynamoDBBackend, "transact_write_items", None)
_transaction = threading.local()  # the tables copied so far by this thread's transaction, if one runs
_BACKUP_LINE = "original_table_state[table_name] = copy.deepcopy("


class TableCopiedOncePerTransaction:
    """``moto.dynamodb.models``' ``copy`` module: the real one, except that inside a transaction
    (:func:`transact_write_items`) a table deep-copied before is answered with its first copy."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        copies: dict[int, tuple[Any, Any]] | None = getattr(_transaction, "tables", None)
        if copies is None or not isinstance(value, ddb_models.Table):
            return copy.deepcopy(value, memo)
        if id(value) not in copies:  # the table itself is kept with its copy: its id stays its own
            copies[id(value)] = (value, copy.deepcopy(value, memo))
        return copies[id(value)][1]


_COPY = TableCopiedOncePerTransaction()


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``DynamoDBBackend.transact_write_items``, each table of it copied once for the rollback."""
    assert _original_transact_write_items is not None
    _transaction.tables = {}
    try:
        _original_transact_write_items(self, transact_items)
    finally:
        del _transaction.tables


def check_dynamodb_transaction_copy() -> None:
    name = "dynamodb_transaction_copy"
    original = _moto_attr(ddb_models.DynamoDBBackend, "transact_write_items", transact_write_items,
                          _original_transact_write_items)
    _require(name, original is not None and _params(original) == ["self", "transact_items"],
             "DynamoDBBackend.transact_write_items(self, transact_items) is gone or changed")
    source = _source(original)
    # The backup is made table by table, action by action, before any action is applied: every
    # copy of a table within one call is a copy of the same state.
    _require(name, source.count(_BACKUP_LINE) == 1 and "self.tables[table_name]" in source,
             f"DynamoDBBackend.transact_write_items no longer backs a table up with {_BACKUP_LINE!r}")
    backup = source.find(_BACKUP_LINE)
    for applied in ("self.put_item(", "self.update_item(", "self.delete_item(", "self.get_item("):
        _require(name, 0 <= backup < source.find(applied),
                 f"DynamoDBBackend.transact_write_items calls {applied[5:-1]} before its backup is made")
    _require(name, "self.tables[table_name] = original_table_state[table_name]" in source,
             "DynamoDBBackend.transact_write_items no longer rolls back by putting the copies back")
    _require(name, getattr(ddb_models, "copy", None) in (copy, _COPY),
             "moto.dynamodb.models no longer copies through the copy module")
    _require(name, isinstance(getattr(ddb_models, "Table", None), type), "moto.dynamodb.models.Table is gone")


def apply_dynamodb_transaction_copy() -> None:
    ddb_models.copy = _COPY  # type: ignore[assignment]
    ddb_models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


# --- sqs_abandoned_long_poll -----------------------------------------------------------------
#
# moto's receive keeps long-polling (up to 20 s) after its client has gone (a worker stopped or
# killed in the middle of its receive), and then takes the next message for nobody: hidden for its
# visibility timeout, one more on its receive count. Three of those and a request that nobody ever
# worked on is in the dead-letter queue, with no result. SQS itself may do the same, which is why a
# stopping worker finishes its receive (iraas/images/worker.py); here the endpoint also stops the
# long poll of a client that is no longer connected, as soon as it would wait again.


class ClientGone(Exception):
    """The client of a long poll has closed its connection: nothing is to be received for it."""


_client = threading.local()  # the connection of the request this server thread is serving
_original_wait_for_messages = getattr(sqs_models.Queue, "wait_for_messages", None)


def client_gone(connection: Any) -> bool:
    """Whether the peer of ``connection`` has closed it (a read would see end of file)."""
    import socket

    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False  # open, nothing sent
    except OSError:
        return True  # reset


def wait_for_messages(self: Any, timeout: int) -> None:
    """moto's ``Queue.wait_for_messages``, first giving up the receive if its client has gone."""
    connection = getattr(_client, "connection", None)
    if connection is not None and client_gone(connection):
        raise ClientGone()
    assert _original_wait_for_messages is not None
    _original_wait_for_messages(self, timeout)


def check_sqs_abandoned_long_poll() -> None:
    name = "sqs_abandoned_long_poll"
    original = _moto_attr(sqs_models.Queue, "wait_for_messages", wait_for_messages, _original_wait_for_messages)
    _require(name, original is not None and _params(original) == ["self", "timeout"],
             "Queue.wait_for_messages(self, timeout) is gone or changed")
    receive = _source(sqs_models.SQSBackend.receive_message)
    # Raising in the wait loses nothing only while the loop waits with no result taken yet.
    for needle in ("if result or (wait_seconds_timeout and unix_time() > polling_end):",
                   "if previous_result_count == len(result):", "queue.wait_for_messages(1)"):
        _require(name, needle in receive, f"SQSBackend.receive_message no longer has {needle!r}")
    _require(name, hasattr(MotoRequestHandler, "run_wsgi"), "werkzeug's request handler has no run_wsgi")


def apply_sqs_abandoned_long_poll() -> None:
    sqs_models.Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]


def answering_gone_clients(app: Any) -> Any:
    """``app``, with a receive given up for a gone client ended quietly (nobody reads the answer;
    werkzeug would log a traceback for each)."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            return app(environ, start_response)
        except ClientGone:
            start_response("499 Client Closed Request", [("Content-Length", "0")])
            return [b""]

    return wsgi


# --- all of them -----------------------------------------------------------------------------

PATCHES: tuple[Patch, ...] = (
    Patch("dispatcher_host_cache", check_dispatcher_host_cache, apply_dispatcher_host_cache),
    Patch("sqs_clock", check_sqs_clock, apply_sqs_clock),
    Patch("sqs_retention_check", check_sqs_retention_check, apply_sqs_retention_check),
    Patch("sqs_queue_counts", check_sqs_queue_counts, apply_sqs_queue_counts),
    Patch("sqs_attributes_once", check_sqs_attributes_once, apply_sqs_attributes_once),
    Patch("dynamodb_transaction_copy", check_dynamodb_transaction_copy, apply_dynamodb_transaction_copy),
    Patch("sqs_abandoned_long_poll", check_sqs_abandoned_long_poll, apply_sqs_abandoned_long_poll),
)


def check_patches() -> None:
    """Raise :class:`MotoPatchError` (naming the patch) if any patch no longer fits."""
    for patch in PATCHES:
        patch.check()


def apply_patches() -> None:
    """Check every patch, then apply them all (none if any does not fit). Idempotent."""
    check_patches()
    for patch in PATCHES:
        patch.apply()


def make_app() -> CachedDomainDispatcherApplication:
    """The patched WSGI app, built the way ``moto.server.main`` builds its own."""
    apply_patches()
    app = CachedDomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]
    return app


def _exit(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


REQUEST_COUNT_EVERY_S = 1.0


class QuietRequestHandler(KeepAliveMixin, MotoRequestHandler):
    """Requests are counted, not logged one by one; server errors still get a line each.

    werkzeug logs each request through the logging module (formatting, a handler lock that every
    request thread contends for): under a burst that was a sixth of the server's CPU, and a plain
    line per request still a twelfth. ``served N requests`` is written every second
    while the count changes (``bench.service`` reads it to count AWS calls per image).
    """

    served = 0  # += under the GIL; a lost increment would only skew a benchmark figure

    def run_wsgi(self) -> None:
        _client.connection = self.connection  # for sqs_abandoned_long_poll
        try:
            super().run_wsgi()
        finally:
            _client.connection = None

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        QuietRequestHandler.served += 1
        status = getattr(code, "value", code)
        if isinstance(status, int) and status >= 500:
            sys.stderr.write(f"{self.command} {self.path} {status}\n")


def _report_request_count() -> None:
    last = -1
    while True:
        time.sleep(REQUEST_COUNT_EVERY_S)
        if QuietRequestHandler.served != last:
            last = QuietRequestHandler.served
            sys.stderr.write(f"served {last} requests\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="which host to bind")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)),
                        help="port to listen on")
    parser.add_argument("--state", type=Path, help="keep the template's data in this folder (iraas/local/durable)")
    parser.add_argument("--template", type=Path, help="with --state: the template to provision before serving")
    parser.add_argument("--region", default="us-east-1", help="with --state: the region to provision in")
    args = parser.parse_args(argv)
    if args.state is not None and args.template is None:
        parser.error("--state needs --template")
    set_title(endpoint_title(f"{args.host}:{args.port}"), stack_of())
    # moto reads MOTO_PORT to build URLs that point back at itself (as moto.server does).
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGINT, _exit)
    signal.signal(signal.SIGTERM, _exit)
    app: Any = make_app()
    if args.state is not None:
        app = _durable(app, args.state, args.template, args.region)
    app = keeping_alive(answering_gone_clients(app))
    threading.Thread(target=_report_request_count, name="request-count", daemon=True).start()
    run_simple(args.host, args.port, app, threaded=True, request_handler=QuietRequestHandler)


def _durable(app: Any, state_dir: Path, template: Path, region: str) -> Any:
    """Provision ``template`` and restore the kept data before listening (clients meanwhile see a
    refused connection, which they retry, never a half-restored endpoint)."""
    from iraas.local.durable.endpoint import open_endpoint_state
    from iraas.local.durable.store import StateError

    try:
        durable = open_endpoint_state(state_dir, lambda: provision_in_process(template, region), region)
    except StateError as exc:
        sys.stderr.write(f"moto_app: {exc}\n")
        sys.exit(2)
    sys.stderr.write(f"restored {durable.restored.describe()} from {durable.store.path} in {durable.restore_s:.2f} s\n")
    durable.restored.save(state_dir, durable.restore_s)
    durable.start_flushing()
    return durable.wrap(app)


def provision_in_process(template: Path, region: str) -> None:
    """Create the template's resources in this process's moto backends (the ones the server then
    serves), through boto3 and moto's in-process mock: the same provisioning code as over HTTP."""
    import boto3
    from moto import mock_aws

    from iraas.aws import local_credentials
    from iraas.local.provision import provision
    from iraas.local.template import load_template

    mock = mock_aws()
    mock.start()
    try:
        session = boto3.Session(**local_credentials(), region_name=region)
        provision(load_template(template), session=session, region=region)
    finally:
        mock.stop(remove_data=False)


if __name__ == "__main__":
    main()
