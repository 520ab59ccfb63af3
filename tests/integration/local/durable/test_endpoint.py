"""iraas/local/durable/endpoint.py: the embedded endpoint's kept state (iraas/local/durable): what clients stored is there again
after the endpoint is killed (SIGKILL) and started on the same folder; nothing else is."""

from __future__ import annotations

import datetime
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig

from iraas.aws import local_credentials
from iraas.config import TEMPLATE
from iraas.local import lifecycle
from iraas.local.durable import STATE_FILE, remove_state
from iraas.local.motoserver import MotoServer
from iraas.local.provision import provision
from iraas.local.template import load_template

REGION = "us-east-1"


class Endpoint:
    def __init__(self, state: Path) -> None:
        self.server = MotoServer(state_dir=state, template=TEMPLATE, region=REGION)
        self.resources: dict[str, str] = {}

    def start(self) -> Endpoint:
        url = self.server.start()
        session = boto3.Session(**local_credentials(), region_name=REGION)
        self.resources = provision(load_template(TEMPLATE), session=session, endpoint_url=url, region=REGION)
        self.s3, self.sqs, self.ddb = (session.client(s, endpoint_url=url) for s in ("s3", "sqs", "dynamodb"))
        return self

    def crash(self) -> None:
        assert self.server._process is not None
        os.kill(self.server._process.pid, signal.SIGKILL)
        self.server._process.wait()

    def messages(self, queue: str) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(QueueUrl=self.resources[queue], MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])
        return sorted(got.get("Messages", []), key=lambda m: m["Body"])

    def events(self) -> list[str]:
        """The face function's queued S3 events (not the test events each configuration sends)."""
        return [m["Body"] for m in self.messages("FaceRecognitionFunction.EventQueue") if "s3:TestEvent" not in m["Body"]]

    def keys(self, bucket: str) -> list[str]:
        return sorted(o["Key"] for o in self.s3.list_objects_v2(Bucket=self.resources[bucket]).get("Contents", []))


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    running = Endpoint(tmp_path / "state").start()
    try:
        yield running
    finally:
        running.server.stop()


