"""template.yaml (not a module: the stack itself), what wakes an operator on AWS: an alarm per way the
stack fails, each watching the metric of the resource it names, all publishing to one encrypted topic
that CloudWatch may use, and a dashboard that charts the stack's own resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iraas.local.template import MOTO_ACCOUNT_ID, Resolver, load_template

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = load_template(REPO_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
CHALICE = json.loads((REPO_ROOT / "chalice_web" / ".chalice" / "config.json").read_text())


def _alarms() -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def _queue(name: str) -> list[dict[str, Any]]:
    assert RESOURCES[name]["Type"] == "AWS::SQS::Queue"
    return [{"Name": "QueueName", "Value": {"Fn::GetAtt": [name, "QueueName"]}}]


# Each alarm: its namespace, metric and dimensions (the resource it watches), statistic, threshold.
ANY = 0  # "more than none"
EXPECTED = {
    "RequestDeadLetterAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", _queue("RequestDeadLetterQueue"),
                               "Maximum", ANY),
    "RequestQueueAgeAlarm": ("AWS/SQS", "ApproximateAgeOfOldestMessage", _queue("RequestQueue"),
                             "Maximum", {"Ref": "RequestQueueMaxAgeSeconds"}),
    "FaceErrorsAlarm": ("AWS/Lambda", "Errors", [{"Name": "FunctionName", "Value": {"Ref": "FaceRecognitionFunction"}}],
                        "Sum", ANY),
    "FaceFailedEventsAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", _queue("FaceRecognitionFailedEvents"),
                              "Maximum", ANY),
    "CallbackDeadLetterAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", _queue("CallbackDeadLetterQueue"),
                                "Maximum", ANY),
    # chalice's REST API: API Gateway publishes under the API's name (chalice's app_name) and stage.
    "Api5xxAlarm": ("AWS/ApiGateway", "5XXError", [{"Name": "ApiName", "Value": CHALICE["app_name"]},
                                                   {"Name": "Stage", "Value": CHALICE["stages"]["dev"]["api_gateway_stage"]}],
                    "Average", 0.05),
}

# Their names: the stack's, then these (the dashboard's alarm widget names them by their ARNs).
ALARM_NAMES = {
    "RequestDeadLetterAlarm": "request-dead-letters", "RequestQueueAgeAlarm": "request-queue-age",
    "FaceErrorsAlarm": "face-function-errors", "FaceFailedEventsAlarm": "face-failed-events",
    "CallbackDeadLetterAlarm": "callback-dead-letters", "Api5xxAlarm": "api-5xx-rate",
}


def test_there_is_an_alarm_for_each_way_the_stack_fails_and_no_other():
    assert set(_alarms()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_alarm_watches_its_resources_metric_above_its_threshold(name: str):
    alarm = _alarms()[name]
    namespace, metric, dimensions, statistic, threshold = EXPECTED[name]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (namespace, metric, dimensions)
    assert (alarm["Statistic"], alarm["Threshold"]) == (statistic, threshold)
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"  # a quiet stack publishes nothing: no alarm
    assert alarm["Period"] in (60, 300) and 1 <= alarm["EvaluationPeriods"] <= 3
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert alarm["AlarmName"] == {"Fn::Sub": f"${{AWS::StackName}}-{ALARM_NAMES[name]}"}
    description = alarm["AlarmDescription"]
    assert "\n" not in description and 40 < len(description) < 300  # what it means, in a line



def test_the_request_queue_alarm_fires_after_two_minutes_by_default_three_minutes_running():
    parameter = TEMPLATE["Parameters"]["RequestQueueMaxAgeSeconds"]
    assert (parameter["Type"], parameter["Default"]) == ("Number", 120)
    alarm = _alarms()["RequestQueueAgeAlarm"]
    assert (alarm["Period"], alarm["EvaluationPeriods"]) == (60, 3)


def test_the_api_alarm_names_the_api_chalice_makes():
    """The packaged template's RestAPI is chalice's, named after its app (the packaged template's
    test: tests/integration/web/test_packaged_api.py)."""
    chalice_app = (REPO_ROOT / "chalice_web" / "app.py").read_text()
    assert f'app_name="{CHALICE["app_name"]}"' in chalice_app


def test_the_topic_is_encrypted_with_a_key_that_cloudwatch_may_use_for_it_alone():
    topic = RESOURCES["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    name = topic["Properties"]["TopicName"]["Fn::Sub"]
    key = RESOURCES["AlarmTopicKey"]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    root, cloudwatch = key["Properties"]["KeyPolicy"]["Statement"]
    assert root["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert cloudwatch["Effect"] == "Allow"
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    # SNS names the topic in the encryption context: the key serves this topic's alarms and no other.
    context = cloudwatch["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"]["Fn::Sub"]
    assert context == f"arn:${{AWS::Partition}}:sns:${{AWS::Region}}:${{AWS::AccountId}}:{name}"


def test_the_email_subscription_exists_only_when_an_address_is_given():
    parameter = TEMPLATE["Parameters"]["AlarmEmail"]
    assert parameter["Default"] == ""
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Type"] == "AWS::SNS::Subscription"
    assert subscription["Condition"] == "HasAlarmEmail"
    assert TEMPLATE["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert subscription["Properties"] == {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email",
                                          "Endpoint": {"Ref": "AlarmEmail"}}
    for given, included in (({}, False), ({"AlarmEmail": "ops@example.org"}, True)):
        resolver = Resolver(TEMPLATE, region="us-east-1", stack_name="iraas", account_id=MOTO_ACCOUNT_ID,
                            parameters=given)
        assert resolver.included(subscription) is included


def _dashboard() -> dict[str, Any]:
    """The dashboard's body as CloudFormation would write it, each resource named ``<Name>``."""
    resolver = Resolver(TEMPLATE, region="us-east-1", stack_name="iraas", account_id=MOTO_ACCOUNT_ID)
    for name in RESOURCES:
        resolver.physical[name] = f"<{name}>"
        resolver.attributes[name] = {"QueueName": f"<{name}.QueueName>"}
    return json.loads(resolver.resolve(RESOURCES["Dashboard"]["Properties"]["DashboardBody"]))


