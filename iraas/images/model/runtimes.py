"""The inference runtimes one can choose with ``IRAAS_RUNTIME`` (stdlib only: the settings import it).

Both run the same ONNX files (int8 and float, Lite0 and Lite2) from the model folder:

- ``openvino`` (the default): Intel's OpenVINO, which reads ONNX directly. It runs the default int8
  Lite0 file faster than onnxruntime, inference alone and ``iraas classify`` end to end
  (``python -m bench.classifier``: the rows "runtimes" on the benchmarks page).
- ``onnxruntime``: Microsoft's onnxruntime, the runtime the int8 file is quantized with. With the
  float files (run in float32 by both) it was as fast or a little faster on the machine measured.

:mod:`.runtime` imports only the chosen one, so a worker without OpenVINO can still run
``IRAAS_RUNTIME=onnxruntime``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from iraas.errors import ConfigError

RUNTIMES = ("openvino", "onnxruntime")
DEFAULT_RUNTIME = "openvino"


def get_runtime(name: str) -> str:
    """``name`` if it is a runtime; :class:`ConfigError` listing the choices if not."""
    if name not in RUNTIMES:
        raise ConfigError(
            f"IRAAS_RUNTIME={name!r} is not a runtime; choose one of {', '.join(RUNTIMES)} (default {DEFAULT_RUNTIME})"
        )
    return name


def default_runtime(env: Mapping[str, str] | None = None) -> str:
    """The runtime to classify with: ``$IRAAS_RUNTIME`` (checked), else ``openvino``."""
    env = os.environ if env is None else env
    return get_runtime(env.get("IRAAS_RUNTIME") or DEFAULT_RUNTIME)
