"""What `sam deploy` creates from `make package`'s template, for least privilege and recovery: SAM's
own translator expands it, so template.yaml's Globals are seen reaching chalice's functions and API."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployed(expanded_template: dict) -> dict:
    return expanded_template


def _of_type(deployed: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in deployed["Resources"].items() if r["Type"] == kind}


def test_each_function_logs_to_a_group_of_the_stack_that_only_its_role_names(deployed: dict):
    functions = _of_type(deployed, "AWS::Lambda::Function")
    assert {"APIHandler", "Scale", "FaceRecognitionFunction"} <= set(functions)
    for name, function in functions.items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert deployed["Resources"][group]["Type"] == "AWS::Logs::LogGroup", name
        role = deployed["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]]
        statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
        logs = [s for s in statements if "Fn::If" not in s and str(s["Action"]).count("logs:")]
        assert [s["Resource"] for s in logs] == [{"Fn::GetAtt": [group, "Arn"]}], name
    roles = json.dumps(_of_type(deployed, "AWS::IAM::Role"))
    assert "/aws/lambda/" not in roles and "logs:CreateLogGroup" not in roles


def test_the_api_stage_writes_its_access_log(deployed: dict):
    [stage] = _of_type(deployed, "AWS::ApiGateway::Stage").values()
    setting = stage["Properties"]["AccessLogSetting"]
    assert "${ApiAccessLogGroup}" in setting["DestinationArn"]["Fn::Sub"]
    assert json.loads(setting["Format"])["requestId"] == "$context.requestId"  # one JSON object a line


def test_the_face_functions_failed_events_go_to_their_queue(deployed: dict):
    [config] = _of_type(deployed, "AWS::Lambda::EventInvokeConfig").values()
    props = config["Properties"]
    assert props["FunctionName"] == {"Ref": "FaceRecognitionFunction"}
    assert props["MaximumRetryAttempts"] == 2
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["FaceRecognitionFailedEvents", "Arn"]}


def test_the_packaged_template_keeps_recovery_on(deployed: dict):
    table = deployed["Resources"]["StudentsTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    rules = deployed["Resources"]["VideoOutputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {r["Id"] for r in rules} == {"ExpireAttendance", "ExpireEnrolmentOutcomes", "ExpireAttendanceRuns", "ExpireUnknownFaces"}


def test_the_callback_functions_trigger_reports_partial_batch_failures_within_its_concurrency(deployed: dict):
    [trigger] = [r["Properties"] for r in _of_type(deployed, "AWS::Lambda::EventSourceMapping").values()
                 if r["Properties"]["FunctionName"] == {"Ref": "CallbackFunction"}]
    assert trigger["EventSourceArn"] == {"Fn::GetAtt": ["CallbackQueue", "Arn"]} and trigger["BatchSize"] == 10
    assert trigger["FunctionResponseTypes"] == ["ReportBatchItemFailures"]  # the handler's batchItemFailures count
    assert trigger["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "CallbackConcurrency"}}
    assert deployed["Resources"]["CallbackFunction"]["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "CallbackConcurrency"}
    queue = deployed["Resources"]["CallbackQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["CallbackDeadLetterQueue", "Arn"]}
