"""Render the cloud-init user data that installs the web tier on a Nova server and starts it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import yaml

OPENSTACK_DIR = Path(__file__).resolve().parents[2] / "openstack"
CLOUD_CONFIG = OPENSTACK_DIR / "cloud-config.yaml"
UNIT = OPENSTACK_DIR / "iraas-web.service"
FIRST_BOOT = OPENSTACK_DIR / "first-boot.sh"
FIRST_BOOT_PATH = "/usr/local/lib/iraas/first-boot.sh"  # where the user data installs it
# Nova refuses user data over 64 KiB (base64-encoded); ours is a few KiB.
MAX_USER_DATA_BYTES = 48 * 1024
# systemd EnvironmentFile values: names, URLs, numbers and AWS keys need nothing else, and nothing
# else can break out of a line.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_.:/@%+=,~-]*")
_SAFE_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


class UserDataError(ValueError):
    """A value cannot go into the user data safely."""


@dataclass(frozen=True)
class UserData:
    """What the server needs: where the code comes from, its settings, and what it makes on first boot.

    Secrets are not part of it, except ``aws_env`` under the explicit ``--aws-credentials env``.
    """

    source_url: str
    source_ref: str
    web_env: Mapping[str, str]
    aws_env: Mapping[str, str] = field(default_factory=dict)  # empty: sent over SSH, or the operator's
    generate_api_key: bool = False  # the server makes its own IRAAS_API_KEY on first boot
    self_signed_name: str | None = None  # the server makes a self-signed certificate for this name


def env_file(values: Mapping[str, str]) -> str:
    """``NAME=value`` lines for a systemd EnvironmentFile; refuses anything that could escape."""
    lines = []
    for name, value in sorted(values.items()):
        if not _SAFE_NAME.fullmatch(name) or not _SAFE_VALUE.fullmatch(value):
            raise UserDataError(f"{name} has characters an environment file cannot carry safely")
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the rendered file reads like the template."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = all(isinstance(item, str) for item in value)  # commands and packages on one line
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)


def _fill(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return Template(node).substitute(values)  # a missing value is an error, never left as ${x}
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _fill(item, values) for key, item in node.items()}
    return node


def render_user_data(data: UserData, template: Path = CLOUD_CONFIG, unit: Path = UNIT) -> str:
    """The ``#cloud-config`` document for ``data``."""
    for label, value in (("source URL", data.source_url), ("source ref", data.source_ref)):
        if not value or value.startswith("-") or any(c.isspace() for c in value):
            raise UserDataError(f"the {label} {value!r} is empty, starts with '-' or contains spaces")
    config = yaml.safe_load(template.read_text())
    config = _fill(
        config,
        {
            "web_env": env_file(data.web_env),
            "unit": unit.read_text(),
            "first_boot": FIRST_BOOT.read_text(),
            "source_url": data.source_url,
            "source_ref": data.source_ref,
        },
    )
    # First, so the key and certificate exist before the unit is enabled, whatever else fails.
    steps: list[list[str]] = []
    if data.generate_api_key:
        steps.append([FIRST_BOOT_PATH, "api-key"])
    if data.self_signed_name:
        steps.append([FIRST_BOOT_PATH, "self-signed", data.self_signed_name])
    config["runcmd"][:0] = steps
    if data.aws_env:
        config["write_files"].insert(
            1,
            {
                "path": "/etc/iraas/aws.env",
                "owner": "root:root",
                "permissions": "0600",
                "content": env_file(data.aws_env),
            },
        )
    text = "#cloud-config\n" + yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=1000)
    if len(text.encode()) > MAX_USER_DATA_BYTES:
        raise UserDataError(f"the user data is {len(text.encode())} bytes; Nova accepts at most 64 KiB encoded")
    return text


def redact(user_data: str, secrets: Mapping[str, str]) -> str:
    """The user data with secret values replaced, for printing."""
    for name, value in secrets.items():
        if value:
            user_data = user_data.replace(f"{name}={value}", f"{name}=<redacted>")
    return user_data
