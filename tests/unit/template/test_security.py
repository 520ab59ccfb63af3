"""template.yaml (not a module: the stack itself), its least privilege and recovery: each role may do
what its code does and no more, and the only copy of enrolled faces, the face function's failed
events and the API's callers are kept.

The roles read as written (``Fn::If [HasWorkerFleet, ...]`` taken as the fleet's branch). What the
code calls is checked against these policies in tests/integration/scaling/test_ec2.py (the scaler's
EC2 calls) and here (every granted action has a caller in the package; the parameters of the web
tier's and the worker's calls, asked of real boto3 clients that botocore's Stubber answers).
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
import yaml
from botocore import xform_name
from botocore.stub import Stubber

from iraas.classroom.student_store import DynamoStudentStore
from iraas.classroom.students import StudentRecord
from iraas.errors import NotFound
from iraas.images.jobs import ImageResult, new_id
from iraas.images.results import S3ResultStore
from iraas.images.service import ImageService
from iraas.local.template import load_template, references
from tests.support.iam import allows, resolved_statements

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = load_template(REPO_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
ROLES = ("ApiHandlerRole", "ScaleRole", "SweepRepliesRole", "WorkerRole", "FaceRecognitionRole", "CallbackRole")

LAUNCH_TEMPLATE_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:launch-template/${WorkerLaunchTemplate}"
}
FLEET_TAG_KEYS = ["iraas:fleet", "Name"]  # iraas/scaling/ec2.py's TagSpecifications


def _unwrap(statement: dict[str, Any]) -> dict[str, Any] | None:
    """A statement under ``Fn::If`` as it reads when its condition holds; None for AWS::NoValue."""
    while "Fn::If" in statement:
        statement = statement["Fn::If"][1]
    return None if statement == {"Ref": "AWS::NoValue"} else statement


def statements(role: str) -> list[dict[str, Any]]:
    policies = RESOURCES[role]["Properties"].get("Policies", [])
    found = [_unwrap(s) for p in policies for s in p["PolicyDocument"]["Statement"]]
    return [s for s in found if s is not None]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions(statement: dict[str, Any]) -> set[str]:
    return set(listed(statement["Action"]))


def granting(role: str, action: str) -> list[dict[str, Any]]:
    return [s for s in statements(role) if action in actions(s) and s["Effect"] == "Allow"]


def resources_of(statement: dict[str, Any]) -> list[Any]:
    return [_unwrap(r) if isinstance(r, dict) else r for r in listed(statement["Resource"])]


# --- The scaler: launches only fleet workers from the launch template --------------------------


def test_the_scaler_launches_only_from_the_launch_template_the_worker_type_tagged_as_the_fleet():
    launches = granting("ScaleRole", "ec2:RunInstances")
    assert launches, "ScaleRole cannot launch workers"
    for statement in launches:  # every resource RunInstances touches: only through the template
        assert statement["Condition"]["ArnEquals"]["ec2:LaunchTemplate"] == LAUNCH_TEMPLATE_ARN, statement["Sid"]
        assert "*" not in resources_of(statement)
    [instance] = [
        s for s in launches if {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"}
        in resources_of(s)
    ]
    assert resources_of(instance) == [
        {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"}
    ]
    assert instance["Condition"]["StringEquals"] == {
        "ec2:InstanceType": {"Ref": "WorkerInstanceType"},
        "aws:RequestTag/iraas:fleet": {"Ref": "AWS::StackName"},
    }
    assert instance["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": FLEET_TAG_KEYS}
    # The other resources are the template's own: its AMI and security group, its subnet if named.
    others = [r for s in launches if s is not instance for r in resources_of(s)]
    assert {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}::image/${WorkerAmiId}"} in others
    assert not any("image/*" in str(r) or "security-group/*" in str(r) for r in others)


def test_the_scaler_tags_only_the_instances_it_launches_and_only_with_the_fleet_tag():
    [tagging] = granting("ScaleRole", "ec2:CreateTags")
    assert resources_of(tagging) == [
        {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"}
    ]
    assert tagging["Condition"]["StringEquals"] == {
        "ec2:CreateAction": "RunInstances",
        "aws:RequestTag/iraas:fleet": {"Ref": "AWS::StackName"},
    }
    assert tagging["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": FLEET_TAG_KEYS}


def test_the_scaler_terminates_only_fleet_workers_and_hands_them_only_the_worker_role():
    [terminate] = granting("ScaleRole", "ec2:TerminateInstances")
    assert terminate["Condition"] == {"StringEquals": {"ec2:ResourceTag/iraas:fleet": {"Ref": "AWS::StackName"}}}
    [pass_role] = granting("ScaleRole", "iam:PassRole")
    assert pass_role["Resource"] == {"Fn::GetAtt": ["WorkerRole", "Arn"]}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


# --- The worker: write-once answers --------------------------------------------------------------


def test_the_worker_can_neither_delete_nor_overwrite_an_answer():
    results = {"Fn::Sub": "${ImageOutputBucket.Arn}/results/*"}
    for statement in statements("WorkerRole"):
        if results in resources_of(statement):
            assert actions(statement) == {"s3:PutObject"}, statement["Sid"]
            # The first answer is final: S3 takes only a write with If-None-Match (ResultStore.put_first).
            assert statement["Condition"] == {"Null": {"s3:if-none-match": "false"}}
            assert resources_of(statement) == [results]
    [delete] = granting("WorkerRole", "s3:DeleteObject")
    assert resources_of(delete) == [{"Fn::Sub": "${ImageOutputBucket.Arn}/status/workers/*"}]  # its heartbeat
    assert not [s for s in statements("WorkerRole") if any(a.endswith("*") for a in actions(s))]


# --- The web tier: what its routes read, and the student records -------------------------------


def test_the_web_tier_lists_one_upload_by_its_id_and_no_other():
    [listing] = [s for s in granting("ApiHandlerRole", "s3:ListBucket")
                 if s["Resource"] == {"Fn::GetAtt": ["ImageInputBucket", "Arn"]}]
    # ImageService.find (by owner and id): list_objects_v2(Prefix="inputs/<caller>/<32 hex>/", MaxKeys=1).
    assert listing["Condition"]["StringLike"] == {"s3:prefix": "inputs/*/" + "?" * 32 + "/"}
    assert listing["Condition"]["NumericLessThanEquals"] == {"s3:max-keys": "1"}


def test_the_web_tier_reads_only_the_results_and_the_status_it_shows():
    reads = {str(r) for s in granting("ApiHandlerRole", "s3:GetObject") for r in resources_of(s)
             if "ImageOutputBucket" in str(r)}
    assert reads == {
        str({"Fn::Sub": "${ImageOutputBucket.Arn}/results/*"}),  # GET /v1/images/{id}
        str({"Fn::Sub": "${ImageOutputBucket.Arn}/status/fleet.json"}),  # /v1/stats
        str({"Fn::Sub": "${ImageOutputBucket.Arn}/status/metrics/*"}),  # /v1/metrics
    }


def test_the_web_tier_writes_student_records_but_never_their_faces():
    [update] = granting("ApiHandlerRole", "dynamodb:UpdateItem")
    # StudentStore.put_students: SET id, major, year on the item named by `name`.
    assert update["Condition"]["ForAllValues:StringEquals"] == {"dynamodb:Attributes": ["name", "id", "major", "year"]}
    assert update["Condition"]["StringEqualsIfExists"] == {"dynamodb:ReturnValues": "NONE"}


RECORD = ["name", "id", "major", "year"]
STUDENTS_TABLE = "<StudentsTable.Arn>"


def test_only_the_face_function_may_write_faces_and_the_web_tier_has_no_whole_item_write():
    """A Put (PutItem, BatchWriteItem's PutRequest, a transaction's Put) replaces the whole item: with
    one, the web tier's role could erase a student's faces, even under an attribute condition (the
    faces are what the Put leaves out). Its writes are UpdateItems of the record's fields alone."""
    web = resolved_statements(TEMPLATE, "ApiHandlerRole", "iraas")
    face = resolved_statements(TEMPLATE, "FaceRecognitionRole", "iraas")
    for action in ("dynamodb:PutItem", "dynamodb:BatchWriteItem"):
        for context in ({}, {"dynamodb:Attributes": RECORD}, {"dynamodb:Attributes": ["name"]}):
            assert not allows(web, action, STUDENTS_TABLE, context), (action, context)
    # Every statement of the web tier's role that may write the table conditions the attributes.
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"}
    for statement in web:
        if STUDENTS_TABLE in listed(statement["Resource"]) and writes & set(listed(statement["Action"])):
            attributes = statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
            assert "faces" not in attributes, statement["Sid"]
    assert allows(web, "dynamodb:UpdateItem", STUDENTS_TABLE, {"dynamodb:Attributes": RECORD})
    for attributes in (["name", "faces"], [*RECORD, "faces"]):
        assert not allows(web, "dynamodb:UpdateItem", STUDENTS_TABLE, {"dynamodb:Attributes": attributes})
    assert allows(face, "dynamodb:UpdateItem", STUDENTS_TABLE, {"dynamodb:Attributes": ["name", "faces"]})
    assert not allows(face, "dynamodb:UpdateItem", STUDENTS_TABLE, {"dynamodb:Attributes": RECORD})


