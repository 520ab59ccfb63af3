"""Which local runners ``iraas up`` starts: one set per template function and event source.

The provisioner routes each such function's S3 events to a local queue (``<Function>.EventQueue``
in stack.json), and names the queue of its SQS event (``<Function>.SqsQueue``); here the function's
handler file is found from the template the way SAM builds it (an image function: the Dockerfile's
folder plus ``ImageConfig.Command``; a zip function: ``CodeUri`` plus ``Handler``).
"""

from __future__ import annotations

import os
import posixpath
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iraas.config import integer, number, usable_cores
from iraas.local.provision import event_queue_id, sqs_source_id

DEFAULT_IDLE_S = 10.0


@dataclass(frozen=True)
class LocalFunction:
    logical_id: str
    handler: str  # "<path to .py>:<function>"
    queue_url: str
    timeout_s: int
    source: str = "s3"  # "s3": S3 events through a local queue; "sqs": the template's queue of an SQS event

    @property
    def name(self) -> str:
        """What its runners, zygote and logs are called: the function, and for an SQS event ``-sqs``."""
        return self.logical_id if self.source == "s3" else f"{self.logical_id}-{self.source}"

    def zygote_options(self) -> dict[str, Any]:
        """What :func:`iraas.local.lambda_runner.preforked` needs (the zygote's ``--options``)."""
        return {
            "queue_url": self.queue_url, "handler": self.handler,
            "function_name": self.logical_id, "timeout_s": self.timeout_s, "source": self.source,
        }

    def command(self, ready_file: Path) -> list[str]:
        return [
            sys.executable, "-m", "iraas.local.lambda_runner", "--queue-url", self.queue_url,
            "--handler", self.handler, "--function-name", self.logical_id,
            "--timeout", str(self.timeout_s), "--ready-file", str(ready_file), "--source", self.source,
        ]


def handler_location(root: Path, resource: dict[str, Any]) -> str:
    """``path/to/module.py:function`` for a SAM function resource."""
    props, metadata = resource.get("Properties", {}), resource.get("Metadata", {})
    if props.get("PackageType") == "Image":
        folder = posixpath.join(metadata.get("DockerContext", "."), posixpath.dirname(metadata.get("Dockerfile", "")))
        spec = (props.get("ImageConfig", {}).get("Command") or [""])[0]
    else:
        folder, spec = str(props.get("CodeUri", ".")), str(props.get("Handler", ""))
    module, _, function = spec.rpartition(".")
    if not module or not function:
        raise ValueError(f"cannot tell the handler of {resource.get('Type')} from {spec!r}")
    return f"{(root / folder / (module.replace('.', '/') + '.py')).resolve()}:{function}"


def local_functions(template: dict[str, Any], resources: dict[str, str], root: Path) -> list[LocalFunction]:
    """The template's functions that the provisioner gave an event queue: one entry per queue."""
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        timeout = int(resource.get("Properties", {}).get("Timeout", 3))
        for source, queue in (("s3", resources.get(event_queue_id(logical_id))), ("sqs", resources.get(sqs_source_id(logical_id)))):
            if queue:
                found.append(LocalFunction(logical_id, handler_location(root, resource), queue, timeout, source))
    return found


def concurrency(env: Mapping[str, str] | None = None, cores: int | None = None) -> int:
    """The most runners per function (each is one warm Lambda instance, working on one event at a
    time): $IRAAS_LOCAL_FUNCTION_CONCURRENCY, else one per usable core (past that they would
    only share the cores)."""
    default = usable_cores() if cores is None else max(1, cores)
    return max(1, integer(os.environ if env is None else env, "IRAAS_LOCAL_FUNCTION_CONCURRENCY", default, 0, 256))


def idle_s(env: Mapping[str, str] | None = None) -> float:
    """How long the backlog must stay below the runners before the extra ones stop:
    $IRAAS_LOCAL_FUNCTION_IDLE_S (default 10 s; one runner always stays warm)."""
    return number(os.environ if env is None else env, "IRAAS_LOCAL_FUNCTION_IDLE_S", DEFAULT_IDLE_S, 0, 3600)