def test_objects_items_and_queued_messages_survive_a_kill_9(endpoint: Endpoint, tmp_path: Path) -> None:
    s3, sqs, ddb, res = endpoint.s3, endpoint.sqs, endpoint.ddb, endpoint.resources
    images, videos, table = res["ImageInputBucket"], res["VideoInputBucket"], res["StudentsTable"]
    s3.put_object(Bucket=images, Key="inputs/a b/ü.jpg", Body=b"\xff\xd8jpeg", ContentType="image/jpeg",
                  Metadata={"request-id": "r1"})
    s3.put_object(Bucket=images, Key="results/once.json", Body=b"{}", IfNoneMatch="*")
    s3.copy_object(Bucket=images, Key="copied.jpg", CopySource={"Bucket": images, "Key": "inputs/a b/ü.jpg"})
    s3.put_object(Bucket=images, Key="gone", Body=b"x")
    s3.delete_objects(Bucket=images, Delete={"Objects": [{"Key": "gone"}]})
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    s3.upload_file(str(big), images, "multipart.bin",  # three parts: kept once completed
                   Config=TransferConfig(multipart_threshold=2 * 1024 * 1024, multipart_chunksize=2 * 1024 * 1024))
    ddb.put_item(TableName=table, Item={"name": {"S": "Ann"}, "faces": {"B": b"\x00\x01"}, "year": {"N": "2"}})
    ddb.put_item(TableName=table, Item={"name": {"S": "Bob"}})
    ddb.update_item(TableName=table, Key={"name": {"S": "Bob"}}, UpdateExpression="SET major = :m",
                    ExpressionAttributeValues={":m": {"S": "CS"}})
    ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {"name": {"S": "Cy"}}}},
                                               {"DeleteRequest": {"Key": {"name": {"S": "Ann"}}}}]})

    def setting(name: str, year: str, condition: dict | None = None) -> dict:  # a student import's update
        return {"Update": {"TableName": table, "Key": {"name": {"S": name}}, "UpdateExpression": "SET #y = :y",
                           "ExpressionAttributeNames": {"#y": "year"}, "ExpressionAttributeValues": {":y": {"S": year}},
                           **(condition or {})}}

    ddb.transact_write_items(TransactItems=[setting("Bob", "3"), setting("Dee", "1")])
    with pytest.raises(ddb.exceptions.TransactionCanceledException):  # rolled back: nothing of it is kept
        ddb.transact_write_items(TransactItems=[setting("Eve", "1"), setting(
            "Cy", "9", {"ConditionExpression": "attribute_exists(#y)"})])
    for body in ("one", "two", "three"):
        sqs.send_message(QueueUrl=res["RequestQueue"], MessageBody=body,
                         MessageAttributes={"kind": {"DataType": "String", "StringValue": body.upper()}})
    [taken] = sqs.receive_message(QueueUrl=res["RequestQueue"], MaxNumberOfMessages=1)["Messages"]
    sqs.delete_message(QueueUrl=res["RequestQueue"], ReceiptHandle=taken["ReceiptHandle"])
    s3.put_object(Bucket=videos, Key="lecture.mp4", Body=b"video")  # its event is queued for the function
    events_before = endpoint.events()
    before = {"images": endpoint.keys("ImageInputBucket"),
              "requests": sorted(m["Body"] for m in endpoint.messages("RequestQueue"))}

    endpoint.crash()
    endpoint.start()

    assert endpoint.keys("ImageInputBucket") == before["images"] == sorted(
        ["inputs/a b/ü.jpg", "results/once.json", "copied.jpg", "multipart.bin"])
    kept = s3.get_object(Bucket=images, Key="inputs/a b/ü.jpg")
    assert kept["Body"].read() == b"\xff\xd8jpeg" and kept["ContentType"] == "image/jpeg"
    assert kept["Metadata"] == {"request-id": "r1"}
    assert s3.get_object(Bucket=images, Key="multipart.bin")["Body"].read() == big.read_bytes()
    with pytest.raises(s3.exceptions.ClientError, match="PreconditionFailed"):  # still write-once
        s3.put_object(Bucket=images, Key="results/once.json", Body=b"again", IfNoneMatch="*")
    items = {i["name"]["S"]: i for i in ddb.scan(TableName=table)["Items"]}
    assert sorted(items) == ["Bob", "Cy", "Dee"] and items["Bob"]["major"] == {"S": "CS"}
    assert (items["Bob"]["year"], items["Dee"]["year"], items["Cy"].get("year")) == ({"S": "3"}, {"S": "1"}, None)
    requests_after = endpoint.messages("RequestQueue")
    assert sorted(m["Body"] for m in requests_after) == before["requests"] and len(requests_after) == 2
    assert all(m["MessageAttributes"]["kind"]["StringValue"] == m["Body"].upper() for m in requests_after)
    # The video's event was queued, not made again by the restore (the function runs once).
    assert endpoint.events() == events_before
    assert any("lecture.mp4" in body for body in events_before)


def test_a_restart_brings_back_what_was_stored_up_to_the_kill(endpoint: Endpoint) -> None:
    """Each answered call was committed before its answer: a kill right after loses none of them."""
    bucket = endpoint.resources["ImageOutputBucket"]
    for i in range(50):
        endpoint.s3.put_object(Bucket=bucket, Key=f"results/{i:02d}.json", Body=json.dumps({"i": i}).encode())
    endpoint.crash()
    endpoint.start()
    assert endpoint.keys("ImageOutputBucket") == [f"results/{i:02d}.json" for i in range(50)]


def test_messages_moved_to_the_dead_letter_queue_stay_there(endpoint: Endpoint) -> None:
    sqs, res = endpoint.sqs, endpoint.resources
    url = res["RequestQueue"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": sqs.get_queue_attributes(QueueUrl=res["RequestDeadLetterQueue"],
                                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"],
         "maxReceiveCount": 1})})
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)  # over maxReceiveCount: moved on this receive
    endpoint.crash()
    endpoint.start()
    assert [m["Body"] for m in endpoint.messages("RequestDeadLetterQueue")] == ["poison"]
    assert endpoint.messages("RequestQueue") == []