class Recorded:
    """A real boto3 client whose calls botocore's Stubber answers (each checked against the API model,
    nothing sent), and the parameters of each call in order."""

    def __init__(self, service: str) -> None:
        self.client = boto3.client(service, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
        self.stub = Stubber(self.client)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.client.meta.events.register(f"provide-client-params.{service}", self._seen)

    def _seen(self, event_name: str, params: dict[str, Any], **_: object) -> None:
        self.calls.append((xform_name(event_name.rsplit(".", 1)[1]), dict(params)))

    def answers(self, operation: str, response: dict[str, Any]) -> Recorded:
        self.stub.add_response(operation, response)
        return self


def _dynamodb_attributes(params: dict[str, Any]) -> list[str]:
    """``dynamodb:Attributes`` of an update: its key's names and those its one clause writes
    (``SET a = :a, #b = :b`` or ``ADD a :v``)."""
    names = params.get("ExpressionAttributeNames", {})
    _clause, _, body = params["UpdateExpression"].partition(" ")
    written = [part.split("=")[0].split()[0] for part in body.split(",")]
    return list(params["Key"]) + [names.get(n, n) for n in written]


def test_what_the_web_tier_and_the_worker_ask_is_what_their_roles_allow():
    web = resolved_statements(TEMPLATE, "ApiHandlerRole", "iraas")
    worker = resolved_statements(TEMPLATE, "WorkerRole", "iraas", parameters={"WorkerAmiId": "ami-1"})
    face = resolved_statements(TEMPLATE, "FaceRecognitionRole", "iraas")
    s3 = Recorded("s3").answers("list_objects_v2", {"KeyCount": 0}).answers("put_object", {})
    dynamodb = Recorded("dynamodb").answers("batch_get_item", {"Responses": {"students": []}})
    dynamodb.answers("transact_write_items", {}).answers("update_item", {})
    sqs = Recorded("sqs")  # asked nothing: a call would find no answer

    where = SimpleNamespace(image_input_bucket="in", image_output_bucket="out", request_queue_url="q", reply_queue_prefix="r")
    service = ImageService(where, s3=s3.client, sqs=sqs.client, replies=SimpleNamespace())  # type: ignore[arg-type]
    with s3.stub, dynamodb.stub, sqs.stub:
        with pytest.raises(NotFound):  # the listing is empty: an id the caller never made
            service.find("k0123456789abcdef", new_id())
        S3ResultStore(s3.client, "out").put_first(ImageResult.failed(new_id(), "cat.jpg", "bad", "not an image"), "{}")
        DynamoStudentStore(dynamodb.client, "students").put_students([StudentRecord("1", "Ada", "CS", "2")])
        DynamoStudentStore(dynamodb.client, "students").add_faces("Ada", [b"\0" * 512])
        for recorded in (s3, dynamodb, sqs):
            recorded.stub.assert_no_pending_responses()

    (_, listing), (_, answer) = s3.calls
    assert allows(web, "s3:ListBucket", "<ImageInputBucket.Arn>",
                  {"s3:prefix": listing["Prefix"], "s3:max-keys": listing["MaxKeys"]})
    assert not allows(web, "s3:ListBucket", "<ImageInputBucket.Arn>", {"s3:prefix": "inputs/", "s3:max-keys": 1})
    for caller in ("k0123456789abcdef", "anonymous", "gabc123XYZ"):  # one caller's folder: all its uploads
        assert not allows(web, "s3:ListBucket", "<ImageInputBucket.Arn>", {"s3:prefix": f"inputs/{caller}/", "s3:max-keys": 1})
    assert not allows(web, "s3:ListBucket", "<ImageInputBucket.Arn>", {"s3:prefix": listing["Prefix"], "s3:max-keys": 1000})
    key = f"<ImageOutputBucket.Arn>/{answer['Key']}"
    assert allows(worker, "s3:PutObject", key, {"s3:if-none-match": answer["IfNoneMatch"]})
    assert not allows(worker, "s3:PutObject", key, {})  # an overwrite
    assert not allows(worker, "s3:DeleteObject", key, {})

    # An import reads the records (BatchGetItem, their fields projected), then writes each new or
    # changed one as an Update of a transaction, which IAM authorises as the UpdateItem it is;
    # faces are an UpdateItem of their own.
    (read,) = [params for name, params in dynamodb.calls if name == "batch_get_item"]
    [(_, request)] = read["RequestItems"].items()
    projected = [request["ExpressionAttributeNames"].get(n, n) for n in request["ProjectionExpression"].split(", ")]
    assert allows(web, "dynamodb:BatchGetItem", "<StudentsTable.Arn>", {"dynamodb:Attributes": projected})
    (written,) = [params for name, params in dynamodb.calls if name == "transact_write_items"]
    [record] = [action["Update"] for action in written["TransactItems"]]
    (faces,) = [params for name, params in dynamodb.calls if name == "update_item"]
    record_attributes = {"dynamodb:Attributes": _dynamodb_attributes(record)}
    face_attributes = {"dynamodb:Attributes": _dynamodb_attributes(faces)}
    assert record_attributes == {"dynamodb:Attributes": RECORD}
    assert allows(web, "dynamodb:UpdateItem", "<StudentsTable.Arn>", record_attributes)
    assert not allows(face, "dynamodb:UpdateItem", "<StudentsTable.Arn>", record_attributes)
    assert not allows(web, "dynamodb:UpdateItem", "<StudentsTable.Arn>", face_attributes)
    assert allows(face, "dynamodb:UpdateItem", "<StudentsTable.Arn>", face_attributes)


def test_a_worker_reads_the_model_the_stack_names_and_nothing_else_and_only_when_it_names_one(tmp_path: Path):
    import hashlib
    import io

    from botocore.response import StreamingBody

    from iraas.images.model.fetch import fetch_model

    uri, network = "s3://models-of-ours/team/colours.onnx", b"an ONNX graph"
    fleet = {"WorkerAmiId": "ami-1"}
    named = resolved_statements(TEMPLATE, "WorkerRole", "iraas", parameters={
        **fleet, "WorkerModelS3Uri": uri, "WorkerModelSha256": hashlib.sha256(network).hexdigest()})
    unnamed = resolved_statements(TEMPLATE, "WorkerRole", "iraas", parameters=fleet)
    s3 = Recorded("s3")
    for body in (network, b"sky\nfern\npoppy\n"):
        s3.answers("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentLength": len(body)})
    # No NAME.json: the role may list nothing, so S3 says AccessDenied where it would say NoSuchKey.
    s3.stub.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
    with s3.stub:
        fetch_model(s3.client, uri, hashlib.sha256(network).hexdigest(), tmp_path)
        s3.stub.assert_no_pending_responses()

    asked = [f"arn:aws:s3:::{params['Bucket']}/{params['Key']}" for _, params in s3.calls]
    assert [a.rsplit("/", 1)[1] for a in asked] == ["colours.onnx", "colours.labels.txt", "colours.json"]
    for arn in asked:
        assert allows(named, "s3:GetObject", arn, {}) and not allows(unnamed, "s3:GetObject", arn, {})
    for other in ("team/colours.onnx.old", "team/other.onnx", "colours.onnx", "team/", "inputs/secret.png"):
        assert not allows(named, "s3:GetObject", f"arn:aws:s3:::models-of-ours/{other}", {})
    assert not allows(named, "s3:ListBucket", "arn:aws:s3:::models-of-ours", {"s3:prefix": "team/"})
    # The role's own statements are the same either way: the model's are a policy of their own.
    assert [s for s in named if s.get("Sid") != "FetchTheModel"] == unnamed


