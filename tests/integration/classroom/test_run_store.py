"""iraas/classroom/run_store.py: which segments of a lecture are done, and who merges its report.

One contract over the DynamoDB adapter (moto, AttendanceRunsTable from template.yaml) and its
in-memory twin."""

from __future__ import annotations

import pytest

from iraas import aws
from iraas.classroom.run_store import DynamoRunStore, InMemoryRunStore, RunStore

RUN = "0123456789abcdef0123456789abcdef"


@pytest.fixture(params=["dynamodb", "in-memory"])
def runs(request, stack) -> RunStore:
    if request.param == "dynamodb":
        from iraas.classroom.settings import load_face_settings

        settings = load_face_settings()
        return DynamoRunStore(aws.client(settings, "dynamodb"), str(settings.runs_table))
    return InMemoryRunStore()


def test_the_segment_that_completes_the_run_merges_and_no_other(runs: RunStore) -> None:
    runs.start(RUN, 3)
    assert [runs.finish(RUN, n) for n in (2, 0)] == [False, False]
    assert runs.finish(RUN, 1) is True
    assert runs.finish(RUN, 1) is False  # a second delivery of the last segment: merged by the first
    runs.merged(RUN)
    run = runs.get(RUN)
    assert run is not None and (run.done, run.merged, run.merges) == ({0, 1, 2}, True, 1)


def test_a_retry_of_a_segment_whose_merge_failed_merges(runs: RunStore) -> None:
    runs.start(RUN, 2)
    runs.finish(RUN, 0)
    assert runs.finish(RUN, 1) is True  # ...and its invocation dies before the report is written
    assert runs.finish(RUN, 1, retry=True) is True  # the queue's retry merges
    runs.merged(RUN)
    assert runs.finish(RUN, 1, retry=True) is False  # merged: nothing left to do


def test_a_segment_given_up_on_completes_the_run_as_missing(runs: RunStore) -> None:
    runs.start(RUN, 2)
    runs.finish(RUN, 0)
    assert runs.finish(RUN, 1, missing=True) is True
    run = runs.get(RUN)
    assert run is not None and run.missing == {1}


def test_a_merged_run_starts_again_from_nothing_and_an_unknown_run_merges_nothing(runs: RunStore) -> None:
    runs.start(RUN, 2)
    runs.finish(RUN, 0)
    runs.finish(RUN, 1)
    runs.merged(RUN)
    assert runs.start(RUN, 2) is True  # the same object's event again, after its report
    assert runs.finish(RUN, 1) is False
    assert runs.finish(RUN, 0) is True
    assert runs.finish("f" * 32, 0) is False and runs.get("f" * 32) is None


def test_a_second_delivery_of_the_same_event_does_not_start_a_run_under_way(runs: RunStore) -> None:
    assert runs.start(RUN, 4, now=1000.0) is True
    runs.finish(RUN, 0)
    assert runs.start(RUN, 4, now=1001.0) is False  # S3's at-least-once delivery, seconds later
    run = runs.get(RUN)
    assert run is not None and run.done == {0}  # nothing lost
    from iraas.classroom.run_store import RUN_STALE_S

    assert runs.start(RUN, 4, now=1000.0 + RUN_STALE_S + 1) is True  # a run stuck for hours starts again