def test_fresh_starts_empty(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = Endpoint(state).start()
    first.s3.put_object(Bucket=first.resources["ImageInputBucket"], Key="k", Body=b"v")
    first.server.stop()
    assert remove_state(state) and not (state / STATE_FILE).exists()
    again = Endpoint(state).start()
    try:
        assert again.keys("ImageInputBucket") == []
    finally:
        again.server.stop()


def test_the_template_s_retention_rules_expire_objects_for_good(endpoint: Endpoint) -> None:
    """moto stores lifecycle rules and ignores them; iraas up applies them (iraas/local/lifecycle.py):
    after InputRetentionDays (7) an upload is gone, a result (ResultRetentionDays, 30) is not, a
    worker's metrics window (a 1-day rule on status/metrics/) is; and what expired stays gone after a
    restart of the endpoint with its kept state."""
    s3, res = endpoint.s3, endpoint.resources
    images, results = res["ImageInputBucket"], res["ImageOutputBucket"]
    s3.put_object(Bucket=images, Key="inputs/caller/id/cat.jpg", Body=b"jpeg")
    s3.put_object(Bucket=results, Key="results/cat.jpg/id.json", Body=b"{}")
    s3.put_object(Bucket=results, Key="status/metrics/worker-1.json", Body=b"{}")
    now = datetime.datetime.now(datetime.UTC)

    assert lifecycle.expire_buckets(s3, now) == {}  # nothing is due yet
    assert lifecycle.expire_buckets(s3, now + datetime.timedelta(days=2)) == {results: 1}
    assert endpoint.keys("ImageOutputBucket") == ["results/cat.jpg/id.json"]
    assert lifecycle.expire_buckets(s3, now + datetime.timedelta(days=8)) == {images: 1}
    assert endpoint.keys("ImageInputBucket") == []

    endpoint.crash()
    endpoint.start()
    assert endpoint.keys("ImageInputBucket") == []
    assert endpoint.keys("ImageOutputBucket") == ["results/cat.jpg/id.json"]


def test_expiry_deletes_in_batches_of_a_thousand(endpoint: Endpoint) -> None:
    bucket = endpoint.resources["VideoInputBucket"]
    for i in range(1005):
        endpoint.s3.put_object(Bucket=bucket, Key=f"videos/caller/{i:04d}.mp4", Body=b"")
    deletes: list[int] = []
    endpoint.s3.meta.events.register(
        "before-call.s3.DeleteObjects", lambda params, **_: deletes.append(params["body"].count(b"<Key>")))
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=8)
    assert lifecycle.expire_buckets(endpoint.s3, later) == {bucket: 1005}
    assert deletes == [1000, 5] and endpoint.keys("VideoInputBucket") == []


def test_receive_counts_survive_so_a_poison_message_still_reaches_the_dead_letter_queue(endpoint: Endpoint) -> None:
    """A message that crashed whoever received it is not given a fresh set of tries by each restart:
    received once between each of several restarts, it reaches the dead-letter queue when the
    template's maxReceiveCount says."""
    url = endpoint.resources["RequestQueue"]
    policy = endpoint.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    limit = int(json.loads(policy["RedrivePolicy"])["maxReceiveCount"])
    endpoint.sqs.send_message(QueueUrl=url, MessageBody="poison")
    for count in range(1, limit + 1):
        [got] = endpoint.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0,
                                             MessageSystemAttributeNames=["ApproximateReceiveCount"])["Messages"]
        assert got["Attributes"]["ApproximateReceiveCount"] == str(count)
        endpoint.crash()
        endpoint.start()
    assert endpoint.messages("RequestQueue") == []  # one receive too many: moved
    assert [m["Body"] for m in endpoint.messages("RequestDeadLetterQueue")] == ["poison"]


def test_an_unknown_persons_crop_goes_with_the_video_and_the_report_stays(endpoint: Endpoint) -> None:
    """A lecture's video and the crops of the people nobody enrolled expire after VideoRetentionDays (7);
    its attendance report stays AttendanceRetentionDays (365); the segments' partial results go after a day."""
    from iraas.classroom import keys

    s3, res = endpoint.s3, endpoint.resources
    videos, output = res["VideoInputBucket"], res["VideoOutputBucket"]
    s3.put_object(Bucket=videos, Key="Room 101/monday.mp4", Body=b"video")
    s3.put_object(Bucket=output, Key=keys.attendance_json_key("Room 101/monday.mp4"), Body=b"{}")
    s3.put_object(Bucket=output, Key=keys.unknown_crop_key("Room 101/monday.mp4", 0), Body=b"jpeg")
    s3.put_object(Bucket=output, Key=keys.segment_key(keys.run_id(videos, "Room 101/monday.mp4", "etag"), 0), Body=b"{}")
    now = datetime.datetime.now(datetime.UTC)

    assert lifecycle.expire_buckets(s3, now + datetime.timedelta(days=2)) == {output: 1}  # the segment's result
    assert lifecycle.expire_buckets(s3, now + datetime.timedelta(days=8)) == {videos: 1, output: 1}
    assert endpoint.keys("VideoOutputBucket") == ["Room 101/monday.attendance.json"]
