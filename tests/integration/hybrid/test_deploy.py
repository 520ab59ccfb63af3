"""iraas/hybrid/deploy.py: `iraas openstack deploy/teardown` drive openstacksdk against a recorded
Nova/Neutron/Glance conversation (requests-mock): the server spec, the security group rules, the user
data, the console log deploy trusts, and the secrets it sends over SSH (recorded, not run). Then the
health check over real HTTPS on loopback, which succeeds only against the pinned certificate, and
`import openstack` finding openstacksdk, not the repository's openstack/ folder."""

from __future__ import annotations

import base64
import datetime
import http.server
import re
import ssl
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import requests_mock
import yaml

from iraas.hybrid.deploy import DeployError, Timing, deploy, pinned_session, teardown
from iraas.hybrid.plan import DeployOptions, build_plan, certificate_fingerprint, description_for
from openstack import connection
from tests.support.openstack import API_KEYS, ENV

REPO_ROOT = Path(__file__).resolve().parents[3]
IDENTITY = "https://identity.example.com/v3"
COMPUTE = "https://compute.example.com/v2.1"
NETWORK = "https://network.example.com"
IMAGE = "https://image.example.com"
FAST = Timing(active_s=5, poll_s=0.01, health_s=0.05, health_every_s=0.01, console_s=0.05, ssh_attempts=2)
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheNewServer"
FINGERPRINT = ":".join(["A5"] * 32)
CONSOLE = f"""[   61.2] cloud-init[640]: Cloud-init v. 22.4.2 running 'modules:final'
iraas-tls-sha256: {FINGERPRINT}
-----BEGIN SSH HOST KEY KEYS-----
{HOST_KEY} root@iraas-web
-----END SSH HOST KEY KEYS-----
"""
SERVER_ID = "5e2f9a3c-0000-4000-8000-000000000001"
SG_ID = "0a1b2c3d-0000-4000-8000-000000000002"


def options(**changes) -> DeployOptions:
    values = dict(
        cloud="lab", ssh_cidr="203.0.113.0/24", source_url="https://git.example.com/iraas.git",
        source_ref="v1.2", image="debian-12", flavor="m1.small", network="private",
    )
    return DeployOptions(**{**values, **changes})


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
    # os-getConsoleOutput: cloud-init still installing, then done with the host keys and the fingerprint.
    m.post(f"{COMPUTE}/servers/{SERVER_ID}/action", [{"json": {"output": "booting\n"}}, {"json": {"output": CONSOLE}}])


class RecordedSsh:
    """Stands in for subprocess.run of ``ssh``: records each call, and the known_hosts it was given."""

    def __init__(self, failing: str | None = None, unreachable: int = 0) -> None:
        self.calls: list[tuple[list[str], bytes, str]] = []
        self.failing = failing  # a remote command that exits 1
        self.unreachable = unreachable  # how many first calls find no sshd (ssh exits 255)

    def __call__(self, argv: list[str], *, input: bytes, **kwargs) -> subprocess.CompletedProcess:
        known_hosts = next(a.split("=", 1)[1] for a in argv if a.startswith("UserKnownHostsFile="))
        self.calls.append((argv, input, Path(known_hosts).read_text()))
        if len(self.calls) <= self.unreachable:
            return subprocess.CompletedProcess(argv, 255, b"", b"ssh: connect to host 10.0.0.5 port 22: Connection refused\n")
        failed = self.failing is not None and self.failing in argv[-1]
        return subprocess.CompletedProcess(argv, 1 if failed else 0, b"", b"Job failed. See journalctl\n" if failed else b"")

    @property
    def remote(self) -> list[str]:
        return [argv[-1] for argv, _, _ in self.calls]


def bodies(m: requests_mock.Mocker, method: str, url: str) -> list[dict]:
    return [r.json() for r in m.request_history if r.method == method and r.url == url]


