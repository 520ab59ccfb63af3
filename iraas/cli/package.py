"""Finish the template ``make package`` writes: what template.yaml cannot say about chalice's REST API.

``chalice package`` writes each route's ``api_key_required`` into the API's definition when it
packages, so no template parameter can change it; template.yaml, valid on its own, has no RestAPI
to say it in. This step, run on the merged ``sam.yaml``, makes the course-compatible ``POST /``
need the key unless ``OpenCourseEndpoint`` is true, and outputs the id of the API key SAM creates.

Usage: ``python -m iraas.cli.package build/package/sam.yaml`` (rewrites the file in place).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml

from iraas.local.template import load_template

REST_API = "RestAPI"  # chalice's logical id for the API
COURSE_PATH, COURSE_METHOD = "/", "post"
COURSE_CONDITION = "CourseEndpointIsOpen"  # template.yaml's condition on OpenCourseEndpoint
API_KEY_SECURITY: list[dict[str, list[str]]] = [{"api_key": []}]


class PackageError(RuntimeError):
    """The packaged template is not what this step expects (chalice or template.yaml changed)."""


def finish(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of the packaged ``template`` with the course endpoint's key following the parameter."""
    template = copy.deepcopy(template)
    try:
        paths = template["Resources"][REST_API]["Properties"]["DefinitionBody"]["paths"]
        course = paths[COURSE_PATH][COURSE_METHOD]
    except (KeyError, TypeError):
        raise PackageError(f"no {COURSE_METHOD.upper()} {COURSE_PATH} in {REST_API}'s definition") from None
    if COURSE_CONDITION not in template.get("Conditions", {}):
        raise PackageError(f"the template has no {COURSE_CONDITION} condition (template.yaml)")
    if course.get("security") != API_KEY_SECURITY:
        raise PackageError(f"{COURSE_METHOD.upper()} {COURSE_PATH} does not require an API key in the package")
    # No security on the method: API Gateway lets it through without a key.
    course["security"] = {"Fn::If": [COURSE_CONDITION, {"Ref": "AWS::NoValue"}, API_KEY_SECURITY]}
    template.setdefault("Outputs", {})["ApiKeyId"] = {
        "Description": "Id of the API key SAM created (`aws apigateway get-api-key --include-value --api-key ID`).",
        "Value": {"Ref": f"{REST_API}ApiKey"},  # SAM's name for the key of Auth.UsagePlan PER_API
    }
    return template


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path, help="the packaged sam.yaml, rewritten in place")
    args = parser.parse_args(argv)
    finished = finish(load_template(args.template))
    args.template.write_text(yaml.safe_dump(finished, sort_keys=False, width=120))


if __name__ == "__main__":
    main()
