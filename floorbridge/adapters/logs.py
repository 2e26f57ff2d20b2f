"""Structured logging: one JSON object per line (or plain text for a terminal), secrets redacted
(in messages, fields and tracebacks alike)."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from floorbridge.core import log_context

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        for name, var in (("request_id", log_context.request_id), ("delivery_id", log_context.delivery_id)):
            current = var.get()
            if current is not None and name not in out:
                out[name] = current
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


# Paths whose last segment is a credential: a personal or slot feed's token, a one-time console
# login link. Access logs and error lines must not keep them.
_TOKEN_PATH = re.compile(r"(/ical/(?:personal|slot)/|/console/login/)[^/.\s\"'?#&<>]+")
# The Telegram Bot API takes the bot's token in the path (/bot<id>:<secret>/method): redacted even
# when it is not a configured secret (a test's, another bot's).
_BOT_TOKEN = re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+")
# Matrix and other HTTP APIs may take an access token in the query string. (The lookahead on the
# names' first letters changes no match: it lets the search skip other positions fast, in half the
# time.)
_QUERY_TOKEN = re.compile(r"(?=[atsp])((?:access_token|token|secret|password)=)[^&\s\"'<>]+", re.IGNORECASE)
# A database error's message lists the statement's bound values (a feed token, a chat's text).
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\\n|\n|\"|$)", re.DOTALL)
# Loggers that write every bound value of every statement: SQLAlchemy's echo (database.echo) and
# aiosqlite's debug lines. Their statements are kept, their values are not.
_SQL_ECHO = "sqlalchemy.engine"
_PER_STATEMENT = ("aiosqlite",)
# Each pattern in the order applied, after a literal that every match of it holds: a line without
# the literal skips the search (every access line is redacted, and the case-insensitive query
# pattern alone costs more than all the rest).
_PATTERNS = (
    ("/", _TOKEN_PATH, r"\1***"),
    ("/bot", _BOT_TOKEN, r"\1***"),
    ("[parameters: ", _SQL_PARAMETERS, "[parameters: ***]"),
    ("=", _QUERY_TOKEN, r"\1***"),
)


class Redactor:
    """Replaces every configured secret (as written and as JSON escapes it) and every credential
    in a URL path or query by ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            if len(secret) >= 4:
                values.add(secret)
                values.add(json.dumps(secret, ensure_ascii=False)[1:-1])
                values.add(json.dumps(secret)[1:-1])
        self.secrets = sorted(values, key=len, reverse=True)  # a longer secret before one it contains

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        for literal, pattern, replacement in _PATTERNS:
            if literal in text:
                text = pattern.sub(replacement, text)
        return text


class RedactSecrets(logging.Filter):
    """Redacts a record's message and its extra fields (the access log's, a request's path) before
    any handler sees them. The handler configure_logging installs also redacts the whole formatted
    line, tracebacks included: an exception's message may quote a token (python-telegram-bot's
    InvalidToken does)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_SQL_ECHO) and record.msg == "[%s] %r" and isinstance(record.args, tuple):
            record.args = (record.args[0], "[parameters not logged]")
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str):
                clean = self._redact(value)
                if clean != value:
                    setattr(record, key, clean)
        return True


class RedactingHandler(logging.StreamHandler[Any]):
    """Writes each formatted line (message, fields, traceback, stack) with its secrets redacted."""

    def __init__(self, stream: Any, secrets: Iterable[str]) -> None:
        super().__init__(stream)
        self._redact = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


def configure_logging(level: str = "INFO", fmt: str = "json", secrets: Iterable[str] = ()) -> None:
    secrets = list(secrets)
    handler = RedactingHandler(sys.stderr, secrets)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _PER_STATEMENT:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    # With echo on, SQLAlchemy gives its logger a handler of its own on stdout unless it has one:
    # this one passes every line on to the redacting handler above.
    echo = logging.getLogger(_SQL_ECHO + ".Engine")
    if not any(isinstance(h, logging.NullHandler) for h in echo.handlers):
        echo.addHandler(logging.NullHandler())
    # An exception nobody caught is written through the same handler, not as a bare traceback.
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("floorbridge").critical("uncaught exception", exc_info=(kind, value, tb))
