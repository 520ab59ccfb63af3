"""iraas/images/worker.py: the app-tier worker against moto: batches, poison messages, retries, repeated deliveries."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import threading
import time

import pytest
from PIL import Image

from iraas import aws, queues
from iraas.images.jobs import CARRY_LIMIT, ImageRequest, input_key, new_id, result_key
from iraas.images.service import ImageService
from iraas.images.settings import load_image_settings
from iraas.images.worker import Worker
from iraas.logs import FieldsFormatter
from iraas.media.uploads import parse_upload


@pytest.fixture
def settings(stack, monkeypatch):
    # No waiting in tests: short polls and immediate retries.
    monkeypatch.setenv("IRAAS_WORKER_LONG_POLL_S", "0")
    monkeypatch.setenv("IRAAS_WORKER_RETRY_DELAY_S", "0")
    monkeypatch.setenv("IRAAS_WORKER_ANNOUNCE", "1")  # as `iraas up` runs its workers
    return load_image_settings()


@pytest.fixture
def clients(settings):
    return aws.client(settings, "s3"), aws.client(settings, "sqs")


@pytest.fixture
def worker(settings, classifier):
    return Worker(settings, classifier)


def enqueue(settings, clients, data: bytes, name: str) -> ImageRequest:
    """What the web tier does: store the image, queue a pointer to it."""
    s3, sqs = clients
    request_id = new_id()
    request = ImageRequest(request_id, name, settings.image_input_bucket, input_key("anonymous", request_id, name))
    s3.put_object(Bucket=request.bucket, Key=request.key, Body=data)
    sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody=request.to_message())
    return request


def drain(worker: Worker, rounds: int = 10) -> None:
    for _ in range(rounds):
        worker.poll_once(wait_s=0)


def queue_depth(sqs, url: str) -> int:
    return queues.queue_depth(sqs, url).queued


def responses(sqs, url: str) -> list[dict]:
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return found
        found += [json.loads(m["Body"]) for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def stored_result(settings, s3, request: ImageRequest) -> dict:
    body = s3.get_object(Bucket=settings.image_output_bucket, Key=result_key(request.id, request.name))["Body"]
    return json.loads(body.read())


def test_a_batch_of_photos_is_classified_stored_announced_and_deleted(settings, clients, worker, imagenet_sample):
    s3, sqs = clients
    photos = imagenet_sample[:6]
    requests = [enqueue(settings, clients, p.path.read_bytes(), p.path.name) for p in photos]

    outcome = worker.poll_once(wait_s=0)
    drain(worker)

    assert outcome.received >= 1 and outcome.failed == 0
    for request, photo in zip(requests, photos, strict=False):
        result = stored_result(settings, s3, request)
        assert result["status"] == "done" and result["name"] == photo.path.name
        assert len(result["top5"]) == 5
        # One object per answer, found by name as well as by id.
        by_name = s3.list_objects_v2(Bucket=settings.image_output_bucket, Prefix=f"results/{photo.path.name}/")
        assert [o["Key"] for o in by_name["Contents"]] == [f"results/{photo.path.name}/{request.id}.json"]
    assert sum(stored_result(settings, s3, r)["wnid"] == p.wnid for r, p in zip(requests, photos, strict=False)) >= 5
    announced = responses(sqs, settings.response_queue_url)
    assert sorted(r["id"] for r in announced) == sorted(r.id for r in requests)
    assert queue_depth(sqs, settings.request_queue_url) == 0


def test_one_bad_image_does_not_hold_back_the_rest_of_its_batch(settings, clients, worker, photo):
    s3, sqs = clients
    good = enqueue(settings, clients, photo.path.read_bytes(), "good.jpg")
    bad = enqueue(settings, clients, photo.path.read_bytes()[:2000], "truncated.jpg")

    outcome = worker.poll_once(wait_s=0)

    assert outcome.received == 2 and outcome.answered == 1 and outcome.failed == 1
    assert stored_result(settings, s3, good)["label"] == "tench"
    assert stored_result(settings, s3, bad)["error"]["code"] == "undecodable"  # answered: it never could be


def test_an_image_that_can_never_be_classified_is_answered_failed_at_once_and_never_retried(
    settings, clients, worker
):
    s3, sqs = clients
    bad = enqueue(settings, clients, b"\xff\xd8\xff\xe0 not really a jpeg", "broken.jpg")
    receives = []
    sqs.meta.events.register("after-call.sqs.ReceiveMessage", lambda parsed, **_: receives.extend(parsed.get("Messages", [])))

    drain(worker)

    result = stored_result(settings, s3, bad)
    assert result["status"] == "failed"
    assert result["error"]["code"] in {"undecodable", "not_an_image"}
    assert len(receives) == 1  # one try: a permanent error is not retried as if it were transient
    assert queue_depth(sqs, settings.request_queue_url) == 0
    assert queue_depth(sqs, settings.dead_letter_queue_url) == 0  # answered, not dead-lettered
    announced = responses(sqs, settings.response_queue_url)
    assert [r["status"] for r in announced] == ["failed"]  # announced once


def test_a_poison_message_reaches_the_dead_letter_queue_and_the_worker_keeps_going(
    settings, clients, worker, photo
):
    s3, sqs = clients
    sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody="{not json")
    forged = {"v": 1, "id": new_id(), "name": "x.jpg", "bucket": "b", "key": "inputs/../secrets"}
    sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody=json.dumps(forged))

    drain(worker)
    good = enqueue(settings, clients, photo.path.read_bytes(), "after.jpg")
    drain(worker, rounds=2)

    assert queue_depth(sqs, settings.dead_letter_queue_url) == 2
    errors = s3.list_objects_v2(Bucket=settings.image_output_bucket, Prefix="errors/")["Contents"]
    reasons = [json.loads(s3.get_object(Bucket=settings.image_output_bucket, Key=o["Key"])["Body"].read()) for o in errors]
    assert sorted(r["error"]["code"] for r in reasons) == ["malformed_request", "malformed_request"]
    assert any("is not the input of request" in r["error"]["message"] for r in reasons)
    assert stored_result(settings, s3, good)["label"] == "tench"


def test_a_missing_input_object_is_a_recorded_failure(settings, clients, worker):
    s3, sqs = clients
    request_id = new_id()
    request = ImageRequest(request_id, "gone.jpg", settings.image_input_bucket, input_key("anonymous", request_id, "gone.jpg"))
    sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody=request.to_message())

    drain(worker)

    assert stored_result(settings, s3, request)["error"]["code"] == "input_missing"


def test_a_repeated_delivery_is_answered_once(settings, clients, worker, photo):
    s3, sqs = clients
    request = enqueue(settings, clients, photo.path.read_bytes(), "twice.jpg")
    # SQS delivers at least once: the same request can arrive again after it was answered.
    drain(worker)
    first = stored_result(settings, s3, request)
    sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody=request.to_message())
    drain(worker)

    assert stored_result(settings, s3, request) == first
    assert [r["id"] for r in responses(sqs, settings.response_queue_url)] == [request.id]
    assert queue_depth(sqs, settings.request_queue_url) == 0


def test_two_deliveries_worked_on_at_once_are_answered_once(settings, clients, worker, photo):
    s3, sqs = clients
    request = enqueue(settings, clients, photo.path.read_bytes(), "both.jpg")
    # A second delivery before the first is answered: both copies are classified, one answer wins.
    sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody=request.to_message())

    outcome = worker.poll_once(wait_s=0)

    assert outcome.received == 2 and outcome.answered == 1 and outcome.duplicates == 1
    assert stored_result(settings, s3, request)["label"] == "tench"
    assert [r["id"] for r in responses(sqs, settings.response_queue_url)] == [request.id]
    assert queue_depth(sqs, settings.request_queue_url) == 0


def test_a_batch_slower_than_the_visibility_timeout_is_not_handed_to_another_worker(settings, clients, classifier, photo):
    _, sqs = clients
    short = dataclasses.replace(settings, worker=dataclasses.replace(settings.worker, visibility_timeout_s=1))
    seen_by_others: list[int] = []

    class SlowClassifier:
        def classify_bytes(self, blobs, top=0):
            for _ in range(6):  # three visibility timeouts; another worker polls meanwhile
                time.sleep(0.5)
                seen_by_others.append(len(sqs.receive_message(
                    QueueUrl=settings.request_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
                ).get("Messages", [])))
            return classifier.classify_bytes(blobs)

    request = enqueue(settings, clients, photo.path.read_bytes(), "slow.jpg")
    outcome = Worker(short, SlowClassifier()).poll_once(wait_s=0)

    assert outcome.answered == 1
    assert seen_by_others == [0] * 6
    assert [r["id"] for r in responses(sqs, settings.response_queue_url)] == [request.id]
    assert queue_depth(sqs, settings.request_queue_url) == 0


def test_a_worker_outlives_an_unreachable_queue_and_works_once_it_is_back(settings, clients, worker, photo):
    s3, sqs = clients
    later = settings.request_queue_url + "-later"
    worker.settings = dataclasses.replace(settings, request_queue_url=later)  # no such queue yet
    stop = threading.Event()
    loop = threading.Thread(target=worker.run, args=(stop,))
    loop.start()
    try:
        time.sleep(1)
        assert loop.is_alive()
        sqs.create_queue(QueueName=later.rsplit("/", 1)[1])
        request = enqueue(worker.settings, clients, photo.path.read_bytes(), "back.jpg")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not s3.list_objects_v2(
            Bucket=settings.image_output_bucket, Prefix=result_key(request.id, request.name)
        ).get("KeyCount"):
            time.sleep(0.2)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert stored_result(settings, s3, request)["label"] == "tench"


def test_images_of_every_common_mode_are_classified(settings, clients, worker):
    s3, _ = clients
    ids = []
    for mode, fmt in [("RGBA", "PNG"), ("L", "PNG"), ("P", "GIF"), ("CMYK", "JPEG")]:
        buf = io.BytesIO()
        Image.new(mode, (300, 200)).save(buf, fmt)
        ids.append(enqueue(settings, clients, buf.getvalue(), f"plain.{fmt.lower()}"))

    drain(worker, rounds=2)

    assert [stored_result(settings, s3, r)["status"] for r in ids] == ["done"] * 4


def test_a_redelivery_can_be_traced_in_the_worker_log_by_request_id(settings, clients, worker, photo, caplog):
    s3, sqs = clients
    request = enqueue(settings, clients, photo.path.read_bytes(), "traced.jpg")
    formatter = FieldsFormatter("%(message)s")
    with caplog.at_level(logging.INFO, logger="iraas.images.worker"):
        drain(worker)
        sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody=request.to_message())
        drain(worker)

    lines = [formatter.format(r) for r in caplog.records if getattr(r, "request_id", None) == request.id]
    assert lines[0].startswith("answered ") and f"request_id={request.id}" in lines[0]
    assert "label=tench" in lines[0] and "classify_ms=" in lines[0] and "batch_size=1" in lines[0]
    assert lines[1].startswith("repeated delivery retired ") and "receive_count=1" in lines[1]


# ---- images carried in their request message ------------------------------------------------


def accepted(settings, data: bytes, name: str) -> ImageRequest:
    """What the web tier does (ImageService.accept): store the image, queue its request, which
    carries the image too when the message stays within SQS's first billed 64 KiB."""
    upload = parse_upload(data, "image/jpeg", name, settings.limits)
    return ImageService(settings).accept(upload, "anonymous").request


