"""What `iraas openstack deploy` will create, worked out with no network call."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from iraas.aws import is_local_endpoint
from iraas.config import load_settings, settings_env
from iraas.errors import ConfigError
from iraas.hybrid.cloudinit import UserData, redact, render_user_data

TAG = "iraas-deployment"  # server metadata key, and the marker in what deploy creates
# Settings the operator may tune for the web tier; passed on when set in their environment.
PASSED_ON = (
    "IRAAS_MAX_IMAGE_BYTES", "IRAAS_MAX_IMAGE_PIXELS", "IRAAS_MAX_WAIT_S",
    "IRAAS_WEB_PROCESSES", "IRAAS_WEB_THREADS", "IRAAS_WEB_TIMEOUT_S",
)
AWS_CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def description_for(name: str) -> str:
    """The description that marks a security group or floating IP as this deployment's own."""
    return f"IRaaS web tier; {TAG}={name}"


class PlanError(ValueError):
    """The options or the environment cannot make a deployment; the message says what to fix."""


@dataclass(frozen=True)
class DeployOptions:
    cloud: str
    ssh_cidr: str
    source_url: str
    name: str = "iraas-web"
    image: str = "debian-12"
    flavor: str = "m1.small"
    network: str = "private"
    keypair: str | None = None  # an existing keypair; default: find or create "<name>-key"
    public_key_file: Path | None = None  # for a keypair deploy creates
    http_cidr: str = "0.0.0.0/0"
    port: int = 80
    source_ref: str = "main"
    aws_credentials: str = "env"  # "env": from the operator's environment; "none": provided on the server
    floating_network: str | None = None


@dataclass(frozen=True)
class Rule:
    """One ingress rule of the security group."""

    port: int
    cidr: str
    purpose: str

    @property
    def ethertype(self) -> str:
        return "IPv6" if ipaddress.ip_network(self.cidr).version == 6 else "IPv4"

    def spec(self) -> dict:
        return {
            "direction": "ingress", "ethertype": self.ethertype, "protocol": "tcp",
            "port_range_min": self.port, "port_range_max": self.port, "remote_ip_prefix": self.cidr,
        }


@dataclass(frozen=True)
class DeployPlan:
    options: DeployOptions
    keypair_name: str
    public_key: str | None  # the key for a keypair deploy may create; None: it must exist
    security_group_name: str
    security_group_description: str
    rules: tuple[Rule, ...]
    metadata: dict[str, str]
    user_data: str
    secrets: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def server_name(self) -> str:
        return self.options.name

    def describe(self) -> str:
        """The plan and the user data as text, with credentials redacted."""
        o = self.options
        keypair = f"{self.keypair_name} (find, or create from the public key)" if self.public_key else (
            f"{self.keypair_name} (must exist)"
        )
        lines = [
            f"cloud:          {o.cloud} (clouds.yaml)",
            f"server:         {self.server_name}: image {o.image}, flavor {o.flavor}, network {o.network}",
            f"keypair:        {keypair}",
            f"security group: {self.security_group_name}",
            *(f"  ingress tcp/{r.port} from {r.cidr} ({r.purpose})" for r in self.rules),
            f"floating IP:    {'from ' + o.floating_network if o.floating_network else 'none (the address on ' + o.network + ')'}",
            f"code:           {o.source_url} @ {o.source_ref}",
            f"AWS credentials: {_credentials_line(o.aws_credentials)}",
            f"health check:   GET http://<address>:{o.port}/v1/healthz",
            "",
            "user data:",
            redact(self.user_data, self.secrets),
        ]
        return "\n".join(lines)


def _credentials_line(mode: str) -> str:
    if mode == "env":
        return "copied from this shell's AWS_* variables into /etc/iraas/aws.env (0600, root)"
    return "none in the user data; provide /etc/iraas/aws.env on the server (see the README)"


def _check_cidr(value: str, what: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise PlanError(f"{what} {value!r} is not a CIDR (e.g. 203.0.113.0/24)") from None


def web_environment(env: Mapping[str, str], port: int) -> dict[str, str]:
    """The IRAAS_* settings the server runs with: the same contract as everywhere, read from ``env``."""
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        raise PlanError(f"the web tier's AWS settings: {exc}") from None
    if is_local_endpoint(settings.endpoint_url):
        raise PlanError(
            f"the AWS endpoint is {settings.endpoint_url}, a local one (is `iraas up` running here?); "
            "set the IRAAS_* variables to the deployed AWS stack's resources"
        )
    web = {k: v for k, v in settings_env(settings).items() if k not in ("IRAAS_HOME", "IRAAS_MODEL_DIR")}
    web.update({k: env[k] for k in PASSED_ON if env.get(k)})
    web.update(IRAAS_HOME="/var/lib/iraas", IRAAS_WEB_BIND=f"0.0.0.0:{port}")
    return web


def aws_credentials(mode: str, env: Mapping[str, str]) -> dict[str, str]:
    """The credentials the user data carries: none, or the operator's AWS_* variables."""
    if mode == "none":
        return {}
    if mode != "env":
        raise PlanError(f"--aws-credentials must be 'env' or 'none', not {mode!r}")
    found = {k: env[k] for k in AWS_CREDENTIAL_VARS if env.get(k)}
    if not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= found.keys():
        raise PlanError(
            "--aws-credentials env needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in this shell "
            "(the web tier's own IAM user); or pass --aws-credentials none and provide "
            "/etc/iraas/aws.env on the server"
        )
    return found


def _public_key(options: DeployOptions) -> str | None:
    if options.keypair:
        return None  # the operator's own keypair: deploy never creates or deletes it
    candidates = [options.public_key_file] if options.public_key_file else [
        Path("~/.ssh/id_ed25519.pub").expanduser(), Path("~/.ssh/id_rsa.pub").expanduser()
    ]
    for path in candidates:
        if path.is_file():
            return path.read_text().strip()
    raise PlanError(f"no public key for the keypair at {', '.join(map(str, candidates))}; pass --public-key or --keypair")


def build_plan(options: DeployOptions, env: Mapping[str, str] | None = None) -> DeployPlan:
    """Everything deploy will do, from the options and the environment; reads only local files."""
    env = dict(os.environ if env is None else env)
    if not 1 <= options.port <= 65535:
        raise PlanError(f"--port {options.port} is not a TCP port")
    rules = (
        Rule(options.port, _check_cidr(options.http_cidr, "--http-cidr"), "HTTP"),
        Rule(22, _check_cidr(options.ssh_cidr, "--ssh-cidr"), "SSH"),
    )
    secrets = aws_credentials(options.aws_credentials, env)
    user_data = render_user_data(
        UserData(options.source_url, options.source_ref, web_environment(env, options.port), secrets)
    )
    return DeployPlan(
        options=options,
        keypair_name=options.keypair or f"{options.name}-key",
        public_key=_public_key(options),
        security_group_name=f"{options.name}-sg",
        security_group_description=description_for(options.name),
        rules=rules,
        metadata={TAG: options.name},
        user_data=user_data,
        secrets=secrets,
    )
