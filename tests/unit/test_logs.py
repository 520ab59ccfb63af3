"""iraas/logs.py: log lines carry their fields as key=value, so a request can be traced with grep."""

from __future__ import annotations

import logging

from iraas.logs import FieldsFormatter


def record(message: str, **fields: object) -> logging.LogRecord:
    rec = logging.LogRecord("iraas.images.worker", logging.INFO, __file__, 1, message, (), None)
    rec.__dict__.update(fields)
    return rec


def test_fields_follow_the_message_and_text_with_spaces_is_quoted():
    line = FieldsFormatter("%(levelname)s %(message)s").format(
        record("batch done", batch_size=8, request_id="4f3c", error="no such key", ids=["a", "b"])
    )
    assert line == 'INFO batch done batch_size=8 request_id=4f3c error="no such key" ids=["a","b"]'


def test_a_line_without_fields_is_the_plain_format():
    assert FieldsFormatter("%(message)s").format(record("worker ready")) == "worker ready"
