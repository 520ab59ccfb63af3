"""`iraas openstack deploy` and `teardown`: the web tier on a Nova server, through openstacksdk.

Everything deploy creates is marked so that teardown finds only its own: the server carries the
metadata ``iraas-deployment=<name>`` (and ``iraas-keypair`` when deploy created the keypair), the
security group and floating IP carry the same marker in their description.

Secrets never go through the user data (Nova serves it to every process on the server). After boot,
deploy reads the server's SSH host keys and its certificate's fingerprint from the console log (which
Nova serves only to the project, through its API), sends the secrets over SSH checked against those
host keys, and checks health over HTTPS pinned to that fingerprint.
"""

from __future__ import annotations

import base64
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from iraas.hybrid.plan import API_KEY_PATH, TAG, TLS_CERT_PATH, DeployPlan, SecretFile, description_for

KEYPAIR_TAG = "iraas-keypair"
Say = Callable[[str], None]
Run = Callable[..., subprocess.CompletedProcess]
# What cloud-init's keys-to-console writes after runcmd (so the install is done by then), and what
# openstack/first-boot.sh writes for a self-signed certificate.
_HOST_KEYS = re.compile(r"-----BEGIN SSH HOST KEY KEYS-----(.*?)-----END SSH HOST KEY KEYS-----", re.S)
_HOST_KEY = re.compile(r"\b((?:ssh-(?:ed25519|rsa)|ecdsa-sha2-nistp(?:256|384|521))) (AAAA[0-9A-Za-z+/]+={0,3})")
_TLS_FINGERPRINT = re.compile(r"iraas-tls-sha256: ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})")
SERVICE = "iraas-web.service"


class DeployError(RuntimeError):
    """The cloud refused or a step timed out; the message says which and what to do."""


@dataclass(frozen=True)
class Timing:
    """Bounds on waiting (tests shorten them)."""

    active_s: float = 600.0
    poll_s: float = 5.0
    health_s: float = 900.0  # cloud-init installs packages and the app before gunicorn starts
    health_every_s: float = 10.0
    console_s: float = 900.0  # the host keys reach the console once cloud-init's runcmd is done
    ssh_attempts: int = 6  # sshd may still be starting, or the floating IP still being wired
    ssh_timeout_s: float = 120.0


def connect(cloud: str) -> Any:
    """An openstacksdk connection for a clouds.yaml cloud name."""
    import openstack

    return openstack.connect(cloud=cloud)


def _lookup(finder: Callable[..., Any], name: str) -> Any:
    """The resource named ``name``, or None (openstacksdk is retiring ``ignore_missing=True``)."""
    from openstack import exceptions

    try:
        return finder(name, ignore_missing=False)
    except exceptions.NotFoundException:
        return None


def _find(finder: Callable[..., Any], kind: str, name: str) -> Any:
    found = _lookup(finder, name)
    if found is None:
        raise DeployError(f"no {kind} named {name!r} in this cloud")
    return found


def ensure_keypair(conn: Any, plan: DeployPlan, say: Say) -> bool:
    """Find the keypair, or create it from the plan's public key; True if created."""
    if _lookup(conn.compute.find_keypair, plan.keypair_name) is not None:
        say(f"keypair {plan.keypair_name}: found")
        return False
    if plan.public_key is None:
        raise DeployError(f"keypair {plan.keypair_name!r} does not exist; create it or leave out --keypair")
    conn.compute.create_keypair(name=plan.keypair_name, public_key=plan.public_key)
    say(f"keypair {plan.keypair_name}: created")
    return True