def test_a_model_from_s3_needs_its_sha256():
    [rule] = TEMPLATE["Rules"].values()
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "WorkerModelS3Uri"}, ""]}]}
    assert [a["Assert"] for a in rule["Assertions"]] == [{"Fn::Not": [{"Fn::Equals": [{"Ref": "WorkerModelSha256"}, ""]}]}]
    parameters = TEMPLATE["Parameters"]
    assert re.fullmatch(parameters["WorkerModelSha256"]["AllowedPattern"], "ab" * 32)
    assert not re.fullmatch(parameters["WorkerModelSha256"]["AllowedPattern"], "ab" * 31)
    uri_pattern = parameters["WorkerModelS3Uri"]["AllowedPattern"]
    assert re.fullmatch(uri_pattern, "") and re.fullmatch(uri_pattern, "s3://models-of-ours/team/colours.onnx")
    # The role's resources are the URI less ".onnx": a second ".onnx" (or a wildcard) would widen them.
    for bad in ("s3://models-of-ours/a.onnx.d/colours.onnx", "s3://models-of-ours/team/*.onnx", "s3://b/x.onnx",
                "https://models-of-ours/colours.onnx"):
        assert not re.fullmatch(uri_pattern, bad), bad


# --- Logs: each function's own log group ---------------------------------------------------------

