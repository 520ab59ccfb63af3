"""iraas/scaling/ec2.py: the EC2 fleet and the scheduled scaler against moto's EC2, SQS and S3."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import boto3
import pytest
from chalice.test import Client

from iraas import aws
from iraas.local.template import load_template
from iraas.scaling.ec2 import FLEET_TAG, Ec2Fleet
from tests.support.iam import allows, resolved_statements

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def ec2(stack):
    return boto3.client("ec2", region_name="us-east-1")


@pytest.fixture
def launch_template(ec2) -> str:
    """A launch template as template.yaml's WorkerLaunchTemplate defines it (user data and tags)."""
    data = load_template(REPO_ROOT / "template.yaml")["Resources"]["WorkerLaunchTemplate"]["Properties"]
    user_data = data["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    response = ec2.create_launch_template(
        LaunchTemplateName="iraas-workers",
        LaunchTemplateData={
            "ImageId": image,
            "InstanceType": "c7i.large",
            "UserData": base64.b64encode(user_data.encode()).decode(),
            "InstanceInitiatedShutdownBehavior": "terminate",
        },
    )
    return response["LaunchTemplate"]["LaunchTemplateId"]


def scheduled_event(client: Client) -> dict:
    return client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )


def instances(ec2, state: str = "running") -> list[dict]:
    found = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": [state]}])
    return [i for r in found["Reservations"] for i in r["Instances"]]


