"""Lambda's SQS trigger for the face function's segment queue, as the handlers' tests need it."""

from __future__ import annotations

from typing import Any

from iraas import aws
from iraas.local.lambda_runner import LocalContext, sqs_event


def run_segments(handler: Any, settings: Any) -> list[dict]:
    """Lambda's SQS trigger, one message at a time: delete what the handler returned from, leave what
    it raised on (visible again at once here), until the queue is empty."""
    sqs = aws.client(settings, "sqs")
    arn = sqs.get_queue_attributes(QueueUrl=settings.segment_queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    answers = []
    for _ in range(200):
        messages = sqs.receive_message(
            QueueUrl=settings.segment_queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=0, VisibilityTimeout=30,
            AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])
        if not messages:
            return answers
        (message,) = messages
        try:
            answers.append(handler.lambda_handler(sqs_event(message, arn), LocalContext("FaceRecognitionFunction", 300)))
        except Exception:  # noqa: BLE001 - the trigger leaves it to the queue
            sqs.change_message_visibility(QueueUrl=settings.segment_queue_url, ReceiptHandle=message["ReceiptHandle"],
                                          VisibilityTimeout=0)
            continue
        sqs.delete_message(QueueUrl=settings.segment_queue_url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError("the segment queue never emptied")