def small_and_big(imagenet_sample):
    """A photo small enough to ride in its message and one too big to."""
    by_size = sorted(imagenet_sample, key=lambda p: p.path.stat().st_size)
    return by_size[len(by_size) // 10], by_size[-1]


def counting_gets(settings) -> list[str]:
    """The keys the worker's S3 client GETs from now on."""
    keys: list[str] = []
    aws.client(settings, "s3").meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: keys.append(params["Key"]))
    return keys


def test_a_small_image_rides_in_its_request_and_is_answered_without_a_get(
    settings, clients, worker, classifier, imagenet_sample
):
    s3, sqs = clients
    small, big = small_and_big(imagenet_sample)
    carried = accepted(settings, small.path.read_bytes(), small.path.name)
    fetched = accepted(settings, big.path.read_bytes(), big.path.name)
    gets = counting_gets(settings)

    drain(worker, rounds=2)

    assert carried.image_b64 is not None and len(carried.to_message()) <= CARRY_LIMIT
    assert fetched.image_b64 is None  # over 64 KiB: the message points at the input only
    assert gets == [fetched.key]  # the small one was never fetched...
    for request, photo in ((carried, small), (fetched, big)):  # ...and both are answered as the classifier says
        expected = classifier.classify_bytes([photo.path.read_bytes()])[0].best.label
        assert stored_result(settings, s3, request)["label"] == expected
    # The input bucket keeps its copy either way.
    assert s3.head_object(Bucket=settings.image_input_bucket, Key=carried.key)["ContentLength"] == small.path.stat().st_size
    assert queue_depth(sqs, settings.request_queue_url) == 0


