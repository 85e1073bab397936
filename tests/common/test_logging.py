"""Structured logging: one JSON object per line."""

from __future__ import annotations

import io
import json
import logging

from services.common import configure_logging, get_logger


def test_log_event_writes_one_json_line() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("seed", "INFO", stream=stream)
        get_logger("services.seed.test").info("offer.accepted", extra={"sequence": 3, "b": b"x"})
        get_logger("services.seed.test").debug("not.shown")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["event"] == "offer.accepted"
    assert line["service"] == "seed"
    assert line["level"] == "info"
    assert line["sequence"] == 3
    assert line["b"] == "b'x'"  # not JSON-native, written as text rather than dropped