LOG_GROUPS = {"ApiHandlerRole": "WebTierLogGroup", "ScaleRole": "WebTierLogGroup", "SweepRepliesRole": "WebTierLogGroup",
              "FaceRecognitionRole": "FaceRecognitionLogGroup", "CallbackRole": "CallbackLogGroup"}


@pytest.mark.parametrize("role", sorted(LOG_GROUPS))
def test_each_function_writes_only_its_own_log_group(role: str):
    logs = [s for s in statements(role) if any(a.startswith("logs:") for a in actions(s))]
    assert [actions(s) for s in logs] == [{"logs:CreateLogStream", "logs:PutLogEvents"}]  # the group exists
    assert logs[0]["Resource"] == {"Fn::GetAtt": [LOG_GROUPS[role], "Arn"]}
    assert "log-group:/aws/lambda/*" not in str(RESOURCES[role])


def test_the_functions_log_to_the_stacks_log_groups_which_expire():
    globals_logging = TEMPLATE["Globals"]["Function"]["LoggingConfig"]  # chalice's APIHandler and Scale
    assert globals_logging == {"LogGroup": {"Ref": "WebTierLogGroup"}}
    face = RESOURCES["FaceRecognitionFunction"]["Properties"]["LoggingConfig"]
    assert face == {"LogGroup": {"Ref": "FaceRecognitionLogGroup"}}
    callbacks = RESOURCES["CallbackFunction"]["Properties"]["LoggingConfig"]
    assert callbacks == {"LogGroup": {"Ref": "CallbackLogGroup"}}
    for name in ("WebTierLogGroup", "FaceRecognitionLogGroup", "CallbackLogGroup", "ApiAccessLogGroup"):
        group = RESOURCES[name]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


