"""Which data a request changed, taken from moto's own backends, and written to the state file.

moto funnels every change of the data we keep through a few backend methods: objects through
``S3Backend.put_object`` and ``delete_object`` (copies, multipart completions and batch deletes
call them), items through ``DynamoDBBackend.put_item``, ``update_item`` and ``delete_item``
(``BatchWriteItem`` and ``TransactWriteItems`` call them; a cancelled transaction puts back its
tables, which is what is read afterwards), messages through ``Queue.add_message`` (sends, S3 event
notifications, moves to a dead-letter queue) and out through ``Queue.delete_message``, a receive
(redrive, retention) or a purge. Wrappers on those methods only note *what* changed; after the
request, :meth:`Capture.sync` reads the current state of each noted object, item or queue from
the backend and commits it, before the response leaves. Reading the state after the fact (not
the request) keeps conditional writes, updates and copies right without re-implementing them.

Like the patches in ``iraas/local/moto_app.py``, each wrapper checks first that moto still has
the shape it expects, so an upgrade that moves a funnel fails at start-up, not silently.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import moto.dynamodb.models as ddb_models
import moto.s3.models as s3_models
import moto.sqs.models as sqs_models

from iraas.local.durable.store import StateStore, StoredItem, StoredMessage, StoredObject, item_key

DEFAULT_ACCOUNT = "123456789012"  # moto's account: the one every embedded client signs as
PARTITION = "aws"


class CaptureError(RuntimeError):
    """moto changed shape: the state could not be captured safely."""


@dataclass(frozen=True)
class Scope:
    """What is kept: the data of the resources provisioned from the template."""

    region: str
    buckets: frozenset[str]
    tables: frozenset[str]
    queues: frozenset[str]
    account: str = DEFAULT_ACCOUNT


def s3_backend(scope: Scope) -> Any:
    return s3_models.s3_backends[scope.account][PARTITION]


def dynamodb_backend(scope: Scope) -> Any:
    return ddb_models.dynamodb_backends[scope.account][scope.region]


def sqs_backend(scope: Scope) -> Any:
    return sqs_models.sqs_backends[scope.account][scope.region]


def current_scope(region: str, account: str = DEFAULT_ACCOUNT) -> Scope:
    """Every bucket, table and queue that exists now (after provisioning)."""
    return Scope(
        region,
        frozenset(s3_models.s3_backends[account][PARTITION].buckets),
        frozenset(ddb_models.dynamodb_backends[account][region].tables),
        frozenset(sqs_models.sqs_backends[account][region].queues),
        account,
    )


def to_epoch(moment: datetime.datetime) -> float:
    """moto keeps naive UTC datetimes."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def stored_message(queue: str, message: Any) -> StoredMessage:
    return StoredMessage(
        queue=queue,
        id=message.id,
        body=message.body,
        attributes=dict(message.message_attributes or {}),
        sent_timestamp=message.sent_timestamp,
        receive_count=int(message.approximate_receive_count or 0),
        group_id=message.group_id,
        deduplication_id=message.deduplication_id,
    )


