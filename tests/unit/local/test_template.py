"""iraas/local/template.py, the template reader: short tags, the intrinsic functions, dependency order."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from iraas.local.template import (
    Resolver,
    TemplateError,
    load_template,
    references,
    resource_order,
)

TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"


def _load(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "t.yaml"
    path.write_text(dedent(text))
    return load_template(path)


def test_short_tags_become_long_forms(tmp_path: Path) -> None:
    t = _load(
        tmp_path,
        """
        Resources:
          R:
            Type: X
            Properties:
              A: !Ref P
              B: !GetAtt Q.Arn
              C: !GetAtt [Q, QueueUrl]
              D: !Sub "${AWS::Region}-x"
              E: !Join ["-", [a, !Ref P]]
              F: !If [Cond, 1, !Ref "AWS::NoValue"]
              G: !Equals [!Ref P, b]
              H: !Select [0, !Split [",", "a,b"]]
              I: !Not [!Condition Cond]
              J: !GetAZs ""
              K: !Base64 abc
              L: !FindInMap [M, k, v]
              N: !And [!Condition Cond, !Or [!Condition Cond, !Condition Cond]]
              O: !ImportValue other
              V: 2012-10-17
        """,
    )
    p = t["Resources"]["R"]["Properties"]
    assert p["A"] == {"Ref": "P"}
    assert p["B"] == {"Fn::GetAtt": ["Q", "Arn"]}
    assert p["C"] == {"Fn::GetAtt": ["Q", "QueueUrl"]}
    assert p["D"] == {"Fn::Sub": "${AWS::Region}-x"}
    assert p["E"] == {"Fn::Join": ["-", ["a", {"Ref": "P"}]]}
    assert p["F"] == {"Fn::If": ["Cond", 1, {"Ref": "AWS::NoValue"}]}
    assert p["H"] == {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}
    assert p["I"] == {"Fn::Not": [{"Condition": "Cond"}]}
    assert p["J"] == {"Fn::GetAZs": ""}
    assert p["O"] == {"Fn::ImportValue": "other"}
    assert p["V"] == "2012-10-17"  # a policy version, not a date


def test_loader_is_safe(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="python/object"):
        _load(tmp_path, "Resources: !!python/object/apply:os.system ['true']\n")


def test_missing_resources_section(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no Resources"):
        _load(tmp_path, "Parameters: {}\n")


def _resolver(template: dict, **parameters: str) -> Resolver:
    return Resolver(template, region="eu-west-1", stack_name="s", parameters=parameters)


TEMPLATE_WITH_FUNCTIONS = {
    "Parameters": {
        "Days": {"Type": "Number", "Default": 7, "MinValue": 1, "MaxValue": 30},
        "Env": {"Type": "String", "Default": "dev", "AllowedValues": ["dev", "prod"]},
        "Names": {"Type": "CommaDelimitedList", "Default": "a, b"},
        "NoDefault": {"Type": "String"},
    },
    "Mappings": {"Sizes": {"dev": {"Memory": 128}}},
    "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}},
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Fn": {"Type": "AWS::Serverless::Function"},
    },
    "Outputs": {"QueueOut": {"Value": {"Ref": "Queue"}}, "FnOut": {"Value": {"Ref": "Fn"}}},
}


def test_resolver_evaluates_functions() -> None:
    r = _resolver(TEMPLATE_WITH_FUNCTIONS)
    r.physical["Queue"] = "http://q/url"
    r.attributes["Queue"] = {"Arn": "arn:aws:sqs:eu-west-1:123456789012:q"}
    assert r.resolve({"Ref": "Days"}) == "7"  # CloudFormation passes parameters as strings
    assert r.resolve({"Ref": "Names"}) == ["a", "b"]
    assert r.resolve({"Ref": "AWS::AccountId"}) == "123456789012"
    assert r.resolve({"Fn::Sub": "${AWS::StackName}-${AWS::Region}-${Queue.Arn}-${!Literal}"}) == (
        "s-eu-west-1-arn:aws:sqs:eu-west-1:123456789012:q-${Literal}"
    )
    assert r.resolve({"Fn::Sub": ["${A}/${Queue}", {"A": {"Ref": "Env"}}]}) == "dev/http://q/url"
    assert r.resolve({"Fn::Join": [":", ["a", {"Ref": "Days"}]]}) == "a:7"
    assert r.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Memory"]}) == 128
    assert r.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y"]}]}) == "y"
    assert r.resolve({"Fn::GetAtt": "Queue.Arn"}).endswith(":q")
    # AWS::NoValue removes the key; a false condition picks the other branch.
    no_value = {"Ref": "AWS::NoValue"}
    value = {"A": {"Fn::If": ["IsProd", 1, no_value]}, "B": [no_value]}
    assert r.resolve(value) == {"B": []}
    assert r.included({"Condition": "IsProd"}) is False
    assert _resolver(TEMPLATE_WITH_FUNCTIONS, Env="prod").condition("IsProd") is True
    # Outputs that point at resources the embedded stack does not create are left out.
    assert r.outputs() == {"QueueOut": "http://q/url"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Ref": "NoDefault"}, "has no Default"),
        ({"Ref": "Nothing"}, "no such parameter or resource"),
        ({"Ref": "Fn"}, "AWS::Serverless::Function resources are not created"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "cannot resolve Fn::GetAtt Queue.Arn"),
        ({"Fn::GetAZs": ""}, "Fn::GetAZs is not supported"),
        ({"Fn::ImportValue": "x"}, "Fn::ImportValue is not supported"),
    ],
)
def test_resolver_errors_are_clear(value: dict, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        _resolver(TEMPLATE_WITH_FUNCTIONS).resolve(value)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [({"Days": "31"}, "outside"), ({"Env": "qa"}, "not one of"), ({"Nope": "1"}, "unknown")],
)
def test_parameters_are_checked(parameters: dict, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        _resolver(TEMPLATE_WITH_FUNCTIONS, **parameters)


def test_references_and_order() -> None:
    value = {"A": {"Fn::Sub": ["${X.Arn}${Y}${!Z}", {"Y": {"Ref": "W"}}]}, "B": [{"Ref": "V"}]}
    assert references(value) == {"X", "W", "V"}
    template = {
        "Resources": {
            "Queue": {"Type": "T", "Properties": {"R": {"Fn::GetAtt": ["Dlq", "Arn"]}}},
            "Later": {"Type": "T", "DependsOn": "Queue"},
            "Dlq": {"Type": "T"},
        }
    }
    order = resource_order(template)
    assert order.index("Dlq") < order.index("Queue") < order.index("Later")
    template["Resources"]["Dlq"]["Properties"] = {"P": {"Ref": "Later"}}
    with pytest.raises(TemplateError, match="cycle"):
        resource_order(template)


def test_project_template_orders_dead_letter_queue_first() -> None:
    order = resource_order(load_template(TEMPLATE))
    assert order.index("RequestDeadLetterQueue") < order.index("RequestQueue")
    assert order.index("ImageInputBucket") < order.index("ImageInputBucketPolicy")
