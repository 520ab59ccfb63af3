"""iraas/scaling/status.py: the S3 status store (on moto, provisioned from template.yaml) and its
in-memory twin keep the same contract: nobody published until someone does; heartbeats by worker, a
removed one gone. What a test sees of the real adapter it sees of the twin, so a unit test that uses
the twin tests what production does. Reading the heartbeats from S3 costs one listing and one GET a
worker, counted with botocore's event hooks."""

from __future__ import annotations

import pytest

from iraas import aws
from iraas.scaling.status import (
    NOBODY_PUBLISHED,
    FleetStatus,
    Heartbeat,
    InMemoryStatusStore,
    S3StatusStore,
    StatusStore,
)


@pytest.fixture(params=["s3", "in-memory"])
def status(request, stack) -> StatusStore:
    if request.param == "s3":
        return S3StatusStore(aws.client(stack, "s3"), stack.image_output_bucket)
    return InMemoryStatusStore()


def test_heartbeats_are_kept_by_worker_and_removed_with_it(status: StatusStore) -> None:
    assert status.heartbeats() == {}
    status.beat(Heartbeat("local-1", busy=True, idle_since=None, updated_at=10.0))
    status.beat(Heartbeat("local-2", busy=False, idle_since=5.0, updated_at=10.0))
    status.beat(Heartbeat("local-1", busy=False, idle_since=11.0, updated_at=12.0))  # replaces its last

    assert status.heartbeats() == {
        "local-1": Heartbeat("local-1", False, 11.0, 12.0), "local-2": Heartbeat("local-2", False, 5.0, 10.0),
    }
    status.remove("local-2")
    assert list(status.heartbeats()) == ["local-1"]


def test_the_fleet_is_nobodys_until_published(status: StatusStore) -> None:
    assert status.fleet() == NOBODY_PUBLISHED
    published = FleetStatus(running=2, desired=3, fleet="local", updated_at=20.0, max=4, capped_by="cpu")
    status.publish(published)
    assert status.fleet() == published


def test_reading_the_heartbeats_from_s3_costs_a_listing_and_a_get_per_worker(stack) -> None:
    s3 = aws.client(stack, "s3")
    store = S3StatusStore(s3, stack.image_output_bucket)
    for n in range(3):
        store.beat(Heartbeat(f"local-{n}", busy=False, idle_since=1.0, updated_at=2.0))
    calls: list[str] = []

    def count(event_name: str, **_: object) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    s3.meta.events.register("before-call.s3", count)
    try:
        assert len(store.heartbeats()) == 3
    finally:
        s3.meta.events.unregister("before-call.s3", count)
    assert sorted(calls) == ["GetObject"] * 3 + ["ListObjectsV2"]
