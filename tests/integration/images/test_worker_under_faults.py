"""The worker and the web use cases under throttling and transient AWS errors (``IRAAS_FAULTS``),
in-process against moto: every accepted request is answered once, a request whose input cannot be
read ends in the dead-letter queue with its reason, and nothing spins.

Faults are injected at the shared clients (``iraas.aws.client``); the test reads the queues and the
buckets through clients of its own, which no fault reaches.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from moto.core.botocore_stubber import BotocoreStubber

from iraas import aws, queues
from iraas.aws import faults
from iraas.images import service as image_service
from iraas.images.jobs import ImageRequest, id_for_idempotency_key, input_key, new_id, result_key
from iraas.images.results import S3ResultStore
from iraas.images.service import ImageService
from iraas.images.settings import load_image_settings
from iraas.images.worker import AWS_TROUBLE_PAUSE_BASE_S, POLL_ERROR_BACKOFF_S, Worker
from iraas.media.uploads import RejectedPart, parse_upload
from iraas.queues import SendError
from tests.support.backoff import record_backoff

pytestmark = pytest.mark.slow  # the ONNX model

TRANSIENT = "s3:PutObject=SlowDown@0.3, s3:GetObject=503@0.3, sqs:*=ThrottlingException@0.3"


@pytest.fixture
def settings(stack, monkeypatch):
    monkeypatch.setenv("IRAAS_WORKER_LONG_POLL_S", "1")
    monkeypatch.setenv("IRAAS_WORKER_RETRY_DELAY_S", "1")
    monkeypatch.setenv("IRAAS_WORKER_ANNOUNCE", "1")  # as `iraas up` runs its workers
    return load_image_settings()


@pytest.fixture
def inject(monkeypatch):
    """Sets IRAAS_FAULTS for the clients made from now on. ``applied``: operations whose faults
    moto still carries out (the answer was lost, not the call); every other fault never reached
    the endpoint, as over HTTP, where a fault's request is never sent."""

    def set_faults(spec: str, applied: frozenset[str] = frozenset()) -> None:
        monkeypatch.setenv(faults.FAULTS_ENV, spec)
        monkeypatch.setenv(faults.SEED_ENV, "13")
        aws.reset_clients()
        original = BotocoreStubber.__call__

        def endpoint(self, event_name: str, request: Any, **kwargs: Any) -> Any:
            if faults.injected_into(request) and event_name.rsplit(".", 1)[-1] not in applied:
                return None
            return original(self, event_name, request, **kwargs)

        monkeypatch.setattr(BotocoreStubber, "__call__", endpoint)

    return set_faults


@pytest.fixture
def backoff(monkeypatch) -> list[float]:
    """botocore's jittered backoff before each retry, recorded and not slept (counts, not timings)."""
    return record_backoff(monkeypatch)


@pytest.fixture
def clean(stack):
    """The test's own clients: no fault reaches them."""
    return boto3.client("s3", region_name=stack.region), boto3.client("sqs", region_name=stack.region)


