"""The callback sender (iraas/callbacks/sender.py) against moto's SQS and a real receiver on 127.0.0.1.

Each test runs the sender the way the callback function's event source does: receive the queue's
messages, hand them to ``CallbackSender.handle``, delete the ones it settled. A deployment's policy
is used, with 127.0.0.1 on the allow-list (otherwise a deployment may not call loopback).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest

from iraas.callbacks.jobs import CallbackJob
from iraas.callbacks.policy import CallbackPolicy
from iraas.callbacks.sender import CallbackSender
from iraas.callbacks.settings import CallbackSettings
from iraas.callbacks.signing import verify
from tests.support.callbacks import run_event_source
from tests.support.receiver import receiving

SECRET = b"a-test-secret-of-32-characters!!"
BODY = json.dumps({"id": "0" * 32, "name": "tench.jpg", "status": "done", "label": "tench"}, separators=(",", ":"))


@pytest.fixture
def queues(aws_credentials: None) -> Iterator[tuple[Any, str, str]]:
    with moto.mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dead = sqs.create_queue(QueueName="callbacks-dead")["QueueUrl"]
        queue = sqs.create_queue(QueueName="callbacks")["QueueUrl"]
        yield sqs, queue, dead


def sender_for(sqs: Any, queue: str, dead: str, resolver: Any = socket.getaddrinfo, **settings: Any) -> CallbackSender:
    options = {"max_attempts": 3, "retry_base_s": 0.5, "timeout_s": 5.0, **settings}
    config = CallbackSettings(
        region="us-east-1", endpoint_url=None, home=None,  # type: ignore[arg-type]
        queue_url=queue, dead_letter_queue_url=dead, policy=CallbackPolicy.from_allow_list("127.0.0.1"), **options,
    )
    return CallbackSender(config, SECRET, sqs, resolver=resolver)


def dead_letters(sqs: Any, dead: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_an_answer_is_posted_once_signed_with_its_delivery_id(queues: tuple[Any, str, str]) -> None:
    sqs, queue, dead = queues
    with receiving() as receiver:
        sqs.send_message(QueueUrl=queue, MessageBody=CallbackJob(receiver.url + "?t=1", "0" * 32, BODY).to_message())
        totals = run_event_source(sender_for(sqs, queue, dead), sqs, queue, quiet_s=1.5)
    assert totals == {"delivered": 1, "retried": 0, "failed": 0}
    [delivery] = receiver.deliveries
    assert delivery.path == "/hook?t=1"
    assert delivery.body == BODY.encode()  # the answer's JSON, byte for byte as signed
    assert verify(SECRET, delivery.body, delivery.headers["iraas-signature"])
    assert delivery.headers["iraas-delivery"] == "0" * 32
    assert delivery.headers["content-type"] == "application/json"
    assert dead_letters(sqs, dead) == []


def test_a_receiver_that_fails_twice_gets_the_same_delivery_a_third_time(queues: tuple[Any, str, str]) -> None:
    sqs, queue, dead = queues
    with receiving([503, 500]) as receiver:
        sqs.send_message(QueueUrl=queue, MessageBody=CallbackJob(receiver.url, "1" * 32, BODY).to_message())
        totals = run_event_source(sender_for(sqs, queue, dead), sqs, queue)
    assert totals == {"delivered": 1, "retried": 2, "failed": 0}
    assert [d.headers["iraas-delivery"] for d in receiver.deliveries] == ["1" * 32] * 3
    assert {d.body for d in receiver.deliveries} == {BODY.encode()}
    assert dead_letters(sqs, dead) == []


def test_a_receiver_that_never_takes_it_is_tried_a_bounded_number_of_times_then_counted_failed(
    queues: tuple[Any, str, str],
) -> None:
    sqs, queue, dead = queues
    with receiving([500] * 10) as receiver:
        sqs.send_message(QueueUrl=queue, MessageBody=CallbackJob(receiver.url, "2" * 32, BODY).to_message())
        totals = run_event_source(sender_for(sqs, queue, dead, max_attempts=3), sqs, queue)
    assert len(receiver.deliveries) == 3
    assert totals == {"delivered": 0, "retried": 2, "failed": 1}
    [failure] = dead_letters(sqs, dead)
    assert "HTTP 500" in failure["reason"] and "after 3 attempts" in failure["reason"]
    assert CallbackJob.from_message(failure["job"]).delivery_id == "2" * 32


def test_a_redirect_is_not_followed(queues: tuple[Any, str, str]) -> None:
    sqs, queue, dead = queues
    with receiving([302], location="http://127.0.0.1:9/elsewhere") as receiver:
        sqs.send_message(QueueUrl=queue, MessageBody=CallbackJob(receiver.url, "3" * 32, BODY).to_message())
        totals = run_event_source(sender_for(sqs, queue, dead, max_attempts=1), sqs, queue, quiet_s=1.5)
    assert [d.path for d in receiver.deliveries] == ["/hook"]
    assert totals["failed"] == 1
    assert "redirect" in dead_letters(sqs, dead)[0]["reason"]


def test_a_host_that_resolves_to_a_private_address_is_never_called_and_counted_failed(
    queues: tuple[Any, str, str],
) -> None:
    sqs, queue, dead = queues
    asked: list[str] = []

    def rebinding(host: str, port: int, type: int = 0):  # noqa: A002 - getaddrinfo's own name
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    job = CallbackJob("https://hooks.attacker.example/in", "4" * 32, BODY)
    sqs.send_message(QueueUrl=queue, MessageBody=job.to_message())
    posted: list[Any] = []
    sender = sender_for(sqs, queue, dead, resolver=rebinding)
    sender.post = lambda *args, **kwargs: posted.append(args)  # type: ignore[assignment,return-value]
    totals = run_event_source(sender, sqs, queue, quiet_s=1.5)
    assert asked == ["hooks.attacker.example"] and posted == []  # refused after DNS, before any connection
    assert totals == {"delivered": 0, "retried": 0, "failed": 1}
    assert "resolves to 10.0.0.7" in dead_letters(sqs, dead)[0]["reason"]


def test_a_message_that_is_no_job_is_counted_failed_and_the_rest_of_the_batch_is_delivered(
    queues: tuple[Any, str, str],
) -> None:
    sqs, queue, dead = queues
    with receiving() as receiver:
        sqs.send_message(QueueUrl=queue, MessageBody="not json")
        sqs.send_message(QueueUrl=queue, MessageBody=CallbackJob(receiver.url, "5" * 32, BODY).to_message())
        totals = run_event_source(sender_for(sqs, queue, dead), sqs, queue, quiet_s=1.5)
    assert totals == {"delivered": 1, "retried": 0, "failed": 1}
    assert len(receiver.deliveries) == 1
    assert dead_letters(sqs, dead)[0]["job"] == "not json"
