"""/ical/personal/{token}.ics: a delegate's own feed, listing what their chat follows.

The token is 256 random bits issued by the bots' `ical` command and revoked by `ical reset`;
an unknown or revoked token is a plain 404, the same as any other missing feed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from floorbridge.calendar.feeds import PersonalPart, render_personal_calendar
from floorbridge.core.chats import NoticeKind
from floorbridge.core.errors import NotFound
from floorbridge.core.ids import slugify
from floorbridge.core.ports import ChatStore

from .conditional import not_modified
from .keys import SNAPSHOTS

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


@dataclass(frozen=True)
class PersonalFeeds:
    chats: ChatStore
    refresh_minutes: int = 60
    alarm_offsets: tuple[timedelta, ...] = ()


PERSONAL = web.AppKey("personal", PersonalFeeds)


async def personal_feed(request: web.Request) -> web.Response:
    personal = request.app[PERSONAL]
    token = request.match_info["token"]
    if not _TOKEN.match(token):
        raise NotFound("no such feed")
    profile = await personal.chats.profile_by_feed_token(token)
    if profile is None or not hmac.compare_digest(profile.feed_token.encode(), token.encode()):
        raise NotFound("no such feed")
    snapshots = request.app[SNAPSHOTS]
    parts = []
    for sub in await personal.chats.subscriptions_of(profile.chat):
        snap = snapshots.meetings.get(sub.meeting_id)
        if not sub.active or snap is None or snap.version is None:
            continue
        wanted = frozenset(
            p.session.id for p in snap.version.sessions
            if NoticeKind.AGENDA in sub.kinds and (not sub.tracks or slugify(p.session.track) in sub.tracks)
        )
        parts.append(PersonalPart(snap.meeting, snap.version, wanted, NoticeKind.DEADLINES in sub.kinds))
    body = render_personal_calendar(
        parts,
        name="floorbridge — " + ", ".join(p.meeting.title for p in parts) if parts else "floorbridge",
        refresh_minutes=personal.refresh_minutes,
        **({"alarm_offsets": personal.alarm_offsets} if personal.alarm_offsets else {}),
    )
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=300",
        "Content-Type": "text/calendar; charset=utf-8",
        "X-Robots-Tag": "noindex",
    }
    latest = max((p.version.published_at for p in parts), default=None)
    if latest is not None and not_modified(request.headers.get("If-None-Match"), None, (etag,), latest):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers)


def add_routes(app: web.Application, personal: PersonalFeeds) -> None:
    app[PERSONAL] = personal
    app.router.add_get(r"/ical/personal/{token}.ics", personal_feed)
