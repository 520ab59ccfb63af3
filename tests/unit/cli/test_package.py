"""The step that finishes `make package`'s template (iraas/cli/package.py), on small templates."""

from __future__ import annotations

import pytest

from iraas.cli.package import PackageError, finish

KEY = [{"api_key": []}]


def test_the_course_endpoint_needs_the_key_unless_the_parameter_opens_it():
    template = {
        "Conditions": {"CourseEndpointIsOpen": {"Fn::Equals": [{"Ref": "OpenCourseEndpoint"}, "true"]}},
        "Resources": {"RestAPI": {"Properties": {"DefinitionBody": {"paths": {"/": {"post": {"security": KEY}}}}}}},
    }
    finished = finish(template)
    course = finished["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]["/"]["post"]
    assert course["security"] == {"Fn::If": ["CourseEndpointIsOpen", {"Ref": "AWS::NoValue"}, KEY]}
    assert finished["Outputs"]["ApiKeyId"]["Value"] == {"Ref": "RestAPIApiKey"}
    assert template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]["/"]["post"]["security"] == KEY


def test_a_package_whose_course_endpoint_is_already_open_is_refused():
    template = {
        "Conditions": {"CourseEndpointIsOpen": {}},
        "Resources": {"RestAPI": {"Properties": {"DefinitionBody": {"paths": {"/": {"post": {}}}}}}},
    }
    with pytest.raises(PackageError, match="does not require an API key"):
        finish(template)
