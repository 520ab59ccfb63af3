"""Expand a packaged SAM template into the CloudFormation that `sam deploy` would create.

Run with aws-sam-cli's interpreter (``.venv-sam/bin/python``: samtranslator pins its own boto3, so it
is not in the project's venv): ``sam_expand.py IN.yaml OUT.json``. Code locations are filled with
dummies, as `sam build` and `sam deploy` would fill them.
"""

import json
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class NoManagedPolicies:
    """The template names no managed policy by name; nothing to look up in IAM."""

    def load(self) -> dict:
        return {}


def main(source: str, target: str) -> None:
    with open(source) as handle:
        template = yaml_parse(handle.read())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            properties = resource["Properties"]
            if properties.get("PackageType") == "Image":
                properties["ImageUri"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/face:1"
            else:
                properties["CodeUri"] = "s3://bucket/deployment.zip"
    with open(target, "w") as handle:
        json.dump(transform(template, {}, NoManagedPolicies()), handle, indent=1, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
