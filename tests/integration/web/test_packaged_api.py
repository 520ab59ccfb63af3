"""What `sam deploy` creates for the API: chalice's package, finished by iraas/cli/package.py and
expanded by SAM's own translator. Keys on every route but the health check, the page and the API's
description, a usage plan that throttles each key, a throttled stage, and reserved concurrency on
the functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import lint

from iraas.config import REPO_ROOT
from iraas.local.template import load_template

OPEN = {("/v1/healthz", "get"), ("/", "get"), ("/assets/{name}", "get"), ("/openapi.json", "get")}
KEY = [{"api_key": []}]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packaged(packaged_template: Path) -> Path:
    """`make package`'s template: chalice's step and the finishing step (the Makefile line)."""
    return packaged_template


@pytest.fixture(scope="module")
def deployed(expanded_template: dict) -> dict:
    """The CloudFormation SAM's transform makes of the package."""
    return expanded_template



def test_the_finished_package_passes_cfn_lint(packaged: Path):
    matches = lint(packaged.read_text(), regions=["us-east-1"])
    assert not matches, "\n".join(f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches)


def test_every_route_but_the_health_check_the_page_and_the_api_description_needs_an_api_key(deployed: dict):
    body = deployed["Resources"]["RestAPI"]["Properties"]["Body"]
    assert body["securityDefinitions"]["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    methods = {(path, method): spec for path, entries in body["paths"].items() for method, spec in entries.items()}
    assert len(methods) > 90
    for route, spec in methods.items():
        if route in OPEN:
            assert "security" not in spec, route
        elif route == ("/", "post"):
            assert spec["security"] == {"Fn::If": ["CourseEndpointIsOpen", {"Ref": "AWS::NoValue"}, KEY]}
        else:
            assert spec["security"] == KEY, route


def test_a_usage_plan_throttles_each_key_and_the_stage_throttles_everyone(deployed: dict):
    resources = deployed["Resources"]
    plan = resources["RestAPIUsagePlan"]["Properties"]
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPIapiStage"}}]
    # SAM fills in the parameters (here their defaults: the course's 100 clients at once fit in a burst).
    assert plan["Throttle"] == {"RateLimit": 50, "BurstLimit": 100}
    key = resources["RestAPIApiKey"]
    assert key["Type"] == "AWS::ApiGateway::ApiKey" and key["Properties"]["Enabled"] is True
    link = resources["RestAPIUsagePlanKey"]["Properties"]
    assert link == {"KeyId": {"Ref": "RestAPIApiKey"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "RestAPIUsagePlan"}}
    settings = resources["RestAPIapiStage"]["Properties"]["MethodSettings"]
    throttle = {"ThrottlingRateLimit": {"Ref": "ApiRateLimit"}, "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"}}
    assert settings[0] == {"ResourcePath": "/*", "HttpMethod": "*", **throttle}
    condition, course, _ = settings[1]["Fn::If"]
    assert condition == "CourseEndpointIsOpen" and (course["ResourcePath"], course["HttpMethod"]) == ("/", "POST")
    assert course["ThrottlingRateLimit"] == {"Ref": "CourseEndpointRateLimit"}
    assert deployed["Outputs"]["ApiKeyId"]["Value"] == {"Ref": "RestAPIApiKey"}


def test_api_gateways_own_refusals_are_the_projects_json_errors(deployed: dict):
    responses = deployed["Resources"]["RestAPI"]["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    for kind, status, code in [("INVALID_API_KEY", 403, "forbidden"), ("THROTTLED", 429, "throttled")]:
        assert int(responses[kind]["statusCode"]) == status
        assert json.loads(responses[kind]["responseTemplates"]["application/json"])["error"]["code"] == code


def test_the_web_tier_and_the_face_function_have_reserved_concurrency(deployed: dict):
    resources = deployed["Resources"]
    assert resources["APIHandler"]["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "ApiReservedConcurrency"}
    face = resources["FaceRecognitionFunction"]["Properties"]
    assert face["ReservedConcurrentExecutions"] == {"Ref": "FaceReservedConcurrency"}
    assert resources["Scale"]["Properties"]["ReservedConcurrentExecutions"] == 1
    parameters = load_template(REPO_ROOT / "template.yaml")["Parameters"]
    assert parameters["ApiReservedConcurrency"]["Default"] == 100 and parameters["FaceReservedConcurrency"]["Default"] == 20
    assert parameters["OpenCourseEndpoint"]["Default"] == "false"


def test_the_api_alarm_and_the_dashboard_name_the_api_and_stage_the_package_creates(deployed: dict):
    """API Gateway publishes a REST API's metrics under its name and stage: the RestApi has no Name, so
    its name is its definition's title (chalice's app_name), and its stage is chalice's."""
    resources = deployed["Resources"]
    api = resources["RestAPI"]["Properties"]
    assert "Name" not in api
    [stage] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    expected = [{"Name": "ApiName", "Value": api["Body"]["info"]["title"]}, {"Name": "Stage", "Value": stage["StageName"]}]
    assert resources["Api5xxAlarm"]["Properties"]["Dimensions"] == expected
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert body.count('"ApiName", "{}", "Stage", "{}"'.format(*(d["Value"] for d in expected))) == 6
