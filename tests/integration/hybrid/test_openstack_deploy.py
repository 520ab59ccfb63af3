"""`iraas openstack deploy/teardown` drive openstacksdk against a recorded Nova/Neutron/Glance
conversation (requests-mock): the server spec, the security group rules and the user data."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import requests_mock
import yaml

from iraas.hybrid.deploy import DeployError, Timing, deploy, teardown
from iraas.hybrid.plan import DeployOptions, build_plan, description_for
from openstack import connection

IDENTITY = "https://identity.example.com/v3"
COMPUTE = "https://compute.example.com/v2.1"
NETWORK = "https://network.example.com"
IMAGE = "https://image.example.com"
FAST = Timing(active_s=5, poll_s=0.01, health_s=0.05, health_every_s=0.01)
ENV = {
    "IRAAS_HOME": "/nonexistent/iraas-home",
    "IRAAS_REGION": "eu-west-1",
    "IRAAS_IMAGE_INPUT_BUCKET": "iraas-input",
    "IRAAS_IMAGE_OUTPUT_BUCKET": "iraas-output",
    "IRAAS_REQUEST_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/iraas-requests",
    "IRAAS_RESPONSE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/iraas-responses",
    "AWS_ACCESS_KEY_ID": "AKIAWEBTIER",
    "AWS_SECRET_ACCESS_KEY": "web/tier+secret",
}
SERVER_ID = "5e2f9a3c-0000-4000-8000-000000000001"
SG_ID = "0a1b2c3d-0000-4000-8000-000000000002"


def endpoint(kind: str, url: str) -> dict:
    return {"type": kind, "name": kind, "endpoints": [
        {"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": url}
    ]}


def token() -> dict:
    return {"token": {
        "catalog": [endpoint("compute", COMPUTE), endpoint("network", NETWORK), endpoint("image", IMAGE)],
        "project": {"id": "p1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
        "user": {"id": "u1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
        "expires_at": "2099-01-01T00:00:00Z", "issued_at": "2024-01-01T00:00:00Z",
        "methods": ["password"], "roles": [],
    }}


def server(status: str) -> dict:
    return {"server": {
        "id": SERVER_ID, "name": "iraas-web", "status": status,
        "addresses": {"private": [{"addr": "fd00::5", "version": 6}, {"addr": "10.0.0.5", "version": 4}]},
        "metadata": {"iraas-deployment": "iraas-web", "iraas-keypair": "iraas-web-key"},
        "flavor": {"id": "f1"}, "image": {"id": "i1"},
    }}


@pytest.fixture
def cloud():
    """A keystone token with a catalog, each service's version document, then the resources."""
    with requests_mock.Mocker() as m:
        m.post(f"{IDENTITY}/auth/tokens", json=token(), headers={"X-Subject-Token": "tok"}, status_code=201)
        m.get(COMPUTE, json={"version": {
            "id": "v2.1", "status": "CURRENT", "min_version": "2.1", "version": "2.90",
            "links": [{"href": f"{COMPUTE}/", "rel": "self"}],
        }})
        m.get(NETWORK, json={"versions": [
            {"id": "v2.0", "status": "CURRENT", "links": [{"href": f"{NETWORK}/v2.0/", "rel": "self"}]}
        ]})
        m.get(IMAGE, json={"versions": [
            {"id": "v2.16", "status": "CURRENT", "links": [{"href": f"{IMAGE}/v2/", "rel": "self"}]}
        ]})
        conn = connection.Connection(
            auth_type="v3password",
            auth={"auth_url": IDENTITY, "username": "demo", "password": "pw", "project_name": "demo",
                  "user_domain_id": "default", "project_domain_id": "default"},
            region_name="RegionOne",
        )
        yield conn, m


def options(**changes) -> DeployOptions:
    values = dict(
        cloud="lab", ssh_cidr="203.0.113.0/24", source_url="https://git.example.com/iraas.git",
        source_ref="v1.2", image="debian-12", flavor="m1.small", network="private",
    )
    return DeployOptions(**{**values, **changes})