# --- No permission the code does not use ---------------------------------------------------------

# IAM action -> the boto3 calls that need it (upload_file/download_file: S3's transfer manager).
CALLS = {
    "s3:PutObject": ["put_object", "upload_file"],
    "s3:GetObject": ["get_object", "head_object", "download_file"],
    "s3:DeleteObject": ["delete_object"],
    "s3:ListBucket": ["list_objects_v2"],
    "sqs:SendMessage": ["send_message", "send_message_batch"],
    "sqs:ReceiveMessage": ["receive_message"],
    "sqs:DeleteMessage": ["delete_message", "delete_message_batch"],
    "sqs:ChangeMessageVisibility": ["change_message_visibility", "change_message_visibility_batch"],
    "sqs:GetQueueAttributes": ["get_queue_attributes"],
    "sqs:CreateQueue": ["create_queue"],
    "sqs:TagQueue": ["tag_queue", "create_queue"],
    "sqs:DeleteQueue": ["delete_queue"],
    "sqs:ListQueues": ["list_queues"],
    "sqs:ListQueueTags": ["list_queue_tags"],
    "dynamodb:Scan": ["scan"],
    "dynamodb:GetItem": ["get_item"],
    "dynamodb:PutItem": ["put_item"],
    "dynamodb:BatchGetItem": ["batch_get_item"],
    "dynamodb:UpdateItem": ["update_item", "transact_write_items"],  # a transaction's Update is one
    "dynamodb:BatchWriteItem": ["batch_write_item"],
    "dynamodb:DeleteItem": ["delete_item"],
    "ec2:DescribeInstances": ["describe_instances"],
    "ec2:RunInstances": ["run_instances"],
    "ec2:CreateTags": ["TagSpecifications"],  # tags on launch, in the RunInstances call
    "ec2:TerminateInstances": ["terminate_instances"],
    "iam:PassRole": ["run_instances"],  # the launch template's instance profile
    "secretsmanager:GetSecretValue": ["get_secret_value"],
}
# What AWS does with a function's role on its behalf: Lambda writes its logs (and sends to its
# on-failure destination: sqs:SendMessage, above); Secrets Manager decrypts the secret it reads.
BY_LAMBDA = {"logs:CreateLogStream", "logs:PutLogEvents", "kms:Decrypt"}


