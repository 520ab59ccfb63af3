"""`iraas openstack deploy` and `teardown`: the web tier on a Nova server, through openstacksdk.

Everything deploy creates is marked so that teardown finds only its own: the server carries the
metadata ``iraas-deployment=<name>`` (and ``iraas-keypair`` when deploy created the keypair), the
security group and floating IP carry the same marker in their description.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from iraas.hybrid.plan import TAG, DeployPlan, description_for

KEYPAIR_TAG = "iraas-keypair"
Say = Callable[[str], None]


class DeployError(RuntimeError):
    """The cloud refused or a step timed out; the message says which and what to do."""


@dataclass(frozen=True)
class Timing:
    """Bounds on waiting (tests shorten them)."""

    active_s: float = 600.0
    poll_s: float = 5.0
    health_s: float = 900.0  # cloud-init installs packages and the app before gunicorn starts
    health_every_s: float = 10.0


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
    """Find this deployment's security group or create it; add any rule it lacks."""
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


def wait_healthy(url: str, timing: Timing, say: Say) -> None:
    """GET ``url`` until it answers 200, a bounded number of times."""
    attempts = max(1, int(timing.health_s / timing.health_every_s))
    for attempt in range(1, attempts + 1):
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if attempt < attempts:
            time.sleep(timing.health_every_s)
    raise DeployError(
        f"{url} did not answer 200 within {timing.health_s:.0f} s; the server is up, see its console "
        "log (`openstack console log show`) and `journalctl -u iraas-web` over SSH"
    )


def deploy(conn: Any, plan: DeployPlan, say: Say = print, timing: Timing = Timing()) -> str:
    """Create what the plan describes, boot the server, wait until it is healthy; return its URL."""
    o = plan.options
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
    url = f"http://{address}" + ("" if o.port == 80 else f":{o.port}")
    say(f"server {plan.server_name}: ACTIVE at {address}; waiting for {url}/v1/healthz")
    wait_healthy(f"{url}/v1/healthz", timing, say)
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