def ensure_security_group(conn: Any, plan: DeployPlan, say: Say) -> Any:
    """Find this deployment's security group or create it; make its ingress rules exactly the plan's."""
    group = _lookup(conn.network.find_security_group, plan.security_group_name)
    if group is None:
        group = conn.network.create_security_group(
            name=plan.security_group_name, description=plan.security_group_description
        )
        say(f"security group {plan.security_group_name}: created")
    elif group.description != plan.security_group_description:
        raise DeployError(
            f"a security group named {plan.security_group_name!r} exists but was not created by this "
            "deployment; choose another --name"
        )
    existing = {
        (r.get("direction"), r.get("protocol"), r.get("port_range_min"), r.get("remote_ip_prefix"))
        for r in (group.security_group_rules or [])
    }
    wanted = {("ingress", "tcp", rule.port, rule.cidr) for rule in plan.rules}
    for r in group.security_group_rules or []:
        key = (r.get("direction"), r.get("protocol"), r.get("port_range_min"), r.get("remote_ip_prefix"))
        if r.get("direction") == "ingress" and key not in wanted:
            # The group is this deployment's own: an older rule (plain HTTP on 80) must not stay open.
            conn.network.delete_security_group_rule(r["id"], ignore_missing=True)
            say(f"  rule: ingress {r.get('protocol')}/{r.get('port_range_min')} from {r.get('remote_ip_prefix')} removed")
    for rule in plan.rules:
        spec = rule.spec()
        if ("ingress", "tcp", rule.port, rule.cidr) in existing:
            continue
        conn.network.create_security_group_rule(security_group_id=group.id, **spec)
        say(f"  rule: ingress tcp/{rule.port} from {rule.cidr} ({rule.purpose})")
    return group


def server_address(server: Any, network: str) -> str:
    """The server's fixed address on ``network`` (IPv4 first)."""
    addresses = (server.addresses or {}).get(network) or [a for v in (server.addresses or {}).values() for a in v]
    addresses = sorted(addresses, key=lambda a: a.get("version", 4) != 4)
    if not addresses:
        raise DeployError(f"server {server.name} has no address on {network}")
    return addresses[0]["addr"]


def attach_floating_ip(conn: Any, plan: DeployPlan, server: Any) -> str:
    if not plan.options.floating_network:
        raise DeployError("no --floating-network to take a floating IP from")
    external = _find(conn.network.find_network, "network", plan.options.floating_network)
    port = next(iter(conn.network.ports(device_id=server.id)), None)
    if port is None:
        raise DeployError(f"server {server.name} has no port to attach a floating IP to")
    ip = conn.network.create_ip(
        floating_network_id=external.id, port_id=port.id, description=plan.security_group_description
    )
    return ip.floating_ip_address


@dataclass(frozen=True)
class ConsoleFacts:
    """What the server told the project on its console at first boot."""

    host_keys: tuple[str, ...]  # "ssh-ed25519 AAAA...", for a known_hosts file
    tls_fingerprint: str | None  # the self-signed certificate's SHA-256, AB:CD:...


def read_console(text: str) -> ConsoleFacts:
    """The host keys and certificate fingerprint in a console log; the first ones, from first boot."""
    block = _HOST_KEYS.search(text)
    keys = tuple(dict.fromkeys(f"{t} {k}" for t, k in _HOST_KEY.findall(block.group(1)))) if block else ()
    fingerprint = _TLS_FINGERPRINT.search(text)
    return ConsoleFacts(keys, fingerprint.group(1) if fingerprint else None)


def wait_console(conn: Any, server: Any, plan: DeployPlan, timing: Timing) -> ConsoleFacts:
    """Poll the console log until it has what this plan needs: host keys to send secrets, the fingerprint
    of a self-signed certificate to check health."""
    need_keys, need_fingerprint = bool(plan.sent), plan.tls_fingerprint is None
    attempts = max(1, int(timing.console_s / timing.health_every_s))
    facts = ConsoleFacts((), None)
    for attempt in range(1, attempts + 1):
        facts = read_console(str(conn.compute.get_server_console_output(server).get("output") or ""))
        if (facts.host_keys or not need_keys) and (facts.tls_fingerprint or not need_fingerprint):
            return facts
        if attempt < attempts:
            time.sleep(timing.health_every_s)
    missing = [what for what, lacking in (
        ("SSH host keys", need_keys and not facts.host_keys),
        ("iraas-tls-sha256", need_fingerprint and not facts.tls_fingerprint),
    ) if lacking]
    raise DeployError(
        f"no {' or '.join(missing)} in the console log of {plan.server_name} within {timing.console_s:.0f} s; "
        f"see `openstack console log show {plan.server_name}` (cloud-init may have failed, or this cloud keeps no console log)"
    )


def ssh_command(plan: DeployPlan, address: str, known_hosts: Path, remote: list[str]) -> list[str]:
    """``ssh`` to the server as the image's user, trusting only the host keys from its console log."""
    identity = ["-i", str(plan.ssh_identity)] if plan.ssh_identity else []
    return [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no",
        # The alias names the host in known_hosts, whatever address (fixed or floating) reaches it.
        "-o", f"HostKeyAlias={plan.server_name}",
        *identity, f"{plan.options.ssh_user}@{address}", "--", shlex.join(remote),
    ]