def test_the_dashboard_shows_every_alarm_by_its_name():
    [widget] = [w for w in _dashboard()["widgets"] if w["type"] == "alarm"]
    prefix = f"arn:aws:cloudwatch:us-east-1:{MOTO_ACCOUNT_ID}:alarm:iraas-"
    assert sorted(widget["properties"]["alarms"]) == sorted(prefix + n for n in ALARM_NAMES.values())


def test_the_dashboard_charts_the_queues_functions_api_and_face_metrics_of_the_stack():
    charted: dict[str, set[tuple[str, str]]] = {}
    for widget in _dashboard()["widgets"]:
        if widget["type"] != "metric":
            continue
        assert widget["properties"]["region"] == "us-east-1"
        for namespace, metric, *rest in widget["properties"]["metrics"]:
            dimensions = [d for d in rest if not isinstance(d, dict)]
            charted.setdefault(namespace, set()).add((metric, ",".join(dimensions)))
    queue = "QueueName,<{}.QueueName>".format
    assert {("ApproximateNumberOfMessagesVisible", queue("RequestQueue")),
            ("ApproximateNumberOfMessagesNotVisible", queue("RequestQueue")),
            ("ApproximateAgeOfOldestMessage", queue("RequestQueue")),
            ("NumberOfMessagesDeleted", queue("RequestQueue")),  # answered: a worker deletes what it answered
            ("ApproximateNumberOfMessagesVisible", queue("RequestDeadLetterQueue")),
            ("ApproximateNumberOfMessagesVisible", queue("FaceRecognitionFailedEvents")),
            ("ApproximateNumberOfMessagesVisible", queue("CallbackQueue")),
            ("ApproximateNumberOfMessagesVisible", queue("CallbackDeadLetterQueue"))} <= charted["AWS/SQS"]
    for metric in ("Invocations", "Errors", "Duration"):
        assert (metric, "FunctionName,<FaceRecognitionFunction>") in charted["AWS/Lambda"]
    api = f"ApiName,{CHALICE['app_name']},Stage,{CHALICE['stages']['dev']['api_gateway_stage']}"
    assert {(m, api) for m in ("Count", "4XXError", "5XXError", "Latency")} <= charted["AWS/ApiGateway"]
    # The face function's own metrics (Powertools, namespace IRaaS, dimension service) are ones it publishes.
    handler = (REPO_ROOT / "functions" / "face_recognition" / "handler.py").read_text()
    assert 'Metrics(namespace="IRaaS", service="face-recognition")' in handler
    face = {(m, d) for m, d in charted["IRaaS"] if d == "service,face-recognition"}
    assert face
    for metric, _ in face:
        assert f'"{metric}"' in handler, metric
    # The fleet's (dimension Stack) are the ones the scaler prints as EMF (iraas/images/metrics.py).
    fleet = charted["IRaaS"] - face
    assert fleet and all(d == "Stack,iraas" for _, d in fleet)
    emf = (REPO_ROOT / "iraas" / "images" / "metrics.py").read_text()
    for metric, _ in fleet:
        assert f'"{metric}"' in emf, metric
    # Every queue charted is one of the stack's.
    for _, dimensions in charted["AWS/SQS"]:
        name = dimensions.removeprefix("QueueName,<").removesuffix(".QueueName>")
        assert RESOURCES[name]["Type"] == "AWS::SQS::Queue"