def carrying_message(settings, image_b64: str, name: str = "forged.jpg") -> ImageRequest:
    request_id = new_id()
    return ImageRequest(request_id, name, settings.image_input_bucket, input_key("anonymous", request_id, name),
                        image_b64=image_b64)


def test_garbled_carried_bytes_are_a_recorded_failure_and_the_worker_keeps_going(settings, clients, worker, photo):
    s3, sqs = clients
    garbled = carrying_message(settings, "this is not base64 at all!")
    sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody=garbled.to_message())

    drain(worker)
    good = accepted(settings, photo.path.read_bytes(), "after.jpg")
    drain(worker, rounds=2)

    result = stored_result(settings, s3, garbled)  # recorded under its id, on its first attempt: it never decodes
    assert result["status"] == "failed" and result["error"]["code"] == "malformed_request"
    assert "not base64" in result["error"]["message"]
    assert queue_depth(sqs, settings.dead_letter_queue_url) == 0
    assert stored_result(settings, s3, good)["label"] == "tench"


def test_carried_bytes_count_against_the_same_byte_limit(stack, monkeypatch, clients, classifier, photo):
    monkeypatch.setenv("IRAAS_WORKER_LONG_POLL_S", "0")
    monkeypatch.setenv("IRAAS_WORKER_RETRY_DELAY_S", "0")
    monkeypatch.setenv("IRAAS_MAX_IMAGE_BYTES", "20000")
    settings = load_image_settings()
    s3, sqs = clients
    too_big = carrying_message(settings, base64.b64encode(b"\xff\xd8" + b"\0" * 30_000).decode())
    sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody=too_big.to_message())

    drain(Worker(settings, classifier))

    assert stored_result(settings, s3, too_big)["error"]["code"] == "too_large"