def tags(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def test_the_fleet_launches_tagged_workers_from_the_launch_template(ec2, launch_template):
    fleet = Ec2Fleet(ec2, launch_template, "iraas-test")

    ids = fleet.launch(3)

    assert len(ids) == 3 and sorted(m.id for m in fleet.members()) == sorted(ids)
    for instance in instances(ec2):
        assert tags(instance)[FLEET_TAG] == "iraas-test"
        attribute = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
        script = base64.b64decode(attribute["UserData"]["Value"]).decode()
        # The same entry point as `iraas up`'s local workers: the unit runs `iraas worker`.
        assert "systemctl enable --now iraas-worker.service" in script
        assert "IRAAS_WORKER_ID=$INSTANCE_ID" in script


def test_the_fleet_never_touches_instances_it_did_not_launch(ec2, launch_template):
    image = ec2.describe_images()["Images"][0]["ImageId"]
    stranger = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    other_fleet = Ec2Fleet(ec2, launch_template, "someone-else").launch(1)[0]
    fleet = Ec2Fleet(ec2, launch_template, "iraas-test")
    [ours] = fleet.launch(1)

    assert [m.id for m in fleet.members()] == [ours]
    fleet.stop([stranger, other_fleet, ours])

    running = {i["InstanceId"] for i in instances(ec2)}
    assert stranger in running and other_fleet in running and ours not in running


def test_the_scheduled_scaler_launches_one_worker_per_four_queued_requests(
    stack, ec2, launch_template, web_app, monkeypatch
):
    monkeypatch.setenv("IRAAS_LAUNCH_TEMPLATE_ID", launch_template)
    monkeypatch.setenv("IRAAS_FLEET_NAME", "iraas-test")
    sqs = aws.client(stack, "sqs")
    for n in range(10):
        sqs.send_message(QueueUrl=stack.request_queue_url, MessageBody=f"request {n}")

    with Client(web_app.app) as client:
        result = client.lambda_.invoke("scale", scheduled_event(client))

    assert result.payload["desired"] == 3 and result.payload["ticks"] >= 1
    assert len([i for i in instances(ec2) if tags(i).get(FLEET_TAG) == "iraas-test"]) == 3
    status = aws.client(stack, "s3").get_object(Bucket=stack.image_output_bucket, Key="status/fleet.json")
    assert json.loads(status["Body"].read())["desired"] == 3


def test_the_scheduled_scaler_explains_a_stack_without_a_fleet(stack, web_app, monkeypatch):
    monkeypatch.delenv("IRAAS_LAUNCH_TEMPLATE_ID", raising=False)
    with Client(web_app.app) as client:
        result = client.lambda_.invoke("scale", scheduled_event(client))

    assert result.payload["ticks"] == 0 and "WorkerAmiId" in result.payload["skipped"]



def test_what_the_fleet_asks_of_ec2_is_what_the_scalers_role_allows(ec2, launch_template):
    """Every EC2 call of a launch and a stop, checked against ScaleRole's conditions."""
    template = load_template(REPO_ROOT / "template.yaml")
    calls: list[tuple[str, dict]] = []
    ec2.meta.events.register("provide-client-params.ec2.*", lambda params, model, **_: calls.append((model.name, params)))
    fleet = Ec2Fleet(ec2, launch_template, "iraas-test")
    ids = fleet.launch(2)
    fleet.stop(ids)

    data = ec2.describe_launch_template_versions(LaunchTemplateId=launch_template)["LaunchTemplateVersions"][0][
        "LaunchTemplateData"
    ]
    role = resolved_statements(
        template, "ScaleRole", stack_name="iraas-test", parameters={"WorkerAmiId": data["ImageId"]},
        physical={"WorkerLaunchTemplate": launch_template},
        attributes={"WorkerRole": {"Arn": "arn:aws:iam::123456789012:role/worker"}},
    )
    arn = "arn:aws:ec2:us-east-1:123456789012"
    [launch] = [params for name, params in calls if name == "RunInstances"]
    # Nothing the template sets is overridden, so its instance type, AMI, user data and network apply.
    assert set(launch) - {"ClientToken"} == {"LaunchTemplate", "MinCount", "MaxCount", "TagSpecifications"}
    assert launch["MinCount"] == launch["MaxCount"] == 2
    assert data["InstanceType"] == template["Parameters"]["WorkerInstanceType"]["Default"]
    [spec] = launch["TagSpecifications"]
    assert spec["ResourceType"] == "instance"
    request_tags = {t["Key"]: t["Value"] for t in spec["Tags"]}
    from_template = {"ec2:LaunchTemplate": f"{arn}:launch-template/{launch_template}"}
    instance = {
        **from_template, "ec2:InstanceType": data["InstanceType"], "aws:TagKeys": list(request_tags),
        **{f"aws:RequestTag/{k}": v for k, v in request_tags.items()},
    }
    on_launch = {**instance, "ec2:CreateAction": "RunInstances"}
    for instance_id in ids:
        assert allows(role, "ec2:RunInstances", f"{arn}:instance/{instance_id}", instance)
        assert allows(role, "ec2:CreateTags", f"{arn}:instance/{instance_id}", on_launch)
    used = [f"{arn}:launch-template/{launch_template}", f"arn:aws:ec2:us-east-1::image/{data['ImageId']}",
            f"{arn}:security-group/<WorkerSecurityGroup.GroupId>", f"{arn}:subnet/subnet-1",
            f"{arn}:network-interface/eni-1", f"{arn}:volume/vol-1"]
    for resource in used:
        assert allows(role, "ec2:RunInstances", resource, from_template), resource
    worker_role = "arn:aws:iam::123456789012:role/worker"
    assert allows(role, "iam:PassRole", worker_role, {"iam:PassedToService": "ec2.amazonaws.com"})

    # What the same role refuses: another type, another template, untagged, other tags, tags later.
    other_template = {"ec2:LaunchTemplate": f"{arn}:launch-template/lt-other"}
    assert not allows(role, "ec2:RunInstances", f"{arn}:instance/i-1", {**instance, "ec2:InstanceType": "p5.48xlarge"})
    assert not allows(role, "ec2:RunInstances", f"{arn}:instance/i-1", {**instance, **other_template})
    assert not allows(role, "ec2:RunInstances", "arn:aws:ec2:us-east-1::image/ami-other", other_template)
    assert not allows(role, "ec2:RunInstances", f"{arn}:instance/i-1", {**from_template, "ec2:InstanceType": "c7i.large"})
    extra_tag = {**on_launch, "aws:TagKeys": [*request_tags, "owner"]}
    assert not allows(role, "ec2:CreateTags", f"{arn}:instance/i-1", extra_tag)
    assert not allows(role, "ec2:CreateTags", f"{arn}:instance/i-1", instance)  # not part of a launch
    assert not allows(role, "iam:PassRole", worker_role, {"iam:PassedToService": "lambda.amazonaws.com"})

    [terminate] = [params for name, params in calls if name == "TerminateInstances"]
    assert sorted(terminate["InstanceIds"]) == sorted(ids)
    for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for found in reservation["Instances"]:
            resource_tags = {f"ec2:ResourceTag/{k}": v for k, v in tags(found).items()}
            assert allows(role, "ec2:TerminateInstances", f"{arn}:instance/{found['InstanceId']}", resource_tags)
    assert not allows(role, "ec2:TerminateInstances", f"{arn}:instance/i-1", {"ec2:ResourceTag/iraas:fleet": "other"})
