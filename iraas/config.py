"""The settings every part shares, read from the environment and checked once at start-up.

Each part declares its own typed settings on top of these (``iraas/images/settings.py``,
``iraas/classroom/settings.py``, ``iraas/scaling/settings.py``); this module holds what they share:
where AWS is (:class:`AwsSettings`), the resources' names, the checked value parsers, and where
things are on this machine (the source checkout, the state folder, the usable cores).

Resource names come from environment variables (set by SAM/CloudFormation in AWS, by ``iraas up``
locally); any that are missing are filled from the embedded stack's ``stack.json``, so that
``chalice local`` inside ``chalice_web/`` finds a running ``iraas up`` without extra set-up.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iraas.errors import ConfigError

# Where things are in a source checkout: the files the embedded stack and the tools read.
REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yaml"
CHALICE_PROJECT = REPO_ROOT / "chalice_web"

# Logical ids in template.yaml -> environment variables that carry their physical name or URL.
RESOURCE_ENV: dict[str, str] = {
    "ImageInputBucket": "IRAAS_IMAGE_INPUT_BUCKET",
    "ImageOutputBucket": "IRAAS_IMAGE_OUTPUT_BUCKET",
    "RequestQueue": "IRAAS_REQUEST_QUEUE_URL",
    "ResponseQueue": "IRAAS_RESPONSE_QUEUE_URL",
    "RequestDeadLetterQueue": "IRAAS_DEAD_LETTER_QUEUE_URL",
    # The classroom face pipeline; optional for the image deployables (see load_face_settings).
    "VideoInputBucket": "IRAAS_VIDEO_INPUT_BUCKET",
    "VideoOutputBucket": "IRAAS_VIDEO_OUTPUT_BUCKET",
    "StudentsTable": "IRAAS_STUDENTS_TABLE",
    # Attendance across a whole lecture: its segments' queue and the table that tells the last one.
    "VideoSegmentQueue": "IRAAS_SEGMENT_QUEUE_URL",
    "AttendanceRunsTable": "IRAAS_ATTENDANCE_RUNS_TABLE",
    # Completion callbacks: the jobs the worker queues, and those that could not be delivered.
    "CallbackQueue": "IRAAS_CALLBACK_QUEUE_URL",
    "CallbackDeadLetterQueue": "IRAAS_CALLBACK_DEAD_LETTER_QUEUE_URL",
}

MIB = 1024 * 1024


@dataclass(frozen=True)
class AwsSettings:
    """Where AWS is: the part every deployable's settings share (image service, classroom, scaler)."""

    region: str
    endpoint_url: str | None  # None: AWS itself; a loopback URL: the embedded stack
    home: Path  # the embedded stack's state folder (stack.json)

    @property
    def stack_file(self) -> Path:
        return self.home / "stack.json"


def default_home(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """``$IRAAS_HOME``, else the nearest ``.iraas`` folder at or above the working directory.

    Looking upwards lets ``chalice local`` run inside ``chalice_web/`` and still find the stack
    that ``iraas up`` started from the repository root.
    """
    env = os.environ if env is None else env
    if env.get("IRAAS_HOME"):
        return Path(env["IRAAS_HOME"]).expanduser()
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".iraas" / "stack.json").is_file():
            return folder / ".iraas"
    return here / ".iraas"


def read_stack_file(path: Path) -> dict[str, Any]:
    """The embedded stack's description: endpoint, region and logical id -> physical name."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("resources", {}), dict):
        raise ConfigError(f"{path} is not a stack description")
    return data


# ---- value parsers: each names the variable and the rule in its ConfigError ----------------------


def number(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw} is outside [{lo:g}, {hi:g}]")
    return value


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def flag(env: Mapping[str, str], name: str) -> bool:
    """A yes/no setting (1/true/yes/on or 0/false/no/off, any case); unset or blank: no."""
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name}={env[name]!r} is not true or false")


def integer(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    value = number(env, name, default, lo, hi)
    if value != int(value):
        raise ConfigError(f"{name}={value} is not a whole number")
    return int(value)


def queue_prefix(env: Mapping[str, str], name: str, default: str) -> str:
    """An SQS queue name prefix: 1-48 letters, digits, '-' or '_'."""
    value = env.get(name) or default
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,48}", value):  # + 32 hex digits <= 80, SQS's longest name
        raise ConfigError(f"{name}={value!r} must be 1-48 letters, digits, '-' or '_' (an SQS name prefix)")
    return value


# ---- where AWS is ----------------------------------------------------------------------------


def load_aws(env: Mapping[str, str]) -> tuple[AwsSettings, dict[str, str]]:
    """Where AWS is, and the embedded stack's resources (logical id -> physical name), if any.

    The region and endpoint come from ``IRAAS_*``, else the running embedded stack, else the AWS
    variables; resource names are looked up by each loader through ``resource``.
    """
    home = default_home(env)
    stack = read_stack_file(home / "stack.json")
    region = (
        env.get("IRAAS_REGION")
        or stack.get("region")
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    endpoint = env.get("IRAAS_ENDPOINT_URL") or stack.get("endpoint_url") or None
    return AwsSettings(region=region, endpoint_url=endpoint, home=home), dict(stack.get("resources", {}))


def resource(env: Mapping[str, str], resources: Mapping[str, str], logical_id: str) -> str | None:
    """A resource's physical name or URL: its ``IRAAS_*`` variable, else the embedded stack's."""
    return env.get(RESOURCE_ENV[logical_id]) or resources.get(logical_id) or None


def required_resource(env: Mapping[str, str], resources: Mapping[str, str], logical_id: str, home: Path) -> str:
    """:func:`resource`, or the ConfigError that says how to provide it."""
    value = resource(env, resources, logical_id)
    if not value:
        raise missing_resource(logical_id, home)
    return value


def missing_resource(logical_id: str, home: Path) -> ConfigError:
    return ConfigError(
        f"{RESOURCE_ENV[logical_id]} is not set and no running stack at {home / 'stack.json'} "
        f"provides {logical_id}; start one with `iraas up` or set the variable to the deployed resource"
    )


def aws_env(settings: AwsSettings) -> dict[str, str]:
    """The environment that points a child process at the same AWS (and state folder)."""
    env = {"IRAAS_REGION": settings.region, "IRAAS_HOME": str(settings.home)}
    if settings.endpoint_url:
        env["IRAAS_ENDPOINT_URL"] = settings.endpoint_url
    return env


# ---- this machine ------------------------------------------------------------------------------

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may run on: its CPU affinity, lowered by a cgroup CPU quota (rounded
    up: a quota of 1.5 CPUs keeps 2 cores busy part of the time). What sizes the local fleet, the
    face runners and ``iraas classify``'s lanes."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota to honour
    return max(1, cores)