# ---- one batch received ahead ------------------------------------------------------------------


def test_the_next_batch_is_received_while_one_is_classified_and_a_stop_finishes_both(
    settings, clients, classifier, imagenet_sample
):
    s3, sqs = clients
    requests = [enqueue(settings, clients, p.path.read_bytes(), p.path.name) for p in imagenet_sample[:16]]
    stop = threading.Event()
    seen: dict[str, object] = {}

    class Watching:
        """Classifies as the model does; during the first batch, looks at the queue and stops the worker."""

        def classify_bytes(self, blobs, top=0):
            if not seen:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and queues.queue_depth(sqs, settings.request_queue_url).in_flight < 16:
                    time.sleep(0.05)
                seen["in_flight"] = queues.queue_depth(sqs, settings.request_queue_url).in_flight
                seen["busy"] = worker.busy.is_set()
                stop.set()  # SIGTERM now: the batch received ahead is in hand too
            return classifier.classify_bytes(blobs)

    worker = Worker(settings, Watching())
    worker.run(stop)

    assert seen == {"in_flight": 16, "busy": True}  # both batches of 8 held at once, the worker busy
    assert [stored_result(settings, s3, r)["status"] for r in requests] == ["done"] * 16  # both finished
    assert queue_depth(sqs, settings.request_queue_url) == 0
    assert not worker.busy.is_set()
