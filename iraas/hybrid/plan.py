"""What `iraas openstack deploy` will create, worked out with no network call."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from iraas.aws import is_local_endpoint
from iraas.errors import ConfigError
from iraas.hybrid.cloudinit import UserData, env_file, redact, render_user_data
from iraas.images.settings import load_image_settings, settings_env
from iraas.web.auth import API_KEY_ENV, parse_keys

TAG = "iraas-deployment"  # server metadata key, and the marker in what deploy creates
# Settings the operator may tune for the web tier; passed on when set in their environment.
PASSED_ON = (
    "IRAAS_MAX_IMAGE_BYTES", "IRAAS_MAX_IMAGE_PIXELS", "IRAAS_MAX_WAIT_S",
    "IRAAS_WEB_PROCESSES", "IRAAS_WEB_THREADS", "IRAAS_WEB_TIMEOUT_S",
    # Completion callbacks: the secret's ARN turns them on (the AWS stack's callback function reads the
    # value and sends them); the web tier checks URLs with the same allow-list. Never the value itself.
    "IRAAS_WEBHOOK_SECRET_ARN", "IRAAS_CALLBACK_ALLOW",
)
AWS_CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
API_KEY_VAR = API_KEY_ENV  # the app's keys, comma-separated
# Where the server keeps its secrets (root, 0600); the unit reads them through systemd.
AWS_ENV_PATH = "/etc/iraas/aws.env"
API_KEY_PATH = "/etc/iraas/api.env"
TLS_CERT_PATH = "/etc/iraas/tls/cert.pem"
TLS_KEY_PATH = "/etc/iraas/tls/key.pem"
AWS_CREDENTIAL_MODES = ("ssh", "none", "env")
API_KEY_SOURCES = ("ssh", "generate")
# A server name is also the certificate's name and the SSH host key alias: a DNS label.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
NO_API_KEY = (
    f"no API key for the server: export {API_KEY_VAR}=<key>[,<key>...] (sent over SSH after boot, never in "
    "the user data), or pass --api-key-source generate to have the server make one"
)
ENV_CREDENTIALS_WARNING = (
    "WARNING: --aws-credentials env puts the AWS secret key in the user data, which Nova serves to every "
    "process on the server through the metadata service; prefer --aws-credentials ssh"
)


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
    https_cidr: str = "0.0.0.0/0"
    port: int = 443  # HTTPS; there is no plain HTTP port
    source_ref: str = "main"
    # "ssh": this shell's AWS_* sent over SSH after boot; "none": the operator provides the file;
    # "env": in the user data (an explicit, warned opt-in).
    aws_credentials: str = "ssh"
    # "ssh": this shell's IRAAS_API_KEY sent over SSH after boot; "generate": made on the server.
    api_key_source: str = "ssh"
    tls_cert: Path | None = None  # the operator's certificate and key; default: self-signed on first boot
    tls_key: Path | None = None
    ssh_user: str = "debian"  # the image's default user, who holds the keypair and sudo
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
class SecretFile:
    """A file deploy sends to the server over SSH after boot, never through the user data."""

    path: str
    content: str = field(repr=False)
    what: str  # for the plan's description: names, never values


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
    secrets: dict[str, str] = field(repr=False, default_factory=dict)  # in the user data: redacted in print
    sent: tuple[SecretFile, ...] = ()  # over SSH after boot
    tls_fingerprint: str | None = None  # the operator's certificate; None: the server's self-signed one
    ssh_identity: Path | None = None  # the private key beside --public-key, when there is one
    warnings: tuple[str, ...] = ()

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
            f"API key:        {_api_key_line(o.api_key_source)}",
            f"TLS:            {self._tls_line()}",
            "metadata:       the metadata service is blocked for the web service (IPAddressDeny in its unit)",
            *self._sent_lines(),
            f"health check:   GET https://<address>:{o.port}/v1/healthz, certificate pinned by its SHA-256",
            "",
            "user data:",
            redact(self.user_data, self.secrets),
        ]
        return "\n".join(lines)

    def _tls_line(self) -> str:
        if self.tls_fingerprint:
            return f"gunicorn on :{self.options.port} with {self.options.tls_cert} (SHA-256 {self.tls_fingerprint})"
        return f"gunicorn on :{self.options.port} with a self-signed certificate made on first boot"

    def _sent_lines(self) -> list[str]:
        if not self.sent:
            return ["after boot:     nothing to send over SSH"]
        return [
            f"after boot:     over SSH as {self.options.ssh_user}@<address>, host key checked against the console log:",
            *(f"  {f.path} (0600, root): {f.what}" for f in self.sent),
        ]


def _credentials_line(mode: str) -> str:
    if mode == "env":
        return f"IN THE USER DATA, from this shell's AWS_* variables, into {AWS_ENV_PATH} (see the warning)"
    if mode == "ssh":
        return f"this shell's AWS_* variables, sent over SSH into {AWS_ENV_PATH}"
    return f"none; provide {AWS_ENV_PATH} on the server yourself (see docs/openstack.md)"


def _api_key_line(source: str) -> str:
    if source == "generate":
        return f"made on first boot into {API_KEY_PATH}; read it with ssh (deploy prints how)"
    return f"this shell's {API_KEY_VAR}, sent over SSH into {API_KEY_PATH}"


def _check_cidr(value: str, what: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise PlanError(f"{what} {value!r} is not a CIDR (e.g. 203.0.113.0/24)") from None


def web_environment(env: Mapping[str, str], port: int) -> dict[str, str]:
    """The IRAAS_* settings the server runs with: the same contract as everywhere, read from ``env``."""
    try:
        settings = load_image_settings(env)
    except ConfigError as exc:
        raise PlanError(f"the web tier's AWS settings: {exc}") from None
    if is_local_endpoint(settings.endpoint_url):
        raise PlanError(
            f"the AWS endpoint is {settings.endpoint_url}, a local one (is `iraas up` running here?); "
            "set the IRAAS_* variables to the deployed AWS stack's resources"
        )
    web = {k: v for k, v in settings_env(settings).items() if k not in ("IRAAS_HOME", "IRAAS_MODEL_DIR")}
    web.update({k: env[k] for k in PASSED_ON if env.get(k)})
    web.pop(API_KEY_VAR, None)  # a secret: never in web.env, which travels in the user data
    web.update(IRAAS_HOME="/var/lib/iraas", IRAAS_WEB_BIND=f"0.0.0.0:{port}")
    return web


def aws_credentials(mode: str, env: Mapping[str, str]) -> dict[str, str]:
    """The operator's AWS_* variables for ``ssh`` and ``env``; none for ``none``."""
    if mode not in AWS_CREDENTIAL_MODES:
        raise PlanError(f"--aws-credentials must be one of {', '.join(AWS_CREDENTIAL_MODES)}, not {mode!r}")
    if mode == "none":
        return {}
    found = {k: env[k] for k in AWS_CREDENTIAL_VARS if env.get(k)}
    if not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= found.keys():
        raise PlanError(
            f"--aws-credentials {mode} needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in this shell "
            f"(the web tier's own IAM user); or pass --aws-credentials none and provide {AWS_ENV_PATH} on the server"
        )
    return found


