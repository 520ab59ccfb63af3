"""The embedded endpoint's durable copy of what users stored: one SQLite file.

Three tables mirror the data of the template's resources: S3 objects (bytes and metadata),
DynamoDB items (in DynamoDB's JSON) and SQS messages (body and attributes). Each change is
committed before the endpoint answers the request that made it, in WAL mode: a crash of the
process (kill -9) loses nothing that was answered. ``synchronous=NORMAL`` leaves the fsync to
WAL checkpoints, which only :meth:`StateStore.flush` runs, every second, off the requests' path: it
bounds what a power cut can take to the last second.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key TEXT NOT NULL, body BLOB NOT NULL, metadata TEXT NOT NULL,
    last_modified REAL NOT NULL, PRIMARY KEY (bucket, key));
CREATE TABLE IF NOT EXISTS items (
    table_name TEXT NOT NULL, key TEXT NOT NULL, item TEXT NOT NULL, PRIMARY KEY (table_name, key));
CREATE TABLE IF NOT EXISTS messages (
    queue TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
    attributes TEXT NOT NULL, sent_timestamp INTEGER, receive_count INTEGER NOT NULL,
    group_id TEXT, deduplication_id TEXT, PRIMARY KEY (queue, id));
"""


class StateError(RuntimeError):
    """The state file cannot be used (another version's, or damaged); the message says what to do."""


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    body: bytes
    metadata: dict[str, str]
    last_modified: float  # seconds since the epoch


@dataclass(frozen=True)
class StoredItem:
    table: str
    key: str  # the item's key attributes, as sorted JSON
    item: dict[str, Any]  # DynamoDB JSON: {"name": {"S": "..."}, ...}


@dataclass(frozen=True)
class StoredMessage:
    queue: str
    id: str
    body: str
    attributes: dict[str, Any]  # SQS message attributes
    sent_timestamp: int | None  # ms since the epoch
    receive_count: int
    group_id: str | None = None
    deduplication_id: str | None = None


def _dumps(value: Any) -> str:
    """JSON with bytes kept (base64 under a marker key): message attributes may hold binary values."""

    def default(obj: Any) -> Any:
        if isinstance(obj, (bytes, bytearray)):
            return {"__b64__": base64.b64encode(bytes(obj)).decode("ascii")}
        raise TypeError(f"cannot store a {type(obj).__name__}")

    return json.dumps(value, default=default, sort_keys=True)


def _loads(text: str) -> Any:
    def hook(obj: dict[str, Any]) -> Any:
        return base64.b64decode(obj["__b64__"]) if obj.keys() == {"__b64__"} else obj

    return json.loads(text, object_hook=hook)


def item_key(key_attributes: dict[str, Any]) -> str:
    """The stored form of an item's key (its key attributes in DynamoDB JSON)."""
    return _dumps(key_attributes)


class StateStore:
    """The SQLite file; thread-safe (one connection behind a lock, as the endpoint serialises its
    own work anyway). Writes go through :meth:`transaction`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # No checkpoint (and its fsync) inside a request's commit: flush() does them, from its
            # own connection, without the lock the requests' commits take.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"{path} is not a state file this version can read ({exc}); "
                "start with --fresh to begin empty (the file is then removed)"
            ) from None
        self._seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()[0]
        self._flusher: sqlite3.Connection | None = None  # flush()'s own connection, made on first use

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            raise sqlite3.DatabaseError(f"schema version {row[0]}, this version writes {SCHEMA_VERSION}")

    # ---- writes ------------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        return _Transaction(self)

    def flush(self) -> None:
        """Checkpoint the WAL into the main file (an fsync): a power cut then loses nothing older.
        From a connection of its own (WAL lets it run beside the commits, never blocking them)."""
        if self._flusher is None:
            self._flusher = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._flusher.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        with self.lock:
            self._db.close()
            if self._flusher is not None:
                self._flusher.close()

    # ---- reads -------------------------------------------------------------------------

    def objects(self) -> Iterator[StoredObject]:
        for bucket, key, body, metadata, last_modified in self._rows(
            "SELECT bucket, key, body, metadata, last_modified FROM objects ORDER BY bucket, key"
        ):
            yield StoredObject(bucket, key, bytes(body), _loads(metadata), last_modified)

    def items(self) -> Iterator[StoredItem]:
        for table, key, item in self._rows("SELECT table_name, key, item FROM items ORDER BY table_name, key"):
            yield StoredItem(table, key, _loads(item))

    def messages(self) -> Iterator[StoredMessage]:
        """In the order they were first stored (a queue's order survives a restart)."""
        for row in self._rows(
            "SELECT queue, id, body, attributes, sent_timestamp, receive_count, group_id, deduplication_id "
            "FROM messages ORDER BY seq"
        ):
            queue, message_id, body, attributes, sent, count, group, dedup = row
            yield StoredMessage(queue, message_id, body, _loads(attributes), sent, count, group, dedup)

    def _rows(self, sql: str) -> Iterable[tuple[Any, ...]]:
        with self.lock:
            return self._db.execute(sql).fetchall()


class _Transaction:
    """One commit: the changes one request made (or a whole restore)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._db = store._db

    def __enter__(self) -> _Transaction:
        self._store.lock.acquire()
        self._db.execute("BEGIN")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._store.lock.release()

    def put_object(self, obj: StoredObject) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
            (obj.bucket, obj.key, obj.body, _dumps(obj.metadata), obj.last_modified),
        )

    def delete_object(self, bucket: str, key: str) -> None:
        self._db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))

    def put_item(self, item: StoredItem) -> None:
        self._db.execute("INSERT OR REPLACE INTO items VALUES (?, ?, ?)", (item.table, item.key, _dumps(item.item)))

    def delete_item(self, table: str, key: str) -> None:
        self._db.execute("DELETE FROM items WHERE table_name = ? AND key = ?", (table, key))

    def put_message(self, message: StoredMessage) -> None:
        self._store._seq += 1
        self._db.execute(
            "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message.queue,
                message.id,
                self._store._seq,
                message.body,
                _dumps(message.attributes),
                message.sent_timestamp,
                message.receive_count,
                message.group_id,
                message.deduplication_id,
            ),
        )

    def set_receive_count(self, queue: str, message_id: str, count: int) -> None:
        self._db.execute("UPDATE messages SET receive_count = ? WHERE queue = ? AND id = ?", (count, queue, message_id))

    def delete_message(self, queue: str, message_id: str) -> None:
        self._db.execute("DELETE FROM messages WHERE queue = ? AND id = ?", (queue, message_id))

    def delete_queue_messages(self, queue: str) -> None:
        self._db.execute("DELETE FROM messages WHERE queue = ?", (queue,))