def _write_remote(secret: SecretFile) -> list[str]:
    """A root-only file from stdin: the secret is never on a command line, here or on the server."""
    folder = str(Path(secret.path).parent)
    new = f"{secret.path}.new"
    script = (
        f"umask 077 && mkdir -p {shlex.quote(folder)} && cat > {shlex.quote(new)} "
        f"&& mv -f {shlex.quote(new)} {shlex.quote(secret.path)}"
    )
    return ["sudo", "sh", "-c", script]


def send_secrets(
    plan: DeployPlan, address: str, host_keys: tuple[str, ...], run: Run, timing: Timing, say: Say
) -> None:
    """Send the plan's secret files over SSH, then restart the unit, which was waiting for them."""
    with tempfile.TemporaryDirectory(prefix="iraas-ssh-") as folder:
        known_hosts = Path(folder) / "known_hosts"
        known_hosts.write_text("".join(f"{plan.server_name} {key}\n" for key in host_keys))
        steps = [(_write_remote(s), s.content.encode(), f"sent {s.path}") for s in plan.sent]
        steps.append((["sudo", "systemctl", "restart", SERVICE], b"", f"restart {SERVICE}"))
        for remote, stdin, what in steps:
            _ssh(ssh_command(plan, address, known_hosts, remote), stdin, what, run, timing)
            say(f"  over SSH: {what}")


def _ssh(argv: list[str], stdin: bytes, what: str, run: Run, timing: Timing) -> None:
    for attempt in range(1, timing.ssh_attempts + 1):
        try:
            done = run(argv, input=stdin, capture_output=True, timeout=timing.ssh_timeout_s, check=False)
            code, stderr = done.returncode, done.stderr or b""
        except subprocess.TimeoutExpired:
            code, stderr = 255, f"no answer within {timing.ssh_timeout_s:.0f} s".encode()
        if code == 0:
            return
        if code != 255 or attempt == timing.ssh_attempts:  # 255: ssh itself failed (connect, host key)
            detail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            raise DeployError(
                f"ssh for {what} failed ({code}): {detail[0]}; "
                f"check --ssh-user and --ssh-cidr, and `journalctl -u {SERVICE}` on the server"
            )
        time.sleep(timing.health_every_s)


class PinnedCertificate(HTTPAdapter):
    """Trust exactly one certificate, by its SHA-256: a self-signed one, or the operator's when the
    server is reached by an address its certificate does not name. urllib3 checks the fingerprint in
    place of the chain and the name."""

    def __init__(self, fingerprint: str) -> None:
        # An empty fingerprint would leave urllib3 checking nothing at all.
        if len(fingerprint.replace(":", "")) != 64:
            raise ValueError(f"{fingerprint!r} is not a SHA-256 fingerprint")
        self.fingerprint = fingerprint
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self.fingerprint
        super().init_poolmanager(*args, **kwargs)


def pinned_session(fingerprint: str) -> requests.Session:
    """A session whose HTTPS requests succeed only against the certificate with ``fingerprint``.

    Requests are made with ``verify=False``: that turns off the chain check, which a self-signed
    certificate cannot pass; the pinned fingerprint is the check instead.
    """
    session = requests.Session()
    session.mount("https://", PinnedCertificate(fingerprint))
    return session