def test_deploy_creates_keypair_group_rules_and_a_server_that_answers_health(cloud, public_key):
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.get("https://10.0.0.5/v1/healthz", [{"status_code": 502}, {"json": {"status": "ok"}}])
    plan = build_plan(options(public_key_file=public_key), ENV)
    said: list[str] = []
    ssh = RecordedSsh()

    url = deploy(conn, plan, say=said.append, timing=FAST, run=ssh)

    assert url == "https://10.0.0.5"
    assert said[-1] == "IRaaS web tier is ready on https://10.0.0.5"
    assert f"waiting for https://10.0.0.5/v1/healthz (certificate SHA-256 {FINGERPRINT})" in said
    assert (
        "its self-signed certificate, for clients to trust: ssh debian@10.0.0.5 sudo cat /etc/iraas/tls/cert.pem > iraas-web.pem"
    ) in said
    [keypair] = bodies(m, "POST", f"{COMPUTE}/os-keypairs")
    assert keypair == {"keypair": {"name": "iraas-web-key", "public_key": public_key.read_text().strip()}}
    [group] = bodies(m, "POST", f"{NETWORK}/v2.0/security-groups")
    assert group["security_group"]["name"] == "iraas-web-sg"
    rules = [b["security_group_rule"] for b in bodies(m, "POST", f"{NETWORK}/v2.0/security-group-rules")]
    assert sorted(rules, key=lambda r: r["port_range_min"]) == [
        {"security_group_id": SG_ID, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "203.0.113.0/24"},
        {"security_group_id": SG_ID, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 443, "port_range_max": 443, "remote_ip_prefix": "0.0.0.0/0"},
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
    assert ["git", "clone", "--depth", "1", "--branch", "v1.2", "https://git.example.com/iraas.git",
            "/opt/iraas/app"] in config["runcmd"]
    # What Nova stores and serves on the metadata service carries no secret ...
    for secret in ("AKIAWEBTIER", "web/tier+secret", "k-0123456789abcdef"):
        assert secret not in user_data
    assert "/etc/iraas/aws.env" not in files and "/etc/iraas/api.env" not in files
    # ... they went over SSH, checked against the host key from the console log, on stdin only.
    assert ssh.remote == [
        "sudo sh -c 'umask 077 && mkdir -p /etc/iraas && cat > /etc/iraas/api.env.new "
        "&& mv -f /etc/iraas/api.env.new /etc/iraas/api.env'",
        "sudo sh -c 'umask 077 && mkdir -p /etc/iraas && cat > /etc/iraas/aws.env.new "
        "&& mv -f /etc/iraas/aws.env.new /etc/iraas/aws.env'",
        "sudo systemctl restart iraas-web.service",
    ]
    assert [stdin for _, stdin, _ in ssh.calls] == [
        f"IRAAS_API_KEY={API_KEYS}\n".encode(),
        b"AWS_ACCESS_KEY_ID=AKIAWEBTIER\nAWS_SECRET_ACCESS_KEY=web/tier+secret\n",
        b"",
    ]
    for argv, _, known_hosts in ssh.calls:
        assert known_hosts == f"iraas-web {HOST_KEY}\n"
        assert argv[0] == "ssh" and "debian@10.0.0.5" in argv
        assert {"StrictHostKeyChecking=yes", "HostKeyAlias=iraas-web", "BatchMode=yes"} <= set(argv)
        assert not any(secret in " ".join(argv) for secret in ("web/tier+secret", "k-0123456789abcdef"))
    # Sent only once the console showed cloud-init done, and checked for health only after that.
    history = [(r.method, r.url) for r in m.request_history]
    assert history.index(("POST", f"{COMPUTE}/servers/{SERVER_ID}/action")) < history.index(
        ("GET", "https://10.0.0.5/v1/healthz")
    )


def test_deploy_reuses_an_existing_keypair_and_never_marks_it_for_teardown(cloud):
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.get(f"{COMPUTE}/os-keypairs/ops-key", json={"keypair": {"name": "ops-key"}})
    m.get("https://10.0.0.5/v1/healthz", json={"status": "ok"})

    deploy(conn, build_plan(options(keypair="ops-key"), ENV), say=lambda _: None, timing=FAST, run=RecordedSsh())

    assert bodies(m, "POST", f"{COMPUTE}/os-keypairs") == []
    [spec] = [b["server"] for b in bodies(m, "POST", f"{COMPUTE}/servers")]
    assert spec["key_name"] == "ops-key" and spec["metadata"] == {"iraas-deployment": "iraas-web"}


def test_deploy_stops_with_a_clear_error_when_the_server_never_gets_healthy(cloud, public_key):
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.get("https://10.0.0.5/v1/healthz", status_code=503)

    with pytest.raises(DeployError, match=r"healthz did not answer 200 within"):
        deploy(conn, build_plan(options(public_key_file=public_key), ENV), say=lambda _: None, timing=FAST, run=RecordedSsh())


def test_a_server_that_never_shows_its_host_keys_gets_no_secret(cloud, public_key):
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.post(f"{COMPUTE}/servers/{SERVER_ID}/action", json={"output": "cloud-init failed\n"})
    ssh = RecordedSsh()

    with pytest.raises(DeployError, match="no SSH host keys or iraas-tls-sha256 in the console log of iraas-web"):
        deploy(conn, build_plan(options(public_key_file=public_key), ENV), say=lambda _: None, timing=FAST, run=ssh)
    assert ssh.calls == []


def test_a_unit_that_will_not_start_stops_deploy_with_the_servers_message(cloud, public_key):
    conn, m = cloud
    record_a_fresh_cloud(m)

    with pytest.raises(DeployError, match=r"ssh for restart iraas-web.service failed \(1\): Job failed"):
        deploy(conn, build_plan(options(public_key_file=public_key), ENV), say=lambda _: None, timing=FAST,
               run=RecordedSsh(failing="systemctl restart"))


def test_ssh_is_retried_while_the_server_does_not_answer_it_then_gives_up(cloud, public_key):
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.get("https://10.0.0.5/v1/healthz", json={"status": "ok"})
    plan = build_plan(options(public_key_file=public_key), ENV)

    patient = RecordedSsh(unreachable=1)
    deploy(conn, plan, say=lambda _: None, timing=FAST, run=patient)
    assert len(patient.calls) == 4 and patient.calls[0][1] == patient.calls[1][1]  # the first file, again

    with pytest.raises(DeployError, match="ssh for sent /etc/iraas/api.env failed \\(255\\): ssh: connect to host"):
        deploy(conn, plan, say=lambda _: None, timing=FAST, run=RecordedSsh(unreachable=99))


def test_a_generated_key_and_no_aws_keys_need_no_ssh_at_all(cloud, public_key):
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.get("https://10.0.0.5/v1/healthz", json={"status": "ok"})
    plan = build_plan(options(public_key_file=public_key, aws_credentials="none", api_key_source="generate"), ENV)
    said: list[str] = []
    ssh = RecordedSsh()

    deploy(conn, plan, say=said.append, timing=FAST, run=ssh)

    assert ssh.calls == []
    assert "the API key the server made: ssh debian@10.0.0.5 sudo cat /etc/iraas/api.env" in said


def test_the_operators_certificate_is_sent_and_pinned_with_no_fingerprint_from_the_console(cloud, public_key, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "iraas.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
    )
    (tmp_path / "web.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "web.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.post(f"{COMPUTE}/servers/{SERVER_ID}/action", json={"output": CONSOLE.replace("iraas-tls-sha256", "nothing")})
    m.get("https://10.0.0.5/v1/healthz", json={"status": "ok"})
    plan = build_plan(options(public_key_file=public_key, tls_cert=tmp_path / "web.crt", tls_key=tmp_path / "web.key"), ENV)
    said: list[str] = []
    ssh = RecordedSsh()

    deploy(conn, plan, say=said.append, timing=FAST, run=ssh)

    sent = dict(zip([r.split(" && mv -f ")[-1].rstrip("'").split()[-1] for r in ssh.remote[:-1]],
                    [stdin for _, stdin, _ in ssh.calls[:-1]], strict=True))
    assert sent["/etc/iraas/tls/key.pem"] == (tmp_path / "web.key").read_bytes()
    assert sent["/etc/iraas/tls/cert.pem"] == (tmp_path / "web.crt").read_bytes()
    assert f"waiting for https://10.0.0.5/v1/healthz (certificate SHA-256 {plan.tls_fingerprint})" in said
    assert not any("self-signed" in line for line in said)


def test_an_older_group_loses_its_plain_http_rule(cloud, public_key):
    conn, m = cloud
    record_a_fresh_cloud(m)
    m.get(re.compile(f"{NETWORK}/v2.0/security-groups\\?"), json={"security_groups": [{
        "id": SG_ID, "name": "iraas-web-sg", "description": description_for("iraas-web"),
        "security_group_rules": [
            {"id": "http80", "direction": "ingress", "protocol": "tcp", "port_range_min": 80,
             "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"},
            {"id": "ssh22", "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
             "port_range_max": 22, "remote_ip_prefix": "203.0.113.0/24"},
            {"id": "out", "direction": "egress", "protocol": None, "port_range_min": None,
             "port_range_max": None, "remote_ip_prefix": None},
        ],
    }]})
    m.delete(f"{NETWORK}/v2.0/security-group-rules/http80", status_code=204)
    m.get("https://10.0.0.5/v1/healthz", json={"status": "ok"})

    deploy(conn, build_plan(options(public_key_file=public_key), ENV), say=lambda _: None, timing=FAST, run=RecordedSsh())

    assert [r.url for r in m.request_history if r.method == "DELETE"] == [f"{NETWORK}/v2.0/security-group-rules/http80"]
    rules = [b["security_group_rule"] for b in bodies(m, "POST", f"{NETWORK}/v2.0/security-group-rules")]
    assert [(r["port_range_min"], r["remote_ip_prefix"]) for r in rules] == [(443, "0.0.0.0/0")]


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


# ---- the health check over HTTPS, pinned -----------------------------------------------------


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real HTTPS server with a self-signed certificate; yields its URL and the certificate's SHA-256."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = Path(tmp_path_factory.mktemp("tls"))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "iraas-web")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_port}/v1/healthz", certificate_fingerprint((folder / "cert.pem").read_text())
    finally:
        server.shutdown()
        server.server_close()


def test_the_health_check_trusts_the_pinned_certificate_and_warns_about_nothing(https_server):
    url, fingerprint = https_server
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an InsecureRequestWarning would mean nothing was checked

        assert pinned_session(fingerprint).get(url, timeout=5, verify=False).status_code == 200


def test_the_health_check_refuses_any_other_certificate(https_server):
    url, _ = https_server

    with pytest.raises(requests.exceptions.SSLError, match="[Ff]ingerprints did not match"):
        pinned_session(":".join(["00"] * 32)).get(url, timeout=5, verify=False)


# ---- openstacksdk, not the openstack/ folder -------------------------------------------------


def test_import_openstack_finds_openstacksdk_not_the_openstack_folder():
    """openstack/ is a folder of files loaded by path; it must not shadow openstacksdk."""
    assert not (REPO_ROOT / "openstack" / "__init__.py").exists()
    found = subprocess.run(
        [sys.executable, "-c", "import openstack, openstack.connection; print(openstack.__file__)"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert "site-packages" in found and not found.startswith(str(REPO_ROOT / "openstack"))