@pytest.fixture
def public_key(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519.pub"
    path.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKey operator@lab\n")
    return path


def record_a_fresh_cloud(m: requests_mock.Mocker) -> None:
    """Nothing of this deployment exists yet; image, flavor and network do."""
    none = re.compile
    m.get(none(f"{COMPUTE}/servers/iraas-web$"), status_code=404)
    m.get(none(f"{COMPUTE}/servers/detail"), json={"servers": []})
    m.get(none(f"{IMAGE}/v2/images/debian-12$"), status_code=404)
    m.get(none(f"{IMAGE}/v2/images\\?"), json={"images": [{"id": "i1", "name": "debian-12"}]})
    m.get(none(f"{COMPUTE}/flavors/m1.small$"), status_code=404)
    m.get(none(f"{COMPUTE}/flavors/detail"), json={"flavors": [{"id": "f1", "name": "m1.small"}]})
    m.get(none(f"{COMPUTE}/flavors\\?"), json={"flavors": [{"id": "f1", "name": "m1.small"}]})
    m.get(none(f"{NETWORK}/v2.0/networks/private$"), status_code=404)
    m.get(none(f"{NETWORK}/v2.0/networks\\?"), json={"networks": [{"id": "n1", "name": "private"}]})
    m.get(none(f"{COMPUTE}/os-keypairs/iraas-web-key$"), status_code=404)
    m.get(f"{COMPUTE}/os-keypairs", json={"keypairs": []})
    m.post(f"{COMPUTE}/os-keypairs", json={"keypair": {"name": "iraas-web-key"}})
    m.get(none(f"{NETWORK}/v2.0/security-groups/iraas-web-sg$"), status_code=404)
    m.get(none(f"{NETWORK}/v2.0/security-groups\\?"), json={"security_groups": []})
    m.post(f"{NETWORK}/v2.0/security-groups", json={"security_group": {
        "id": SG_ID, "name": "iraas-web-sg", "description": description_for("iraas-web"),
        "security_group_rules": [],
    }})
    m.post(f"{NETWORK}/v2.0/security-group-rules", json={"security_group_rule": {"id": "r"}})
    m.post(f"{COMPUTE}/servers", json=server("BUILD"), status_code=202)
    m.get(f"{COMPUTE}/servers/{SERVER_ID}", [{"json": server("BUILD")}, {"json": server("ACTIVE")}])


def bodies(m: requests_mock.Mocker, method: str, url: str) -> list[dict]:
    return [r.json() for r in m.request_history if r.method == method and r.url == url]


def test_deploy_creates_keypair_group_rules_and_a_server_that_answers_health(cloud, public_key):
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.get("http://10.0.0.5/v1/healthz", [{"status_code": 502}, {"json": {"status": "ok"}}])
    plan = build_plan(options(public_key_file=public_key), ENV)
    said: list[str] = []

    url = deploy(conn, plan, say=said.append, timing=FAST)

    assert url == "http://10.0.0.5"
    assert said[-1] == "IRaaS web tier is ready on http://10.0.0.5"
    [keypair] = bodies(m, "POST", f"{COMPUTE}/os-keypairs")
    assert keypair == {"keypair": {"name": "iraas-web-key", "public_key": public_key.read_text().strip()}}
    [group] = bodies(m, "POST", f"{NETWORK}/v2.0/security-groups")
    assert group["security_group"]["name"] == "iraas-web-sg"
    rules = [b["security_group_rule"] for b in bodies(m, "POST", f"{NETWORK}/v2.0/security-group-rules")]
    assert sorted(rules, key=lambda r: r["port_range_min"]) == [
        {"security_group_id": SG_ID, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "203.0.113.0/24"},
        {"security_group_id": SG_ID, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"},
    ]
    [spec] = [b["server"] for b in bodies(m, "POST", f"{COMPUTE}/servers")]
    user_data = base64.b64decode(spec.pop("user_data")).decode()
    assert spec == {
        "name": "iraas-web", "imageRef": "i1", "flavorRef": "f1", "networks": [{"uuid": "n1"}],
        "key_name": "iraas-web-key", "security_groups": [{"name": "iraas-web-sg"}],
        "metadata": {"iraas-deployment": "iraas-web", "iraas-keypair": "iraas-web-key"},
    }
    assert user_data == plan.user_data
    config = yaml.safe_load(user_data)
    files = {f["path"]: f for f in config["write_files"]}
    assert "IRAAS_REQUEST_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/iraas-requests" in (
        files["/etc/iraas/web.env"]["content"].splitlines()
    )
    assert files["/etc/iraas/aws.env"]["permissions"] == "0600"
    assert "AWS_SECRET_ACCESS_KEY=web/tier+secret" in files["/etc/iraas/aws.env"]["content"]
    assert ["git", "clone", "--depth", "1", "--branch", "v1.2", "https://git.example.com/iraas.git",
            "/opt/iraas/app"] in config["runcmd"]


def test_deploy_reuses_an_existing_keypair_and_never_marks_it_for_teardown(cloud):
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.get(f"{COMPUTE}/os-keypairs/ops-key", json={"keypair": {"name": "ops-key"}})
    m.get("http://10.0.0.5/v1/healthz", json={"status": "ok"})

    deploy(conn, build_plan(options(keypair="ops-key"), ENV), say=lambda _: None, timing=FAST)

    assert bodies(m, "POST", f"{COMPUTE}/os-keypairs") == []
    [spec] = [b["server"] for b in bodies(m, "POST", f"{COMPUTE}/servers")]
    assert spec["key_name"] == "ops-key" and spec["metadata"] == {"iraas-deployment": "iraas-web"}


def test_deploy_stops_with_a_clear_error_when_the_server_never_gets_healthy(cloud, public_key):
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.get("http://10.0.0.5/v1/healthz", status_code=503)

    with pytest.raises(DeployError, match=r"healthz did not answer 200 within"):
        deploy(conn, build_plan(options(public_key_file=public_key), ENV), say=lambda _: None, timing=FAST)


def test_deploy_names_a_missing_flavor(cloud, public_key):
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.get(re.compile(f"{COMPUTE}/flavors/detail"), json={"flavors": []})
    m.get(re.compile(f"{COMPUTE}/flavors\\?"), json={"flavors": []})

    with pytest.raises(DeployError, match="no flavor named 'm1.small'"):
        deploy(conn, build_plan(options(public_key_file=public_key), ENV), say=lambda _: None, timing=FAST)
    assert bodies(m, "POST", f"{COMPUTE}/servers") == []


def test_teardown_removes_only_what_deploy_created(cloud):
    conn, m = cloud
    ours = server("ACTIVE")["server"]
    theirs = {**ours, "id": "other", "metadata": {}}
    m.get(re.compile(f"{COMPUTE}/servers/detail"), json={"servers": [ours, theirs]})
    m.get(re.compile(f"{NETWORK}/v2.0/ports\\?"), json={"ports": [{"id": "port1", "device_id": SERVER_ID}]})
    m.get(re.compile(f"{NETWORK}/v2.0/floatingips\\?"), json={"floatingips": [
        {"id": "fip1", "floating_ip_address": "198.51.100.7", "description": description_for("iraas-web")},
        {"id": "fip2", "floating_ip_address": "198.51.100.8", "description": "someone else's"},
    ]})
    m.delete(f"{NETWORK}/v2.0/floatingips/fip1", status_code=204)
    m.delete(f"{COMPUTE}/servers/{SERVER_ID}", status_code=204)
    m.get(f"{COMPUTE}/servers/{SERVER_ID}", status_code=404)
    m.get(f"{NETWORK}/v2.0/security-groups/iraas-web-sg", status_code=404)
    m.get(re.compile(f"{NETWORK}/v2.0/security-groups\\?"), json={"security_groups": [
        {"id": SG_ID, "name": "iraas-web-sg", "description": description_for("iraas-web")}
    ]})
    m.delete(f"{NETWORK}/v2.0/security-groups/{SG_ID}", status_code=204)
    m.delete(f"{COMPUTE}/os-keypairs/iraas-web-key", status_code=202)

    deleted = teardown(conn, "iraas-web", say=lambda _: None, timing=FAST)

    assert deleted == 4
    deletes = [r.url for r in m.request_history if r.method == "DELETE"]
    assert deletes == [
        f"{NETWORK}/v2.0/floatingips/fip1",
        f"{COMPUTE}/servers/{SERVER_ID}",
        f"{NETWORK}/v2.0/security-groups/{SG_ID}",
        f"{COMPUTE}/os-keypairs/iraas-web-key",
    ]