def wait_healthy(url: str, fingerprint: str, timing: Timing, say: Say) -> None:
    """GET ``url`` until it answers 200, a bounded number of times, trusting only ``fingerprint``."""
    attempts = max(1, int(timing.health_s / timing.health_every_s))
    session = pinned_session(fingerprint)
    for attempt in range(1, attempts + 1):
        try:
            if session.get(url, timeout=5, verify=False).status_code == 200:
                return
        except requests.RequestException:
            pass
        if attempt < attempts:
            time.sleep(timing.health_every_s)
    raise DeployError(
        f"{url} did not answer 200 within {timing.health_s:.0f} s; the server is up, see its console "
        "log (`openstack console log show`) and `journalctl -u iraas-web` over SSH"
    )


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def deploy(
    conn: Any, plan: DeployPlan, say: Say = print, timing: Timing = Timing(), run: Run = subprocess.run
) -> str:
    """Create what the plan describes, boot the server, send its secrets, wait until it is healthy;
    return its URL. ``run`` runs ``ssh`` (tests record the calls instead)."""
    o = plan.options
    if plan.sent and run is subprocess.run and shutil.which("ssh") is None:
        raise DeployError("deploy sends the secrets over SSH, and there is no `ssh` on this machine; install OpenSSH")
    if _lookup(conn.compute.find_server, plan.server_name) is not None:
        raise DeployError(f"a server named {plan.server_name!r} already exists; run teardown first")
    image = _find(conn.image.find_image, "image", o.image)
    flavor = _find(conn.compute.find_flavor, "flavor", o.flavor)
    network = _find(conn.network.find_network, "network", o.network)
    metadata = dict(plan.metadata)
    if ensure_keypair(conn, plan, say):
        metadata[KEYPAIR_TAG] = plan.keypair_name  # teardown deletes only a keypair it created
    group = ensure_security_group(conn, plan, say)
    server = conn.compute.create_server(
        name=plan.server_name,
        image_id=image.id,
        flavor_id=flavor.id,
        networks=[{"uuid": network.id}],
        key_name=plan.keypair_name,
        security_groups=[{"name": group.name}],
        user_data=base64.b64encode(plan.user_data.encode()).decode("ascii"),
        metadata=metadata,
    )
    say(f"server {plan.server_name}: booting ({server.id})")
    try:
        server = conn.compute.wait_for_server(
            server, status="ACTIVE", failures=["ERROR"], interval=timing.poll_s, wait=timing.active_s
        )
    except Exception as exc:  # noqa: BLE001 - openstacksdk raises several kinds; all mean the same here
        raise DeployError(f"server {plan.server_name} did not become ACTIVE: {exc}") from exc
    address = attach_floating_ip(conn, plan, server) if o.floating_network else server_address(server, o.network)
    url = f"https://{_url_host(address)}" + ("" if o.port == 443 else f":{o.port}")
    say(f"server {plan.server_name}: ACTIVE at {address}; waiting for cloud-init (the console log)")
    facts = wait_console(conn, server, plan, timing)
    if plan.sent:
        send_secrets(plan, address, facts.host_keys, run, timing, say)
    fingerprint = plan.tls_fingerprint or facts.tls_fingerprint or ""  # wait_console waited for one
    say(f"waiting for {url}/v1/healthz (certificate SHA-256 {fingerprint})")
    wait_healthy(f"{url}/v1/healthz", fingerprint, timing, say)
    login = f"ssh {o.ssh_user}@{address}"
    if o.api_key_source == "generate":
        say(f"the API key the server made: {login} sudo cat {API_KEY_PATH}")
    if plan.tls_fingerprint is None:
        say(f"its self-signed certificate, for clients to trust: {login} sudo cat {TLS_CERT_PATH} > {o.name}.pem")
    say(f"IRaaS web tier is ready on {url}")
    return url


def teardown(conn: Any, name: str, say: Say = print, timing: Timing = Timing()) -> int:
    """Remove what deploy created for ``name``; return how many resources were deleted."""
    marker = description_for(name)
    deleted = 0
    keypairs: set[str] = set()
    for server in conn.compute.servers(details=True, name=f"^{name}$"):
        if (server.metadata or {}).get(TAG) != name:
            continue  # same name, not ours
        if (server.metadata or {}).get(KEYPAIR_TAG):
            keypairs.add(server.metadata[KEYPAIR_TAG])
        for port in conn.network.ports(device_id=server.id):
            for ip in conn.network.ips(port_id=port.id):
                if ip.description == marker:
                    conn.network.delete_ip(ip)
                    say(f"floating IP {ip.floating_ip_address}: deleted")
                    deleted += 1
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, interval=timing.poll_s, wait=timing.active_s)
        say(f"server {server.name}: deleted ({server.id})")
        deleted += 1
    group = _lookup(conn.network.find_security_group, f"{name}-sg")
    if group is not None and group.description == marker:
        conn.network.delete_security_group(group)
        say(f"security group {group.name}: deleted")
        deleted += 1
    for keypair in sorted(keypairs):
        conn.compute.delete_keypair(keypair, ignore_missing=True)
        say(f"keypair {keypair}: deleted")
        deleted += 1
    if not deleted:
        say(f"nothing of deployment {name!r} found")
    return deleted
