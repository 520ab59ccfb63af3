"""Log lines with fields: ``log.info("batch done", extra={"batch_size": 8})`` prints
``... batch done batch_size=8``, so a redelivery or a slow batch can be traced with grep.

The face function logs the same way through Powertools (JSON); processes started by ``iraas`` use
this formatter.
"""

from __future__ import annotations

import json
import logging
from typing import Any

# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _value(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"=" for c in value):
        return value
    return json.dumps(value, default=str, separators=(",", ":"))


class FieldsFormatter(logging.Formatter):
    """The standard format, then each extra field as ``key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        if not fields:
            return text
        return text + " " + " ".join(f"{key}={_value(value)}" for key, value in fields.items())


def configure(level: int = logging.INFO) -> None:
    """Log to stderr with fields; quiet chatty libraries (credentials found on every start, the
    ONNX exporter's passes)."""
    handler = logging.StreamHandler()
    handler.setFormatter(FieldsFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    for name in ("botocore", "onnx_ir", "onnxscript"):
        logging.getLogger(name).setLevel(logging.WARNING)