@dataclass
class Capture:
    """The changes noted since the last sync, and the messages (with their receive counts) known to
    be stored per queue."""

    store: StateStore
    scope: Scope
    stored: dict[str, dict[str, int]] = field(default_factory=dict)  # queue -> id -> receive count, as stored
    _objects: set[tuple[str, str]] = field(default_factory=set)
    _items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _queues: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- noting (called by the wrappers, inside moto's own calls) ------------------------

    def object_changed(self, bucket: str, key: str) -> None:
        if bucket in self.scope.buckets:
            with self._lock:
                self._objects.add((bucket, key))

    def item_changed(self, table: str, key: dict[str, Any]) -> None:
        if table in self.scope.tables:
            with self._lock:
                self._items[(table, item_key(key))] = key

    def queue_changed(self, queue: str) -> None:
        if queue in self.scope.queues:
            with self._lock:
                self._queues.add(queue)

    @property
    def pending(self) -> bool:
        return bool(self._objects or self._items or self._queues)

    # ---- writing ------------------------------------------------------------------------

    def sync(self) -> None:
        """Commit the current state of everything noted. The store's lock is held from taking the
        notes to the commit, so a request that finds its notes taken by another thread's sync
        waits here for that commit before it answers."""
        if not self.pending:
            return
        with self.store.lock:
            with self._lock:
                objects, self._objects = self._objects, set()
                items, self._items = self._items, {}
                queues, self._queues = self._queues, set()
            if not (objects or items or queues):
                return
            with self.store.transaction() as tx:
                self._sync_objects(tx, objects)
                self._sync_items(tx, items)
                self._sync_queues(tx, queues)

    def _sync_objects(self, tx: Any, objects: set[tuple[str, str]]) -> None:
        backend = s3_backend(self.scope)
        for bucket_name, key_name in objects:
            bucket = backend.buckets.get(bucket_name)
            key = bucket.keys.get(key_name) if bucket is not None else None
            if key is None:
                tx.delete_object(bucket_name, key_name)
            else:
                tx.put_object(StoredObject(bucket_name, key_name, key.value, dict(key.metadata), to_epoch(key.last_modified)))

    def _sync_items(self, tx: Any, items: dict[tuple[str, str], dict[str, Any]]) -> None:
        backend = dynamodb_backend(self.scope)
        for (table, stored_key), key in items.items():
            item = backend.get_item(table, key) if table in backend.tables else None
            if item is None:
                tx.delete_item(table, stored_key)
            else:
                tx.put_item(StoredItem(table, stored_key, item.to_json()["Attributes"]))

    def _sync_queues(self, tx: Any, queues: set[str]) -> None:
        backend = sqs_backend(self.scope)
        for name in queues:
            queue = backend.queues.get(name)
            messages = {m.id: m for m in list(queue._messages)} if queue is not None else {}
            known = self.stored.get(name, {})
            for message_id in known.keys() - messages.keys():
                tx.delete_message(name, message_id)
            counts = {}
            for message_id, message in messages.items():
                counts[message_id] = count = int(message.approximate_receive_count or 0)
                if message_id not in known:
                    tx.put_message(stored_message(name, message))
                elif known[message_id] != count:  # received again: maxReceiveCount holds across restarts
                    tx.set_receive_count(name, message_id, count)
            self.stored[name] = counts


# ---- the wrappers ---------------------------------------------------------------------------

Note = Callable[[Capture, Any, dict[str, Any]], None]


@dataclass(frozen=True)
class Funnel:
    owner: type
    method: str
    params: tuple[str, ...]  # the parameters the note reads
    note: Note


def _note_object(capture: Capture, _backend: Any, args: dict[str, Any]) -> None:
    capture.object_changed(args["bucket_name"], args["key_name"])


def _key_of(backend: Any, table_name: str, attributes: dict[str, Any]) -> dict[str, Any] | None:
    table = backend.tables.get(table_name)
    if table is None:
        return None
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    if any(name not in attributes for name in names):
        return None  # moto refuses the call itself
    return {name: attributes[name] for name in names}


def _note_item(field_name: str) -> Note:
    def note(capture: Capture, backend: Any, args: dict[str, Any]) -> None:
        key = _key_of(backend, args["table_name"], args[field_name] or {})
        if key is not None:
            capture.item_changed(args["table_name"], key)

    return note


def _note_own_queue(capture: Capture, queue: Any, _args: dict[str, Any]) -> None:
    capture.queue_changed(queue.name)


def _note_named_queue(capture: Capture, backend: Any, args: dict[str, Any]) -> None:
    name = args["queue_name"]
    capture.queue_changed(name)
    queue = backend.queues.get(name)
    dead_letters = getattr(queue, "dead_letter_queue", None)
    if dead_letters is not None:  # a receive may move messages there
        capture.queue_changed(dead_letters.name)


FUNNELS: tuple[Funnel, ...] = (
    Funnel(s3_models.S3Backend, "put_object", ("bucket_name", "key_name"), _note_object),
    Funnel(s3_models.S3Backend, "delete_object", ("bucket_name", "key_name"), _note_object),
    Funnel(ddb_models.DynamoDBBackend, "put_item", ("table_name", "item_attrs"), _note_item("item_attrs")),
    Funnel(ddb_models.DynamoDBBackend, "update_item", ("table_name", "key"), _note_item("key")),
    Funnel(ddb_models.DynamoDBBackend, "delete_item", ("table_name", "key"), _note_item("key")),
    Funnel(sqs_models.Queue, "add_message", ("message",), _note_own_queue),
    Funnel(sqs_models.Queue, "delete_message", ("receipt_handle",), _note_own_queue),
    Funnel(sqs_models.SQSBackend, "receive_message", ("queue_name",), _note_named_queue),
    Funnel(sqs_models.SQSBackend, "purge_queue", ("queue_name",), _note_named_queue),
)

_ORIGINALS: dict[tuple[type, str], Callable[..., Any]] = {}
_installed: list[Capture] = []  # the capture the wrappers report to (one per process)


def check_funnels() -> None:
    """Raise :class:`CaptureError` if moto's funnels or the state they are read from moved."""
    for funnel in FUNNELS:
        method = _ORIGINALS.get((funnel.owner, funnel.method), getattr(funnel.owner, funnel.method, None))
        if method is None:
            raise CaptureError(f"{funnel.owner.__name__}.{funnel.method} is gone")
        params = inspect.signature(method).parameters
        missing = [p for p in funnel.params if p not in params]
        if missing:
            raise CaptureError(f"{funnel.owner.__name__}.{funnel.method} has no parameter {missing[0]!r}")
    for owner, needle in (
        (sqs_models.Queue.__init__, "self._messages"),
        (sqs_models.Queue.__init__, "self.dead_letter_queue"),
        (s3_models.FakeKey.__init__, "self.last_modified"),
        (ddb_models.Item.to_json, "Attributes"),
    ):
        if needle not in inspect.getsource(owner):
            raise CaptureError(f"{owner.__qualname__} no longer sets {needle!r}")
    message_params = list(inspect.signature(sqs_models.Message.__init__).parameters)
    if message_params[:3] != ["self", "message_id", "body"]:
        raise CaptureError("Message(message_id, body, ...) changed")


def install(capture: Capture) -> None:
    """Point moto's funnels at ``capture`` (the wrappers are put in place once per process)."""
    check_funnels()
    _installed[:] = [capture]
    for funnel in FUNNELS:
        key = (funnel.owner, funnel.method)
        if key in _ORIGINALS:
            continue
        original = getattr(funnel.owner, funnel.method)
        _ORIGINALS[key] = original
        setattr(funnel.owner, funnel.method, _wrapper(original, funnel))


def uninstall() -> None:
    """Stop noting changes (the wrappers stay, reporting to nobody)."""
    _installed.clear()


def _wrapper(original: Callable[..., Any], funnel: Funnel) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def noted(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:  # a call that failed half-way is read back as it left the data
            if _installed:
                bound = signature.bind_partial(self, *args, **kwargs).arguments
                funnel.note(_installed[0], self, bound)

    return noted
