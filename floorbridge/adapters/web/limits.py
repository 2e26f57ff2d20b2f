"""Limits on what a request may hold, and the shared readers that enforce them with a clear error.

The whole body is capped by aiohttp (server.max_body_bytes, 413 naming the cap); each text field
by its own limit (the handlers'); what remains is what fits in a small body and is still costly
or unanswerable: JSON nested thousands deep, numbers of thousands of digits, a list of thousands
of problems, a megabyte of input echoed back in an error message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from floorbridge.core.errors import InvalidInput, Problem

MAX_DIGITS = 18  # fits a 64-bit integer column: a longer number is refused before any lookup
MAX_DEPTH = 32  # every body this API takes is at most three levels deep
MAX_PROBLEMS = 50  # an error lists at most this many problems, then says how many more there were
SHOWN = 60  # characters of a refused value repeated in an error message


def whole_number(text: str) -> int | None:
    """`text` as a non-negative integer when it is 1 to MAX_DIGITS ASCII digits, else None
    ("²" and "٣" pass str.isdigit; int() refuses the first and a 5,000-digit string alike)."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS:
        return int(text)
    return None


def shown(value: object) -> str:
    """A refused value as an error message repeats it: its repr, cut to SHOWN characters."""
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(body: str) -> Any:
    """A JSON document, or InvalidInput naming what is wrong with it (not a 500)."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise InvalidInput([Problem("body", f"is nested deeper than {MAX_DEPTH} levels")]) from None
    except ValueError as exc:  # JSONDecodeError, and integers over Python's digit limit
        raise InvalidInput([Problem("body", f"is not valid JSON ({str(exc)[:200]})")]) from None
    if _depth(data) > MAX_DEPTH:
        raise InvalidInput([Problem("body", f"is nested deeper than {MAX_DEPTH} levels")])
    return data


async def read_json(request: web.Request) -> Any:
    body = await request.read()
    charset = request.charset or "utf-8"
    try:
        text = body.decode(charset)
    except LookupError:  # a charset Python does not know was a 500
        raise InvalidInput([Problem("Content-Type", f"names the charset {shown(charset)}, which is unknown")]) from None
    except UnicodeDecodeError:
        raise InvalidInput([Problem("body", f"is not {charset} text")]) from None
    return parse_json(text)


async def read_payload(request: web.Request, *, json_only: bool = False) -> dict[str, Any]:
    """A write's fields: a JSON object (read_json's limits), or a form unless `json_only`."""
    if request.content_type == "application/json":
        data = await read_json(request)
    elif json_only:
        raise InvalidInput([Problem("body", "must be JSON (Content-Type: application/json)")])
    else:
        data = dict(await request.post())
    if not isinstance(data, dict):
        raise InvalidInput([Problem("body", "must be a JSON object")])
    return data


def capped(problems: Sequence[Problem]) -> list[Problem]:
    """At most MAX_PROBLEMS problems, the last saying how many were left out."""
    if len(problems) <= MAX_PROBLEMS:
        return list(problems)
    left = len(problems) - MAX_PROBLEMS + 1
    return [*problems[: MAX_PROBLEMS - 1], Problem("body", f"… and {left} more problems")]
