"""template.yaml (not a module: the stack itself), its face pipeline: S3-triggered image function with least-privilege access."""

from __future__ import annotations

import json
from pathlib import Path

from iraas.local.template import load_template, references

TEMPLATE = load_template(Path(__file__).resolve().parents[3] / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]


def test_the_function_is_a_python312_image_triggered_by_video_uploads():
    function = RESOURCES["FaceRecognitionFunction"]
    assert function["Properties"]["PackageType"] == "Image"
    assert function["Metadata"]["Dockerfile"] == "functions/face_recognition/Dockerfile"
    dockerfile = Path(__file__).resolve().parents[3] / "functions" / "face_recognition" / "Dockerfile"
    assert "FROM public.ecr.aws/lambda/python:3.12" in dockerfile.read_text()
    assert function["Properties"]["Events"]["VideoUploaded"] == {
        "Type": "S3", "Properties": {"Bucket": {"Ref": "VideoInputBucket"}, "Events": "s3:ObjectCreated:*"}
    }


def test_the_function_may_touch_only_the_two_video_buckets_the_table_its_logs_and_failed_events():
    role = RESOURCES["FaceRecognitionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    touched = set().union(*(references(s["Resource"]) for s in statements)) - {"AWS::Partition", "AWS::Region", "AWS::AccountId"}
    assert touched == {
        "VideoOutputBucket", "StudentsTable", "FaceRecognitionLogGroup", "FaceRecognitionFailedEvents",
        "VideoSegmentQueue", "AttendanceRunsTable",  # a long lecture's segments, and who merges them
    }
    assert {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])} == {
        "logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage",
        "s3:PutObject", "dynamodb:Scan", "dynamodb:BatchGetItem", "dynamodb:UpdateItem",
        "s3:GetObject", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "dynamodb:PutItem",
    }
    # Of the output bucket it reads only the segments' results.
    [read] = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert read["Resource"] == {"Fn::Sub": "${VideoOutputBucket.Arn}/attendance-runs/*"}
    # Enrolling a photo adds descriptors to an item; the records themselves stay read-only to it.
    [update] = [s for s in statements if s["Action"] == "dynamodb:UpdateItem"]
    assert update["Condition"]["ForAllValues:StringEquals"] == {"dynamodb:Attributes": ["name", "faces"]}
    # Reading videos: granted by the input bucket's policy, and by nothing else.
    grants = [
        (name, s) for name, r in RESOURCES.items() if r["Type"] == "AWS::S3::BucketPolicy"
        for s in r["Properties"]["PolicyDocument"]["Statement"] if "FaceRecognitionRole" in json.dumps(s)
    ]
    assert [(name, s["Action"], s["Resource"]) for name, s in grants] == [
        ("VideoInputBucketPolicy", "s3:GetObject", {"Fn::Sub": "${VideoInputBucket.Arn}/*"})
    ]


def test_the_web_tier_may_list_find_and_remove_students_and_store_photos_under_the_video_bucket():
    role = RESOURCES["ApiHandlerRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]

    def actions_on(resource: dict) -> set[str]:
        return {a for s in statements if s["Resource"] == resource
                for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}

    assert actions_on({"Fn::GetAtt": ["StudentsTable", "Arn"]}) == {
        "dynamodb:UpdateItem", "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:DeleteItem",
        "dynamodb:BatchGetItem",  # an import: the records there are, then UpdateItems (no Put: faces)
    }
    # enrolments/<id>.<ext> in, enrolments/<id>.json out: the grants the videos already have.
    assert actions_on({"Fn::Sub": "${VideoInputBucket.Arn}/*"}) == {"s3:PutObject"}
    assert actions_on({"Fn::Sub": "${VideoOutputBucket.Arn}/*"}) == {"s3:GetObject"}
    assert actions_on({"Fn::GetAtt": ["VideoOutputBucket", "Arn"]}) == {"s3:ListBucket"}  # pending, not 403


def test_a_long_lectures_segments_are_retried_by_their_queue_then_recorded_as_missing():
    function = RESOURCES["FaceRecognitionFunction"]["Properties"]
    segments = function["Events"]["Segments"]
    assert segments["Type"] == "SQS" and segments["Properties"]["BatchSize"] == 1
    assert segments["Properties"]["Queue"] == {"Fn::GetAtt": ["VideoSegmentQueue", "Arn"]}
    queue = RESOURCES["VideoSegmentQueue"]["Properties"]
    # AWS's advice for an SQS trigger: the queue's visibility at least six times the function's timeout,
    # and at least 5 receives, since a throttled invocation uses one up.
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5
    # The handler records a gap on the segment's last try: it must know which try that is.
    variables = function["Environment"]["Variables"]
    assert int(variables["IRAAS_SEGMENT_MAX_RECEIVES"]) == queue["RedrivePolicy"]["maxReceiveCount"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["VideoSegmentDeadLetterQueue", "Arn"]}
    assert variables["IRAAS_SEGMENT_QUEUE_URL"] == {"Ref": "VideoSegmentQueue"}
    assert variables["IRAAS_ATTENDANCE_RUNS_TABLE"] == {"Ref": "AttendanceRunsTable"}
    runs = RESOURCES["AttendanceRunsTable"]["Properties"]
    assert runs["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_segments_never_take_all_of_the_functions_concurrency():
    """The segment trigger's maximum concurrency stays below the function's reserved concurrency, so a
    long lecture's segments leave room for new videos' first frames and are not throttled by their own
    function (a throttled segment goes back to the queue and uses up one of its tries)."""
    function = RESOURCES["FaceRecognitionFunction"]["Properties"]
    scaling = function["Events"]["Segments"]["Properties"]["ScalingConfig"]
    assert scaling == {"MaximumConcurrency": {"Ref": "FaceSegmentConcurrency"}}
    assert function["ReservedConcurrentExecutions"] == {"Ref": "FaceReservedConcurrency"}
    reserved, segments = PARAMETERS["FaceReservedConcurrency"], PARAMETERS["FaceSegmentConcurrency"]
    assert segments["Default"] < reserved["Default"] and segments["MinValue"] >= 2  # Lambda's minimum is 2
    assert reserved["MinValue"] > segments["MinValue"]


def test_the_byte_limit_admits_a_two_hour_1080p_lecture_and_fits_the_functions_storage():
    from iraas.classroom.settings import FaceSettings

    storage_mib = RESOURCES["FaceRecognitionFunction"]["Properties"]["EphemeralStorage"]["Size"]
    assert FaceSettings.max_video_bytes <= storage_mib * 1024 * 1024  # downloaded whole for its first frame
    two_hours_1080p = 2 * 3600 * 8_000_000 // 8  # at 8 Mbit/s, a generous 1080p lecture
    assert FaceSettings.max_video_seconds == 7200 and FaceSettings.max_video_bytes >= two_hours_1080p
    rules = RESOURCES["VideoOutputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {"Id": "ExpireAttendanceRuns", "Status": "Enabled", "Prefix": "attendance-runs/", "ExpirationInDays": 1} in rules


def test_an_unknown_persons_crop_is_kept_no_longer_than_the_video_it_came_from():
    from iraas.classroom.keys import unknown_crop_key

    rules = RESOURCES["VideoOutputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r["Id"] == "ExpireUnknownFaces"]
    assert unknown_crop_key("Room 101/monday.mp4", 3).startswith(rule["Prefix"])
    (videos,) = [r for r in RESOURCES["VideoInputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
                 if "Prefix" not in r and "Filter" not in r]
    assert rule["ExpirationInDays"] == videos["ExpirationInDays"] == {"Ref": "VideoRetentionDays"}
