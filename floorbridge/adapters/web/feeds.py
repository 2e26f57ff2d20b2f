"""iCal feed routes: pre-rendered bytes, ETag/Last-Modified, 304s and gzip."""

from __future__ import annotations

from aiohttp import web

from floorbridge.core.errors import NotFound

from .keys import SNAPSHOTS
from .snapshot import ServedFeed


def _feed(request: web.Request, key: str) -> ServedFeed:
    snap = request.app[SNAPSHOTS].get(request.match_info["meeting"])
    served = snap.feeds.get(key)
    if served is None:
        if snap.version is None:
            raise NotFound(f"meeting {snap.meeting.id!r} has no published agenda yet")
        raise NotFound(f"meeting {snap.meeting.id!r} has no feed {key!r}")
    return served


def _respond(request: web.Request, served: ServedFeed) -> web.Response:
    h = request.headers
    variant = served.answer(h.get("If-None-Match"), h.get("If-Modified-Since"), h.get("Accept-Encoding"))
    if variant.status == 304:
        return web.Response(status=304, headers=variant.headers)
    return web.Response(body=variant.body, headers=variant.headers)


async def meeting_feed(request: web.Request) -> web.Response:
    return _respond(request, _feed(request, "all"))


async def track_feed(request: web.Request) -> web.Response:
    return _respond(request, _feed(request, f"tracks/{request.match_info['track']}"))


async def deadlines_feed(request: web.Request) -> web.Response:
    return _respond(request, _feed(request, "deadlines"))


def add_routes(app: web.Application) -> None:
    app.router.add_get(r"/ical/{meeting:[a-z0-9-]+}.ics", meeting_feed)
    app.router.add_get(r"/ical/{meeting:[a-z0-9-]+}/tracks/{track:[a-z0-9-]+}.ics", track_feed)
    app.router.add_get(r"/ical/{meeting:[a-z0-9-]+}/deadlines.ics", deadlines_feed)
