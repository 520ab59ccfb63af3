"""What one image costs in AWS calls, end to end: web use cases, worker, replies, in-process moto;
and the worker's own share, on the AWS configuration.

100 requests at once, as the course's workload generator sends them, each waiting for its answer.
Every call on the shared S3 and SQS clients is counted with botocore's event hooks. The worker's
share is counted on clients of its own: one PUT per image, a GET only for an image its request
does not carry, and a batch's receive, reply and delete; no announcement.
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
# Put input, get input (not for a small image: its request carries it), put result, and shares of
# batched send/receive/reply/delete.
CALLS_PER_IMAGE = 5


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
    assert calls["s3.GetObject"] <= REQUESTS  # the worker's fetch of an input it was not carried, nothing more


# The worker's own calls, on the AWS configuration (no announcements): the result's PUT, the input's
# GET unless the request carries the image, and a batch's shares (receive, reply, delete: 3 / 8).
WORKER_CALLS_PER_IMAGE = {"carried": 1.4, "fetched": 2.4}


@pytest.mark.parametrize("size", ["carried", "fetched"])
def test_the_worker_spends_on_aws_one_put_per_image_and_a_get_only_for_an_image_not_carried(
    stack, classifier, imagenet_sample, size
):
    import boto3

    by_size = sorted(imagenet_sample, key=lambda p: p.path.stat().st_size)
    photos = by_size[:16] if size == "carried" else by_size[-16:]
    service = ImageService(stack)
    uploads = [parse_upload(p.path.read_bytes(), "image/jpeg", p.path.name, stack.limits) for p in photos]
    submissions = [service.accept(upload, "anonymous", expect_answer=True) for upload in uploads]
    assert all((s.request.image_b64 is not None) == (size == "carried") for s in submissions)

    calls: Counter[str] = Counter()
    sent_to: Counter[str] = Counter()
    worker_s3, worker_sqs = (boto3.client(name, region_name=stack.region) for name in ("s3", "sqs"))
    worker = Worker(stack, classifier, s3=worker_s3, sqs=worker_sqs)
    for client in (worker_s3, worker_sqs):
        client.meta.events.register("before-call", lambda event_name, **_: calls.update(
            [event_name.removeprefix("before-call.")]))
    worker_sqs.meta.events.register("provide-client-params.sqs.SendMessageBatch",
                                    lambda params, **_: sent_to.update([params["QueueUrl"]]))
    answered = 0
    while answered < len(photos):
        answered += worker.poll_once(wait_s=0).answered
    results = [service.wait(s, 10).result for s in submissions]
    service.replies.close()

    assert [r.status if r else None for r in results] == ["done"] * len(photos)  # replies reached the waiters
    assert calls["s3.PutObject"] == len(photos)
    assert calls["s3.GetObject"] == (0 if size == "carried" else len(photos))
    assert stack.response_queue_url not in sent_to  # on AWS nobody reads it: nothing announced
    print(f"\n{sum(calls.values()) / len(photos):.2f} worker calls per {size} image: {dict(calls.most_common())}")
    assert sum(calls.values()) <= WORKER_CALLS_PER_IMAGE[size] * len(photos), dict(calls.most_common())
