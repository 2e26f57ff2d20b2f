"""Read-only JSON API under /api/v1 (described by openapi.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from floorbridge.core import codec
from floorbridge.core.errors import InvalidInput, NotFound, Problem
from floorbridge.core.ids import slugify
from floorbridge.core.versions import AgendaVersion

from .keys import OPTIONS, SNAPSHOTS
from .limits import shown, whole_number
from .links import feed_links
from .openapi import openapi_document
from .snapshot import MeetingSnapshot


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    number = whole_number(raw)
    if not number:
        raise InvalidInput([Problem(f"query parameter {name!r}", f"{shown(raw)} is not a positive whole number")])
    return number


def _snapshot(request: web.Request) -> MeetingSnapshot:
    return request.app[SNAPSHOTS].get(request.match_info["meeting"])


async def _version(request: web.Request, snap: MeetingSnapshot, number: int | None) -> AgendaVersion:
    if snap.version is None:
        raise NotFound(f"meeting {snap.meeting.id!r} has no published agenda yet")
    if number is None or number == snap.version.number:
        return snap.version
    if number > snap.version.number:
        raise NotFound(f"meeting {snap.meeting.id!r} has no version {number} (latest is {snap.version.number})")
    return await request.app[SNAPSHOTS].store.get_version(snap.meeting.id, number)


def _meeting_json(request: web.Request, snap: MeetingSnapshot) -> dict[str, Any]:
    public = request.app[OPTIONS].public_url
    m = snap.meeting
    feeds: dict[str, Any] = {key: feed_links(public, m.id, key) for key in sorted(snap.feeds)}
    return {
        **codec.meeting_to_dict(m),
        "latest_version": snap.version.number if snap.version else None,
        "feeds": feeds,
    }


async def list_meetings(request: web.Request) -> web.Response:
    snaps = sorted(request.app[SNAPSHOTS].meetings.values(), key=lambda s: s.meeting.start_date, reverse=True)
    return web.json_response({"meetings": [_meeting_json(request, s) for s in snaps]})


async def get_meeting(request: web.Request) -> web.Response:
    return web.json_response(_meeting_json(request, _snapshot(request)))


async def list_sessions(request: web.Request) -> web.Response:
    snap = _snapshot(request)
    version = await _version(request, snap, _int_param(request, "version"))
    track = request.query.get("track")
    sessions = [
        codec.published_to_dict(p)
        for p in version.sessions
        if track is None or slugify(p.session.track) == track or p.session.track == track
    ]
    return web.json_response({"meeting": snap.meeting.id, "version": version.number, "sessions": sessions})


async def get_session(request: web.Request) -> web.Response:
    snap = _snapshot(request)
    version = await _version(request, snap, _int_param(request, "version"))
    found = version.session(request.match_info["session"])
    if found is None:
        raise NotFound(f"meeting {snap.meeting.id!r} has no session {request.match_info['session']!r}")
    return web.json_response({"version": version.number, **codec.published_to_dict(found)})


async def list_deadlines(request: web.Request) -> web.Response:
    snap = _snapshot(request)
    version = await _version(request, snap, _int_param(request, "version"))
    return web.json_response(
        {
            "meeting": snap.meeting.id,
            "version": version.number,
            "deadlines": [codec.deadline_to_dict(d) for d in version.deadlines],
            "feed": feed_links(request.app[OPTIONS].public_url, snap.meeting.id, "deadlines"),
        }
    )


async def list_versions(request: web.Request) -> web.Response:
    snap = _snapshot(request)
    return web.json_response(
        {
            "meeting": snap.meeting.id,
            "versions": [
                {
                    "number": v.number,
                    "published_at": v.published_at.isoformat(),
                    "comment": v.comment,
                    "change_count": v.change_count,
                }
                for v in snap.versions
            ],
        }
    )


def _version_number(request: web.Request) -> int:
    raw = request.match_info["number"]
    number = whole_number(raw)
    if not number:
        raise InvalidInput([Problem("path", f"version {shown(raw)} is not a positive whole number")])
    return number


async def get_version(request: web.Request) -> web.Response:
    snap = _snapshot(request)
    version = await _version(request, snap, _version_number(request))
    return web.json_response(
        {
            "meeting": snap.meeting.id,
            "number": version.number,
            "published_at": version.published_at.isoformat(),
            "comment": version.comment,
            "session_count": len(version.sessions),
            "changelog": codec.changeset_to_dict(version.changes),
        }
    )


async def get_changelog(request: web.Request) -> web.Response:
    snap = _snapshot(request)
    version = await _version(request, snap, _version_number(request))
    return web.json_response(codec.changeset_to_dict(version.changes))


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[OPTIONS].public_url))


def add_routes(app: web.Application) -> None:
    r = app.router
    base = "/api/v1"
    r.add_get(f"{base}/openapi.json", openapi)
    r.add_get(f"{base}/meetings", list_meetings)
    r.add_get(base + "/meetings/{meeting}", get_meeting)
    r.add_get(base + "/meetings/{meeting}/sessions", list_sessions)
    r.add_get(base + "/meetings/{meeting}/sessions/{session}", get_session)
    r.add_get(base + "/meetings/{meeting}/deadlines", list_deadlines)
    r.add_get(base + "/meetings/{meeting}/versions", list_versions)
    r.add_get(base + "/meetings/{meeting}/versions/{number}", get_version)
    r.add_get(base + "/meetings/{meeting}/versions/{number}/changelog", get_changelog)
