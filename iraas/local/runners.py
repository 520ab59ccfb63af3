"""Which local runners ``iraas up`` starts: one set per template function with S3 events.

The provisioner routes each such function's S3 events to a local queue (``<Function>.EventQueue``
in stack.json); here the function's handler file is found from the template the way SAM builds it
(an image function: the Dockerfile's folder plus ``ImageConfig.Command``; a zip function:
``CodeUri`` plus ``Handler``).
"""

from __future__ import annotations

import os
import posixpath
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iraas.local.provision import event_queue_id


@dataclass(frozen=True)
class LocalFunction:
    logical_id: str
    handler: str  # "<path to .py>:<function>"
    queue_url: str
    timeout_s: int

    def command(self, ready_file: Path) -> list[str]:
        return [
            sys.executable, "-m", "iraas.local.lambda_runner", "--queue-url", self.queue_url,
            "--handler", self.handler, "--function-name", self.logical_id,
            "--timeout", str(self.timeout_s), "--ready-file", str(ready_file),
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
    """The template's functions that the provisioner gave an event queue."""
    found = []
    for logical_id, resource in template["Resources"].items():
        queue = resources.get(event_queue_id(logical_id))
        if resource.get("Type") == "AWS::Serverless::Function" and queue:
            timeout = int(resource.get("Properties", {}).get("Timeout", 3))
            found.append(LocalFunction(logical_id, handler_location(root, resource), queue, timeout))
    return found


def concurrency() -> int:
    """Runner processes per function (each is one warm Lambda instance): $IRAAS_LOCAL_FUNCTION_CONCURRENCY."""
    return max(1, int(os.environ.get("IRAAS_LOCAL_FUNCTION_CONCURRENCY", "2")))