def _package_source() -> str:
    folders = [REPO_ROOT / "iraas", REPO_ROOT / "chalice_web", REPO_ROOT / "functions"]
    files = [p for f in folders for p in f.rglob("*.py")
             if "vendor" not in p.parts and (REPO_ROOT / "iraas" / "local") not in p.parents]
    return "\n".join(p.read_text() for p in files)


@pytest.mark.parametrize("role", ROLES)
def test_every_granted_action_has_a_caller(role: str):
    source = _package_source()
    for statement in statements(role):
        for action in actions(statement):
            if action in BY_LAMBDA:
                continue
            assert action in CALLS, f"{role} grants {action}, which no test knows a caller of"
            assert any(re.search(rf"\b{name}\b", source) for name in CALLS[action]), f"{role}: nothing calls {action}"


# --- Recovery and audit ---------------------------------------------------------------------------


def test_the_students_table_can_be_restored_to_any_second_of_the_last_35_days():
    table = RESOURCES["StudentsTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_face_functions_failed_events_are_kept_in_a_queue():
    function = RESOURCES["FaceRecognitionFunction"]["Properties"]
    config = function["EventInvokeConfig"]
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    [queue] = references(on_failure["Destination"])
    assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue"
    assert RESOURCES[queue]["Properties"]["MessageRetentionPeriod"] == 1209600  # 14 days to replay them
    assert RESOURCES[queue]["Properties"]["SqsManagedSseEnabled"] is True
    assert config["MaximumRetryAttempts"] == 2
    # Lambda sends the failed event with the function's own role.
    sends = granting("FaceRecognitionRole", "sqs:SendMessage")
    assert {"Fn::GetAtt": [queue, "Arn"]} in [send["Resource"] for send in sends]


def test_the_api_writes_an_access_log():
    setting = TEMPLATE["Globals"]["Api"]["AccessLogSetting"]  # reaches chalice's RestAPI in `make package`
    assert references(setting["DestinationArn"]) >= {"ApiAccessLogGroup"}
    for field in ("$context.requestId", "$context.identity.sourceIp", "$context.httpMethod",
                  "$context.resourcePath", "$context.status", "$context.identity.apiKeyId"):
        assert field in setting["Format"]
    # API Gateway writes logs with the account's CloudWatch role: the stack sets it before the stage.
    assert RESOURCES["ApiGatewayAccount"]["Type"] == "AWS::ApiGateway::Account"
    assert RESOURCES["ApiAccessLogGroup"]["DependsOn"] == "ApiGatewayAccount"


def test_attendance_csvs_and_enrolment_outcomes_expire():
    rules = RESOURCES["VideoOutputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    by_prefix = {r.get("Prefix", ""): r for r in rules if r["Status"] == "Enabled"}
    assert by_prefix[""]["ExpirationInDays"] == {"Ref": "AttendanceRetentionDays"}
    assert by_prefix["enrolments/"]["ExpirationInDays"] == {"Ref": "VideoRetentionDays"}


# --- checkov: every skip has its reason ------------------------------------------------------------


def test_every_checkov_skip_is_explained_beside_it():
    path = REPO_ROOT / ".checkov.yaml"
    skipped = yaml.safe_load(path.read_text())["skip-check"]
    assert skipped, "no skips: drop the list instead"
    lines = path.read_text().splitlines()
    for check in skipped:
        [index] = [i for i, line in enumerate(lines) if re.match(rf"\s*- {check}\b", line)]
        above = []  # the comment block right above the entry is its reason
        while lines[index - 1 - len(above)].lstrip().startswith("#"):
            above.append(lines[index - 1 - len(above)])
        assert len(" ".join(above)) > 60, f"{check} is skipped without its reason above it"
