"""The attendance runs store: which segments of a video are done, so that the last one to finish
merges the report, once.

A run is one upload of one video (``iraas.classroom.keys.run_id``), cut into ``total`` segments
observed by different invocations in any order. Each finished segment adds its index to the run's
set of done segments, in one atomic update that also answers what the set held before: the update
that completes the set is the one that merges. A segment retried after its merge failed (its
invocation died between completing the set and marking the run merged) merges too, since the run is
not marked merged yet. A segment given up on after its last try counts as done and as missing.

:class:`DynamoRunStore` keeps a run as one item of ``AttendanceRunsTable`` (expired by DynamoDB's
TTL a day later); :class:`InMemoryRunStore` keeps the same in a dict (for unit tests).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from iraas import aws

RUN_TTL_S = 24 * 3600  # a run's record outlives any of its segments' retries (the queue's retention)
# A run not merged after this long is given up on: the same upload's event may start it again. Its
# segments' last tries are over by then (three receives, 30 minutes of visibility each).
RUN_STALE_S = 3 * 3600
CONDITION_FAILED = "ConditionalCheckFailedException"


@dataclass
class Run:
    total: int
    started_at: float = 0.0
    done: set[int] = field(default_factory=set)
    missing: set[int] = field(default_factory=set)
    merged: bool = False
    merges: int = 0  # how many times the report was written: 1, unless a merge was retried


class RunStore(ABC):
    @abstractmethod
    def start(self, run: str, total: int, now: float | None = None) -> bool:
        """A new run of ``total`` segments; False, and nothing changed, while the same run is under
        way (S3 delivers an event at least once: a second delivery must not queue the segments
        again). A run that was merged, or is older than ``RUN_STALE_S``, starts again from nothing."""

    @abstractmethod
    def finish(self, run: str, index: int, missing: bool = False, retry: bool = False) -> bool:
        """Segment ``index`` is done (``missing``: given up on); whether this caller merges now: it
        completed the run, or it is a ``retry`` of a segment of a complete run not merged yet."""

    @abstractmethod
    def merged(self, run: str) -> None:
        """The report is written."""

    @abstractmethod
    def get(self, run: str) -> Run | None:
        """The run as it stands (None: no such run, or expired)."""


def _merges_now(before: Run, index: int, retry: bool) -> bool:
    complete = len(before.done | {index}) >= before.total
    return complete and not before.merged and (index not in before.done or retry)


class DynamoRunStore(RunStore):
    """``AttendanceRunsTable``: ``{run, total, done (NS), missing (NS), merged, merges, expires_at}``."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db, self._table = dynamodb, table

    def start(self, run: str, total: int, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "run": {"S": run}, "total": {"N": str(total)}, "merged": {"BOOL": False}, "merges": {"N": "0"},
                    "started_at": {"N": str(round(now, 3))}, "expires_at": {"N": str(int(now) + RUN_TTL_S)},
                },
                ConditionExpression="attribute_not_exists(#r) OR merged = :t OR started_at < :stale",
                ExpressionAttributeNames={"#r": "run"},
                ExpressionAttributeValues={":t": {"BOOL": True}, ":stale": {"N": str(round(now - RUN_STALE_S, 3))}},
            )
        except ClientError as exc:
            if aws.error_code(exc) == CONDITION_FAILED:
                return False
            raise
        return True

    def finish(self, run: str, index: int, missing: bool = False, retry: bool = False) -> bool:
        values: dict[str, Any] = {":i": {"NS": [str(index)]}}
        names = {"#r": "run", "#d": "done"} | ({"#m": "missing"} if missing else {})  # reserved words
        expression = "ADD #d :i, #m :i" if missing else "ADD #d :i"
        try:
            answer = self._db.update_item(
                TableName=self._table, Key={"run": {"S": run}}, UpdateExpression=expression,
                ExpressionAttributeValues=values, ConditionExpression="attribute_exists(#r)",
                ExpressionAttributeNames=names, ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if aws.error_code(exc) == CONDITION_FAILED:  # expired, or started again under another run
                return False
            raise
        return _merges_now(_run_of(answer.get("Attributes", {})), index, retry)

    def merged(self, run: str) -> None:
        self._db.update_item(
            TableName=self._table, Key={"run": {"S": run}}, UpdateExpression="SET merged = :t ADD merges :one",
            ExpressionAttributeValues={":t": {"BOOL": True}, ":one": {"N": "1"}},
        )

    def get(self, run: str) -> Run | None:
        item = self._db.get_item(TableName=self._table, Key={"run": {"S": run}}, ConsistentRead=True).get("Item")
        return _run_of(item) if item else None


def _run_of(item: dict[str, Any]) -> Run:
    return Run(
        total=int(item.get("total", {}).get("N", "0")),
        started_at=float(item.get("started_at", {}).get("N", "0")),
        done={int(n) for n in item.get("done", {}).get("NS", [])},
        missing={int(n) for n in item.get("missing", {}).get("NS", [])},
        merged=bool(item.get("merged", {}).get("BOOL", False)),
        merges=int(item.get("merges", {}).get("N", "0")),
    )


class InMemoryRunStore(RunStore):
    """The same contract in a dict, thread-safe."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def start(self, run: str, total: int, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self._lock:
            current = self._runs.get(run)
            if current is not None and not current.merged and current.started_at >= now - RUN_STALE_S:
                return False
            self._runs[run] = Run(total, now)
            return True

    def finish(self, run: str, index: int, missing: bool = False, retry: bool = False) -> bool:
        with self._lock:
            current = self._runs.get(run)
            if current is None:
                return False
            before = Run(current.total, current.started_at, set(current.done), set(current.missing), current.merged,
                         current.merges)
            current.done.add(index)
            if missing:
                current.missing.add(index)
            return _merges_now(before, index, retry)

    def merged(self, run: str) -> None:
        with self._lock:
            current = self._runs[run]
            current.merged, current.merges = True, current.merges + 1

    def get(self, run: str) -> Run | None:
        with self._lock:
            current = self._runs.get(run)
            return None if current is None else Run(
                current.total, current.started_at, set(current.done), set(current.missing), current.merged,
                current.merges,
            )
