"""Results pushed to the waiting request through per-process reply queues, against moto."""

from __future__ import annotations

import time

import pytest

from iraas import aws
from iraas.images import replies
from iraas.images.service import ImageService
from iraas.images.worker import Worker
from iraas.media.uploads import parse_upload

pytestmark = pytest.mark.slow


@pytest.fixture
def upload(stack, photo):
    return parse_upload(photo.path.read_bytes(), "image/jpeg", "fish.jpg", stack.limits)


@pytest.fixture
def worker(stack, classifier):
    return Worker(stack, classifier)


def drain(worker: Worker) -> None:
    for _ in range(3):
        worker.poll_once(wait_s=0)


def test_two_web_processes_each_get_only_their_own_answers(stack, worker, upload):
    first, second = ImageService(stack), ImageService(stack)
    a = first.accept(upload, "anonymous", expect_answer=True)
    b = second.accept(upload, "anonymous", expect_answer=True)
    assert a.request.reply_to != b.request.reply_to

    drain(worker)

    assert first.wait(a, 10).result.id == a.request.id
    assert second.wait(b, 10).result.id == b.request.id
    sqs = aws.client(stack, "sqs")
    for request in (a.request, b.request):  # each reply was consumed by its own process, once
        assert sqs.receive_message(QueueUrl=request.reply_to, WaitTimeSeconds=0).get("Messages") is None
    first.replies.close()
    second.replies.close()


def test_a_waiter_whose_reply_is_lost_reads_s3_once_at_its_deadline(stack, worker, upload):
    now = [1000.0]
    service = ImageService(stack, replies=replies.ReplyDispatcher(aws.client(stack, "sqs"), stack.reply_queue_prefix,
                                                                  clock=lambda: now[0]))
    submission = service.accept(upload, "anonymous", expect_answer=True)
    request = submission.request
    aws.client(stack, "sqs").delete_queue(QueueUrl=request.reply_to)  # swept while its process slept
    drain(worker)  # the answer is stored; the reply cannot be sent

    reads: list[str] = []
    s3 = aws.client(stack, "s3")
    s3.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: reads.append(params["Key"]))
    try:
        result = service.wait(submission, 1.0).result
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.GetObject")

    assert result is not None and result.label == "tench"
    assert len(reads) == 1 and reads[0].startswith("results/")  # no reply came: S3 read once, at the deadline
    now[0] += replies.TOUCH_EVERY_S + 1
    # The refresh finds the queue gone and makes it again, under its name: replies to requests sent
    # before (an embedded endpoint restarted without it) arrive there once more.
    again = service.accept(upload, "anonymous", expect_answer=True)
    assert again.request.reply_to == request.reply_to
    assert aws.client(stack, "sqs").get_queue_url(QueueName=again.request.reply_to.rsplit("/", 1)[1])
    drain(worker)
    assert service.wait(again, 1.0).result.id == again.request.id
    service.replies.close()


def test_on_lambda_the_invocation_polls_its_queue_and_drops_a_late_reply(stack, worker, upload, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "iraas-web")
    service = ImageService(stack)
    assert isinstance(service.replies, replies.InlineReplies)
    timed_out = service.accept(upload, "anonymous", expect_answer=True)
    assert service.wait(timed_out, 0).result is None  # gave up before any worker ran
    drain(worker)  # now its reply arrives, late
    current = service.accept(upload, "anonymous", expect_answer=True)
    drain(worker)

    assert service.wait(current, 10).result.id == current.request.id
    sqs = aws.client(stack, "sqs")
    assert sqs.receive_message(QueueUrl=current.request.reply_to, WaitTimeSeconds=0).get("Messages") is None
    service.replies.close()


def test_a_forged_reply_to_is_not_used_and_the_answer_is_still_stored(stack, worker, upload):
    sqs = aws.client(stack, "sqs")
    elsewhere = sqs.create_queue(QueueName="not-a-reply-queue")["QueueUrl"]
    service = ImageService(stack)
    request = service.submit(upload, "anonymous").request
    from dataclasses import replace

    forged = replace(request, reply_to=elsewhere)
    sqs.send_message(QueueUrl=stack.request_queue_url, MessageBody=forged.to_message())
    drain(worker)

    assert sqs.receive_message(QueueUrl=elsewhere, WaitTimeSeconds=0).get("Messages") is None
    assert service.find("anonymous", request.id).label == "tench"
    assert not replies.is_reply_queue("https://evil.example/123/iraas-reply-x", "iraas-reply-", stack.request_queue_url)


def test_the_sweeper_deletes_only_reply_queues_nobody_refreshed(stack):
    sqs = aws.client(stack, "sqs")
    now = time.time()
    stale = replies.create_reply_queue(sqs, stack.reply_queue_prefix, now=now - 3600)
    fresh = replies.create_reply_queue(sqs, stack.reply_queue_prefix, now=now)

    swept = replies.sweep_idle(sqs, stack.reply_queue_prefix, now=now)

    assert swept == [stale]
    remaining = sqs.list_queues(QueueNamePrefix=stack.reply_queue_prefix).get("QueueUrls", [])
    assert remaining == [fresh]
    assert stack.request_queue_url in sqs.list_queues()["QueueUrls"]  # other queues untouched
