"""?callback= on POST /v1/images and /v1/batches: refused without a secret or for an address the
policy refuses; otherwise each stored answer reaches its receiver once, signed, through the worker,
the callback queue and the sender, against moto with a real worker and a receiver on 127.0.0.1.

The stack here is a deployment's (moto in-process, no endpoint URL), so 127.0.0.1 is put on the
allow-list (``IRAAS_CALLBACK_ALLOW``), as an operator would for a receiver inside their network.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from iraas import aws
from iraas.callbacks.jobs import CallbackJob
from iraas.callbacks.sender import CallbackSender
from iraas.callbacks.settings import load_callback_settings
from iraas.callbacks.signing import verify
from iraas.images.worker import Worker
from tests.integration.images.test_batches import post_batch
from tests.support.callbacks import run_event_source
from tests.support.receiver import receiving

SECRET = "callback-tests-secret-0123456789"


@pytest.fixture
def callbacks_on(stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRAAS_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("IRAAS_CALLBACK_ALLOW", "127.0.0.1")
    monkeypatch.setenv("IRAAS_CALLBACK_RETRY_BASE_S", "0.5")


def post_image(client, data: bytes, query: str) -> Any:
    return client.http.post(f"/v1/images{query}", headers={"Content-Type": "image/jpeg"}, body=data)


def deliver(stack) -> dict[str, int]:
    """The callback function's work, as its event source runs it, until the callback queue is empty."""
    settings = load_callback_settings()
    sender = CallbackSender(settings, SECRET.encode(), aws.client(stack, "sqs"))
    return run_event_source(sender, aws.client(stack, "sqs"), settings.queue_url, quiet_s=1.5)


def test_without_a_webhook_secret_a_callback_is_refused_and_nothing_is_stored(client, s3, stack, photo) -> None:
    response = post_image(client, photo.path.read_bytes(), "?callback=https://hooks.example.com/in")
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["code"] == "callbacks_disabled"
    assert s3.list_objects_v2(Bucket=stack.image_input_bucket).get("KeyCount") == 0


@pytest.mark.parametrize(
    "callback", ["https://10.0.0.1/in", "https://169.254.169.254/latest", "http://hooks.example.com/in", "ftp://x/"]
)
def test_a_callback_the_policy_refuses_is_a_400_and_nothing_is_stored(
    callbacks_on, client, s3, stack, photo, callback: str
) -> None:
    response = post_image(client, photo.path.read_bytes(), f"?callback={callback}")
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["code"] == "bad_callback"
    response = post_batch(client, [("a", "one.jpg", photo.path.read_bytes())], f"?callback={callback}")
    assert response.status_code == 400
    assert s3.list_objects_v2(Bucket=stack.image_input_bucket).get("KeyCount") == 0


def test_each_answer_of_an_image_and_a_batch_is_posted_once_signed_to_its_callback(
    callbacks_on, client, stack, imagenet_sample, running_worker
) -> None:
    photos = imagenet_sample[:3]
    with receiving() as receiver:
        one = post_image(client, photos[0].path.read_bytes(), f"?wait=20&top=3&callback={receiver.url}")
        assert one.status_code == 200, one.body
        batch = post_batch(client, [("f", f"{i}.jpg", p.path.read_bytes()) for i, p in enumerate(photos[1:])],
                           f"?wait=20&callback={receiver.url}")
        assert batch.status_code == 200, batch.body
        totals = deliver(stack)

    answers = [json.loads(one.body), *json.loads(batch.body)["results"]]
    assert totals == {"delivered": 3, "retried": 0, "failed": 0}
    by_id = {d.headers["iraas-delivery"]: d for d in receiver.deliveries}
    assert len(receiver.deliveries) == 3 and set(by_id) == {a["id"] for a in answers}  # one each
    for answer in answers:
        delivery = by_id[answer["id"]]
        assert json.loads(delivery.body) == answer  # what GET /v1/images/{id} shows, with its id
        assert verify(SECRET.encode(), delivery.body, delivery.headers["iraas-signature"])


def test_an_answer_whose_callback_could_not_be_queued_is_queued_by_its_redelivery(
    callbacks_on, client, stack, sqs, classifier, photo
) -> None:
    """The answer is stored, then the callback queue refuses: the request is kept, and its next
    delivery (which finds the answer stored) queues the callback. Exactly one job in the end."""
    response = post_image(client, photo.path.read_bytes(), "?wait=0&callback=http://127.0.0.1:9/in")
    assert response.status_code == 202
    refusals = []

    def refuse_once(params: dict, **_: Any) -> None:
        if params.get("QueueUrl") == stack.callback_queue_url and not refusals:
            refusals.append(params)
            raise ConnectionError("the callback queue is away")

    sqs.meta.events.register("before-parameter-build.sqs.SendMessageBatch", refuse_once)
    try:
        worker = Worker(stack, classifier)
        first = worker.poll_once(wait_s=1)
        assert (first.answered, first.failed) == (0, 1) and refusals  # stored, but not settled
        second = worker.poll_once(wait_s=5)  # after the retry delay (IRAAS_WORKER_RETRY_DELAY_S)
        assert (second.duplicates, second.failed) == (1, 0)
    finally:
        sqs.meta.events.unregister("before-parameter-build.sqs.SendMessageBatch", refuse_once)
    jobs = sqs.receive_message(QueueUrl=stack.callback_queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [CallbackJob.from_message(m["Body"]).delivery_id for m in jobs] == [json.loads(response.body)["id"]]
    assert sqs.receive_message(QueueUrl=stack.request_queue_url, WaitTimeSeconds=0).get("Messages") is None


def test_stats_count_callbacks_pending_and_failed(callbacks_on, client, stack, sqs) -> None:
    sqs.send_message(QueueUrl=stack.callback_queue_url, MessageBody="{}")
    sqs.send_message(QueueUrl=stack.callback_dead_letter_queue_url, MessageBody="{}")
    sqs.send_message(QueueUrl=stack.callback_dead_letter_queue_url, MessageBody="{}")
    response = client.http.get("/v1/stats")
    assert json.loads(response.body)["callbacks"] == {"pending": 1, "failed": 2}
