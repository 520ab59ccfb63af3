"""What one image costs in AWS calls, end to end: web use cases, worker, replies, in-process moto.

100 requests at once, as the course's workload generator sends them, each waiting for its answer.
Every call on the shared S3 and SQS clients is counted with botocore's event hooks.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from iraas import aws
from iraas.images.service import ImageService
from iraas.images.worker import Worker
from iraas.media.uploads import parse_upload
from tests.support.workers import polling_in_background

pytestmark = pytest.mark.slow

REQUESTS = 100
CALLS_PER_IMAGE = 5  # put input, get input, put result, and shares of batched send/receive/reply/delete


def test_a_burst_of_100_costs_at_most_5_aws_calls_per_image(stack, classifier, imagenet_sample):
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: object) -> None:
        calls[event_name.removeprefix("before-call.")] += 1

    service = ImageService(stack)
    photos = imagenet_sample[:REQUESTS]
    uploads = [parse_upload(p.path.read_bytes(), "image/jpeg", p.path.name, stack.limits) for p in photos]
    with polling_in_background(Worker(stack, classifier)):
        for name in ("s3", "sqs"):
            aws.client(stack, name).meta.events.register("before-call", count)

        def one(upload):
            return service.submit(upload, "anonymous", wait_s=30).result

        try:
            with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
                results = list(pool.map(one, uploads))
        finally:
            for name in ("s3", "sqs"):
                aws.client(stack, name).meta.events.unregister("before-call", count)
    service.replies.close()

    assert [r.status if r else None for r in results] == ["done"] * REQUESTS
    assert [r.name for r in results if r] == [p.path.name for p in photos]
    print(f"\n{sum(calls.values())} AWS calls for {REQUESTS} images: {dict(calls.most_common())}")
    assert sum(calls.values()) <= CALLS_PER_IMAGE * REQUESTS, dict(calls.most_common())
    # Nothing polls S3 for results: a waiting request is woken by its reply.
    assert calls["s3.GetObject"] <= REQUESTS  # the worker's fetch of each input, nothing more
