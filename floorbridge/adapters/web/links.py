"""Absolute links to feeds, with the webcal:// form calendar apps subscribe to."""

from __future__ import annotations

from floorbridge.core.ids import slugify


def feed_path(meeting_id: str, key: str) -> str:
    if key == "all":
        return f"/ical/{meeting_id}.ics"
    return f"/ical/{meeting_id}/{key}.ics"


def webcal(url: str) -> str:
    """webcal:// for http and https alike: clients then subscribe over https where the page was https."""
    scheme, sep, rest = url.partition("://")
    return f"webcal://{rest}" if sep and scheme in ("http", "https") else url


def feed_links(public_url: str, meeting_id: str, key: str) -> dict[str, str]:
    url = public_url + feed_path(meeting_id, key)
    return {"https": url, "webcal": webcal(url)}


def track_key(track_name: str) -> str:
    return f"tracks/{slugify(track_name)}"
