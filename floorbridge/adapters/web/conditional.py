"""HTTP conditional requests (RFC 9110 section 13) and content coding choice, as pure functions."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def not_modified(
    if_none_match: str | None,
    if_modified_since: str | None,
    etags: tuple[str, ...],
    last_modified: datetime,
) -> bool:
    """Whether a GET may be answered 304.

    If-None-Match wins over If-Modified-Since when both are present, and compares weakly, as
    RFC 9110 asks for GET. `etags` lists every tag this resource has (plain and gzip variants):
    a client that cached one variant is still up to date.
    """
    if if_none_match is not None:
        wanted = if_none_match.strip()
        if wanted == "*":
            return True
        ours = {_opaque(t) for t in etags}
        return any(_opaque(t) in ours for t in wanted.split(","))
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            return False
        return last_modified.replace(microsecond=0) <= since
    return False


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when the client lists gzip (or *) without q=0."""
    if not accept_encoding:
        return False
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for p in params.split(";"):
            key, _, value = p.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False