class Calls:
    """Every AWS call and attempt on the shared clients, and what each successful SendMessageBatch
    put on each queue (by request id): a retried call counts once, as it reached SQS once."""

    def __init__(self, settings) -> None:
        self.calls: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self.sent: dict[str, Counter[str]] = defaultdict(Counter)
        self.params: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._lock = threading.Lock()
        for name in ("s3", "sqs"):
            events = aws.client(settings, name).meta.events
            events.register("provide-client-params", self._call)
            events.register("before-send", self._attempt)
            events.register("after-call.sqs.SendMessageBatch", self._sent)

    def _call(self, event_name: str, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        operation = event_name.split(".", 1)[1]
        context["test_params"] = params
        with self._lock:
            self.calls[operation] += 1
            self.params[operation].append(params)

    def _attempt(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.attempts[event_name.split(".", 1)[1]] += 1

    def _sent(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if http_response is None or http_response.status_code != 200:
            return
        params = context["test_params"]
        failed = {f["Id"] for f in parsed.get("Failed", [])}
        with self._lock:
            for entry in params["Entries"]:
                if entry["Id"] not in failed:
                    self.sent[params["QueueUrl"]][json.loads(entry["MessageBody"])["id"]] += 1


def drain_queue(sqs, url: str) -> list[dict[str, Any]]:
    found = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += batch
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return found


def result_keys(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="results/").get("Contents", [])]


def queue_request(settings, clean, photo, name: str) -> ImageRequest:
    """A request for ``photo`` put where the web tier puts one: its image in S3, its message queued."""
    s3, sqs = clean
    request_id = new_id()
    request = ImageRequest(request_id, name, settings.image_input_bucket, input_key("anonymous", request_id, name))
    s3.put_object(Bucket=request.bucket, Key=request.key, Body=photo.path.read_bytes())
    sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody=request.to_message())
    return request


def working(worker: Worker) -> tuple[threading.Event, threading.Thread]:
    """``Worker.run`` in a thread, as a worker process runs it: it outlives a failed poll."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


REQUESTS = 30
WAIT_S = 10


def test_under_30_percent_transient_faults_every_accepted_request_is_answered_exactly_once(
    settings, inject, backoff, clean, classifier, imagenet_sample
):
    inject(TRANSIENT)
    s3, sqs = clean
    calls = Calls(settings)
    service = ImageService(settings)
    photos = imagenet_sample[:REQUESTS]
    uploads = [parse_upload(p.path.read_bytes(), "image/jpeg", p.path.name, settings.limits) for p in photos]
    refused: list[str] = []

    def one(upload):
        for _ in range(3):  # a client retries a refused POST (the web tier answers 500)
            try:
                submission = service.accept(upload, "anonymous", expect_answer=True)
            except Exception as exc:  # noqa: BLE001 - SendError or botocore's last ClientError
                refused.append(str(exc))
                continue
            # A reply lost to faults (a reply receive whose delete kept failing) leaves S3 to read at
            # the deadline: a short one keeps the test short.
            return submission.request, service.wait(submission, WAIT_S).result
        return None, None

    stop, thread = working(Worker(settings, classifier))
    try:
        with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
            answers = list(pool.map(one, uploads))
    finally:
        stop.set()
        thread.join(timeout=30)
        service.replies.close()

    accepted = {request.id: result for request, result in answers if request is not None}
    print(f"\n{sum(faults.injected().values())} faults {dict(faults.injected())}; {len(refused)} refused POSTs;"
          f" {sum(calls.calls.values())} calls, {sum(calls.attempts.values())} attempts: {dict(calls.calls)}")
    assert len(accepted) == REQUESTS  # three tries of a client are enough at 30%
    assert sum(faults.injected().values()) > REQUESTS  # the faults did happen...
    assert [r.status if r else None for r in accepted.values()] == ["done"] * REQUESTS  # ...and every one is answered
    # Exactly once: one request queued and one result stored per request.
    assert calls.sent[settings.request_queue_url] == Counter(dict.fromkeys(accepted, 1))
    assert sorted(result_keys(s3, settings.image_output_bucket)) == sorted(
        result_key(i, r.name) for i, r in accepted.items() if r)
    # The reply and the announcement never twice; they are best effort (a send that failed all its
    # attempts is logged; its waiter reads S3 at its deadline), so now and then one is missing.
    replies = Counter(i for url, sent in calls.sent.items() if url.rsplit("/", 1)[1].startswith(
        settings.reply_queue_prefix) for i in sent.elements())
    announced = Counter(json.loads(m["Body"])["id"] for m in drain_queue(sqs, settings.response_queue_url))
    for pushed in (replies, announced):
        assert set(pushed) <= set(accepted) and set(pushed.values()) <= {1}
    print(f"{REQUESTS - len(replies)} replies and {REQUESTS - len(announced)} announcements lost to faults")
    assert drain_queue(sqs, settings.request_queue_url) == [] and drain_queue(sqs, settings.dead_letter_queue_url) == []
    # Bounded: at most MAX_ATTEMPTS attempts a call, and each retry after a jittered delay.
    for operation, attempts in calls.attempts.items():
        assert attempts <= aws.MAX_ATTEMPTS * calls.calls[operation], operation
    retries = sum(calls.attempts.values()) - sum(calls.calls.values())
    assert retries > 0 and len(backoff) >= retries  # (the reply listener may be retrying still)
    assert sum(calls.calls.values()) - calls.calls["sqs.ReceiveMessage"] <= 8 * REQUESTS  # 5 without faults


def test_an_input_that_can_never_be_read_is_dead_lettered_with_its_reason_after_max_receives(
    settings, inject, backoff, clean, classifier, photo
):
    inject("s3:GetObject=SlowDown")
    s3, sqs = clean
    request = queue_request(settings, clean, photo, "slow.jpg")
    worker = Worker(settings, classifier)
    calls = Calls(settings)
    deliveries: Counter[str] = Counter()
    sqs_events = aws.client(settings, "sqs").meta.events
    sqs_events.register("after-call.sqs.ReceiveMessage", lambda parsed, **_: deliveries.update(
        json.loads(m["Body"])["id"] for m in parsed.get("Messages", [])))

    polls = 0
    while polls < 10 and not queues.queue_depth(sqs, settings.dead_letter_queue_url).visible:
        worker.poll_once(wait_s=2)
        polls += 1

    # Received maxReceiveCount times, then moved by SQS's redrive policy: no more, no spinning.
    assert worker.max_receives == 3
    assert deliveries == Counter({request.id: worker.max_receives})
    # Each delivery: one GetObject call, tried MAX_ATTEMPTS times with jittered backoff...
    assert calls.calls["s3.GetObject"] == worker.max_receives
    assert faults.injected() == Counter({"s3:GetObject": worker.max_receives * aws.MAX_ATTEMPTS})
    assert len(backoff) == worker.max_receives * (aws.MAX_ATTEMPTS - 1)
    assert all(0 <= d < 2 ** (i % 3) for i, d in enumerate(backoff))
    # ...then the request is handed back after the retry delay (the last time at once, to the DLQ).
    visibility = [p["VisibilityTimeout"] for p in calls.params["sqs.ChangeMessageVisibility"]]
    assert visibility == [settings.worker.retry_delay_s] * (worker.max_receives - 1) + [0]
    assert polls <= 6  # 3 deliveries, the polls while it waits out its delays, the one that moves it
    assert sum(calls.calls.values()) <= 3 * worker.max_receives + polls + 2  # + the failed result, its announcement
    # The dead letter leads to its reason: the request it carries has a failed result naming the error.
    [dead] = drain_queue(sqs, settings.dead_letter_queue_url)
    dead_request = ImageRequest.from_message(dead["Body"])
    assert dead_request.id == request.id
    result = S3ResultStore(s3, settings.image_output_bucket).find(dead_request.id, dead_request.name)
    assert result is not None and result.status == "failed" and result.error is not None
    assert result.error.code == "fetch_failed" and "SlowDown" in result.error.message and "GetObject" in result.error.message
    assert [json.loads(m["Body"])["status"] for m in drain_queue(sqs, settings.response_queue_url)] == ["failed"]


def test_a_batch_sqs_took_but_whose_answer_was_lost_is_queued_twice_and_answered_once(
    settings, inject, backoff, clean, classifier, imagenet_sample
):
    # A 500 after SQS stored the batch: botocore retries the whole call, so each of its requests is
    # queued twice. Standard queues have no deduplication; the conditional result write is the guard.
    inject("sqs:SendMessageBatch=InternalErrorx1", applied=frozenset({"SendMessageBatch"}))
    s3, sqs = clean
    service = ImageService(settings)
    photos = imagenet_sample[:5]
    uploads = [parse_upload(p.path.read_bytes(), "image/jpeg", p.path.name, settings.limits) for p in photos]
    with ThreadPoolExecutor(max_workers=len(uploads)) as pool:
        requests = [s.request for s in pool.map(lambda u: service.submit(u, "anonymous"), uploads)]
    queued = Counter(json.loads(m["Body"])["id"] for m in sqs.receive_message(
        QueueUrl=settings.request_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"])
    worker = Worker(settings, classifier)

    outcomes = [worker.poll_once(wait_s=0) for _ in range(4)]

    assert faults.injected() == Counter({"sqs:SendMessageBatch": 1})
    assert 2 in queued.values() and sum(queued.values()) > len(requests)  # doubled in the queue...
    assert sum(o.answered for o in outcomes) == len(requests)  # ...answered once each
    assert sum(o.duplicates for o in outcomes) == sum(queued.values()) - len(requests)
    announced = Counter(json.loads(m["Body"])["id"] for m in drain_queue(sqs, settings.response_queue_url))
    assert announced == Counter({r.id: 1 for r in requests})
    assert len(result_keys(s3, settings.image_output_bucket)) == len(requests)
    assert drain_queue(sqs, settings.request_queue_url) == []
    service.replies.close()


def test_an_answered_request_whose_delete_keeps_failing_is_deleted_later_not_handed_out_again(
    settings, inject, backoff, clean, classifier, photo
):
    # Every attempt of the first two DeleteMessageBatch calls: the one after the batch, the one
    # when the next receive came back empty; the third, when the idle worker stops, gets through.
    inject(f"sqs:DeleteMessageBatch=ThrottlingExceptionx{2 * aws.MAX_ATTEMPTS}")
    s3, sqs = clean
    request = queue_request(settings, clean, photo, "fish.jpg")
    worker = Worker(settings, classifier)
    calls = Calls(settings)

    worker.run(threading.Event(), max_idle_s=1)

    assert faults.injected() == Counter({"sqs:DeleteMessageBatch": 2 * aws.MAX_ATTEMPTS})
    deletes = calls.params["sqs.DeleteMessageBatch"]
    assert len(deletes) == 3 and {e["ReceiptHandle"] for d in deletes for e in d["Entries"]} == {
        deletes[0]["Entries"][0]["ReceiptHandle"]}  # the same receipt each time
    assert queues.queue_depth(sqs, settings.request_queue_url).queued == 0  # gone, not merely hidden
    assert result_keys(s3, settings.image_output_bucket) == [result_key(request.id, request.name)]


def test_a_request_whose_send_failed_is_queued_by_the_clients_retry(settings, inject, backoff, clean, classifier, photo):
    inject("sqs:SendMessageBatch=ThrottlingExceptionx4")  # every attempt of the first call
    service = ImageService(settings)
    upload = parse_upload(photo.path.read_bytes(), "image/jpeg", "retried.jpg", settings.limits)
    with pytest.raises(SendError):
        service.accept(upload, "anonymous", "idem-1", expect_answer=True)

    submission = service.accept(upload, "anonymous", "idem-1", expect_answer=True)  # the client's retry
    assert submission.request.id == id_for_idempotency_key("idem-1", "anonymous")
    worker = Worker(settings, classifier)
    for _ in range(2):
        worker.poll_once(wait_s=0)

    result = service.wait(submission, 5).result
    service.replies.close()
    assert result is not None and result.status == "done"


def test_a_batch_part_aws_would_not_take_is_refused_alone_and_the_others_are_answered(
    settings, inject, backoff, clean, classifier, imagenet_sample, monkeypatch
):
    inject("s3:PutObject=SlowDownx4")  # every attempt of the first image's PUT...
    monkeypatch.setattr(image_service, "BATCH_THREADS", 1)  # ...when the images go one at a time
    service = ImageService(settings)
    uploads = [parse_upload(p.path.read_bytes(), "image/jpeg", p.path.name, settings.limits) for p in imagenet_sample[:3]]
    parts = service.submit_batch(uploads, "anonymous")

    assert isinstance(parts[0], RejectedPart) and parts[0].name == uploads[0].name
    assert parts[0].code == "unavailable" and "SlowDown" in parts[0].message
    accepted = parts[1:]
    assert [p.request.name for p in accepted] == [u.name for u in uploads[1:]]  # type: ignore[union-attr]
    worker = Worker(settings, classifier)
    assert worker.poll_once(wait_s=0).answered == 2
    assert all(service.find("anonymous", p.request.id) is not None for p in accepted)  # type: ignore[union-attr]
    service.replies.close()


def test_a_batch_aws_took_none_of_is_an_error_for_the_whole_batch(settings, inject, backoff, clean, photo):
    inject("s3:PutObject=SlowDown")
    service = ImageService(settings)
    upload = parse_upload(photo.path.read_bytes(), "image/jpeg", "fish.jpg", settings.limits)
    with pytest.raises(Exception) as refused:
        service.submit_batch([upload, upload], "anonymous")
    assert aws.is_unavailable(refused.value)  # answered 503 with Retry-After by the web tier
    service.replies.close()


class Stop(threading.Event):
    """``Worker.run``'s stop event: records each of its pauses (not waited), and stops after ``rounds``."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds, self.waits = rounds, []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        if len(self.waits) >= self.rounds:
            self.set()
        return self.is_set()


def test_a_worker_whose_queue_keeps_throttling_backs_off_between_polls(settings, inject, backoff):
    inject("sqs:ReceiveMessage=ThrottlingException")
    worker = Worker(settings, classifier=None)  # no message ever arrives
    calls = Calls(settings)
    stop = Stop(rounds=3)

    worker.run(stop)

    # Each poll: one ReceiveMessage, tried MAX_ATTEMPTS times with jittered backoff, then a pause.
    assert calls.calls == Counter({"sqs.ReceiveMessage": 3})
    assert calls.attempts == Counter({"sqs.ReceiveMessage": 3 * aws.MAX_ATTEMPTS})
    assert len(backoff) == 3 * (aws.MAX_ATTEMPTS - 1)
    assert stop.waits == [POLL_ERROR_BACKOFF_S] * 3


def test_a_worker_that_s3_keeps_failing_pauses_longer_after_each_failed_batch(
    settings, inject, backoff, clean, classifier, photo
):
    inject("s3:GetObject=SlowDown")
    s3, sqs = clean
    requests = [queue_request(settings, clean, photo, f"{n}.jpg") for n in range(3)]
    worker = Worker(settings, classifier)
    calls = Calls(settings)
    stop = Stop(rounds=3)

    worker.run(stop)

    # Three batches failed (each fetch tried MAX_ATTEMPTS times); after each a pause drawn from a
    # range twice as long as the one before: 0.5 s, 1 s, 2 s.
    assert calls.calls["s3.GetObject"] == 3 * len(requests)
    assert len(stop.waits) == 3
    assert all(0 <= wait <= AWS_TROUBLE_PAUSE_BASE_S * 2**i for i, wait in enumerate(stop.waits)), stop.waits
    assert len(set(stop.waits)) == 3  # jittered
    # Each request was received maxReceiveCount times and is in the dead-letter queue, its reason stored.
    assert sqs.receive_message(QueueUrl=settings.request_queue_url).get("Messages", []) == []  # (SQS moves them now)
    dead = [ImageRequest.from_message(m["Body"]).id for m in drain_queue(sqs, settings.dead_letter_queue_url)]
    assert sorted(dead) == sorted(r.id for r in requests)
    results = [S3ResultStore(s3, settings.image_output_bucket).find(r.id, r.name) for r in requests]
    assert [r.error.code if r and r.error else None for r in results] == ["fetch_failed"] * len(requests)
