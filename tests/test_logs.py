"""Logs never keep a secret: configured tokens and personal-feed tokens are redacted."""

from __future__ import annotations

import io
import json
import logging

from floorbridge.adapters.logs import JsonFormatter, RedactSecrets


def test_tokens_and_personal_feed_paths_are_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets(["123456:SECRET-bot-token"]))
    log = logging.getLogger("floorbridge.test-redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("GET /ical/personal/Zx9_secretTOKENvalue-abc.ics with 123456:SECRET-bot-token",
                    extra={"path": "/ical/personal/Zx9_secretTOKENvalue-abc.ics", "status": 200})
    finally:
        log.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["msg"] == "GET /ical/personal/***.ics with ***"
    assert line["path"] == "/ical/personal/***.ics" and line["status"] == 200
    assert "Zx9_secret" not in stream.getvalue() and "SECRET-bot" not in stream.getvalue()
