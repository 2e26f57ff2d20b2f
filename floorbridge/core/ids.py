"""Typed identifiers and their syntax."""

from __future__ import annotations

import re
from typing import NewType

MeetingId = NewType("MeetingId", str)
SessionId = NewType("SessionId", str)
DeadlineId = NewType("DeadlineId", str)

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_slug(value: str) -> bool:
    """Meeting ids and track slugs: lower-case letters, digits and inner hyphens."""
    return bool(_SLUG.match(value))


def is_item_id(value: str) -> bool:
    """Session and deadline ids: they appear in URLs and iCal UIDs, so no spaces or slashes."""
    return bool(_ITEM_ID.match(value))


def slugify(text: str) -> str:
    """A URL-safe slug for a free-text name (track names become feed paths)."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:64].strip("-") or "track"