def api_keys(source: str, env: Mapping[str, str]) -> str | None:
    """The IRAAS_API_KEY value to send (``ssh``), or None when the server makes its own (``generate``).

    Checked by the app's own rule (iraas/web/auth.py), so that a key deploy accepts is one the app accepts.
    """
    if source not in API_KEY_SOURCES:
        raise PlanError(f"--api-key-source must be one of {', '.join(API_KEY_SOURCES)}, not {source!r}")
    if source == "generate":
        return None
    try:
        keys = parse_keys(env.get(API_KEY_VAR, ""))
    except ConfigError as exc:  # names the key by position, never by value
        raise PlanError(str(exc)) from None
    if not keys:
        raise PlanError(NO_API_KEY)  # refuse rather than boot a server that answers anyone
    return ",".join(keys)


def certificate_fingerprint(pem: str) -> str:
    """The SHA-256 of the first certificate in ``pem``, as openssl prints it (AB:CD:...)."""
    match = _PEM_CERT.search(pem)
    if match is None:
        raise PlanError("the --tls-cert file holds no PEM certificate")
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(match.group(0))).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def tls_files(cert: Path | None, key: Path | None) -> tuple[SecretFile, ...]:
    """The operator's certificate and key, checked to load together as gunicorn will load them."""
    if cert is None and key is None:
        return ()
    if cert is None or key is None:
        raise PlanError("--tls-cert and --tls-key go together (or leave both out for a self-signed certificate)")

    def no_passphrase() -> str:
        raise PlanError(f"{key} is encrypted; gunicorn needs the key without a passphrase")

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key, password=no_passphrase)
    except OSError as exc:  # ssl.SSLError is an OSError: unreadable, not PEM, or a key of another certificate
        raise PlanError(f"--tls-cert {cert} and --tls-key {key} do not load as a certificate and its key: {exc}") from None
    return (
        SecretFile(TLS_CERT_PATH, cert.read_text(), f"the certificate {cert}"),
        SecretFile(TLS_KEY_PATH, key.read_text(), f"its private key {key}"),
    )


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


