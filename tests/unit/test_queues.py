"""iraas/queues.py's BatchSender when SQS refuses one entry of a batch: only that entry's sender
learns it, the others' sends succeed.

moto never refuses an entry of a SendMessageBatch, so SQS here is botocore's Stubber on a real client:
it answers the call with a response of the API's own shape and sends nothing. The rest of the
sender's behaviour (batches of a burst, a message sent alone, an unreachable queue) is tested
against moto and a closed port in tests/integration/test_queues.py.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.stub import ANY, Stubber

from iraas.queues import BATCH_LIMIT, BatchSender, SendError

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/requests"


def test_a_refused_message_fails_only_its_own_sender():
    sqs = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    sent: list[list[str]] = []  # each SendMessageBatch call's bodies, in its entries' order
    sqs.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch", lambda params, **_: sent.append([e["MessageBody"] for e in params["Entries"]])
    )
    stub = Stubber(sqs)
    stub.add_response(
        "send_message_batch",
        {"Successful": [], "Failed": [{"Id": "1", "SenderFault": True, "Code": "InvalidMessageContents", "Message": "no"}]},
        {"QueueUrl": QUEUE_URL, "Entries": ANY},
    )
    # A full batch goes at once; a long linger would only hold a partial one.
    sender = BatchSender(sqs, QUEUE_URL, linger_s=30)
    bodies = [f"m{i}" for i in range(BATCH_LIMIT)]
    outcomes: dict[str, str] = {}
    barrier = threading.Barrier(len(bodies))

    def send(body: str) -> None:
        barrier.wait()
        try:
            sender.send(body)
            outcomes[body] = "sent"
        except SendError as exc:
            outcomes[body] = f"{exc} (unavailable: {exc.unavailable})"

    with stub, ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        list(pool.map(send, bodies))
        stub.assert_no_pending_responses()

    [batch] = sent
    assert sorted(batch) == bodies  # one call, each body once
    refused = outcomes.pop(batch[1])  # the entry SQS named
    assert "InvalidMessageContents" in refused and "(unavailable: False)" in refused  # its own fault: not to retry
    assert outcomes == dict.fromkeys([b for b in bodies if b != batch[1]], "sent")