def _identity(options: DeployOptions) -> Path | None:
    """The private key beside --public-key, for SSH; otherwise ssh's own defaults and agent."""
    key = options.public_key_file
    if key is not None and key.suffix == ".pub" and key.with_suffix("").is_file():
        return key.with_suffix("")
    return None


def build_plan(options: DeployOptions, env: Mapping[str, str] | None = None) -> DeployPlan:
    """Everything deploy will do, from the options and the environment; reads only local files."""
    env = dict(os.environ if env is None else env)
    if not 1 <= options.port <= 65535:
        raise PlanError(f"--port {options.port} is not a TCP port")
    if not _NAME.fullmatch(options.name):
        raise PlanError(f"--name {options.name!r} must be letters, digits and '-' (it names the certificate too)")
    # HTTPS only: a plain HTTP port would let a client send its API key in the clear before any redirect.
    rules = (
        Rule(options.port, _check_cidr(options.https_cidr, "--https-cidr"), "HTTPS"),
        Rule(22, _check_cidr(options.ssh_cidr, "--ssh-cidr"), "SSH"),
    )
    web_env = web_environment(env, options.port)
    credentials = aws_credentials(options.aws_credentials, env)
    keys = api_keys(options.api_key_source, env)
    sent: list[SecretFile] = []
    if keys is not None:
        sent.append(SecretFile(API_KEY_PATH, env_file({API_KEY_VAR: keys}), API_KEY_VAR))
    if options.aws_credentials == "ssh":
        sent.append(SecretFile(AWS_ENV_PATH, env_file(credentials), ", ".join(credentials)))
    operator_tls = tls_files(options.tls_cert, options.tls_key)
    sent.extend(operator_tls)
    in_user_data = credentials if options.aws_credentials == "env" else {}
    user_data = render_user_data(
        UserData(
            options.source_url, options.source_ref, web_env, in_user_data,
            generate_api_key=keys is None,
            self_signed_name=None if operator_tls else options.name,
        )
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
        secrets=in_user_data,
        sent=tuple(sent),
        tls_fingerprint=certificate_fingerprint(operator_tls[0].content) if operator_tls else None,
        ssh_identity=_identity(options),
        warnings=(ENV_CREDENTIALS_WARNING,) if options.aws_credentials == "env" else (),
    )
