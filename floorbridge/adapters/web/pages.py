"""Small server-rendered HTML pages: the meeting list and each meeting's agenda with its feeds.

Every piece of agenda text goes through html.escape; the pages carry a strict CSP.
"""

from __future__ import annotations

from html import escape
from itertools import groupby

from aiohttp import web

from floorbridge.core.agenda import SessionStatus
from floorbridge.core.deadline import Deadline

from .headers import SECURITY_HEADERS
from .keys import OPTIONS, SNAPSHOTS
from .links import feed_links, track_key
from .snapshot import MeetingSnapshot

_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem;line-height:1.4}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #ddd}
.cancelled{text-decoration:line-through;color:#888}.tentative{font-style:italic}
.feeds a{margin-right:.75rem}"""


def html_page(title: str, body: str, *, style: str, status: int = 200, cache: str | None = None) -> web.Response:
    """A page of the site without script: `body` is HTML already escaped by the caller; the
    site's CSP and security headers, and `cache` as Cache-Control when given."""
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{style}</style></head><body>{body}</body></html>"
    )
    headers = dict(SECURITY_HEADERS)
    if cache is not None:
        headers["Cache-Control"] = cache
    return web.Response(text=html, status=status, content_type="text/html", headers=headers)


def _page(title: str, body: str) -> web.Response:
    return html_page(title, body, style=_STYLE)


def _feed_row(public: str, meeting_id: str, key: str, label: str) -> str:
    links = feed_links(public, meeting_id, key)
    return (
        f'<li class="feeds">{escape(label)}: <a href="{escape(links["webcal"])}">subscribe (webcal)</a>'
        f'<a href="{escape(links["https"])}">{escape(links["https"])}</a></li>'
    )


async def index(request: web.Request) -> web.Response:
    public = request.app[OPTIONS].public_url
    items = []
    for snap in sorted(request.app[SNAPSHOTS].meetings.values(), key=lambda s: s.meeting.start_date, reverse=True):
        m = snap.meeting
        feed = _feed_row(public, m.id, "all", "All sessions") if "all" in snap.feeds else ""
        items.append(
            f'<li><a href="/meetings/{escape(m.id)}">{escape(m.title)}</a> — '
            f"{m.start_date:%d %b %Y} to {m.end_date:%d %b %Y}, {escape(m.venue)}<ul>{feed}</ul></li>"
        )
    return _page("floorbridge", f"<h1>Meetings</h1><ul>{''.join(items)}</ul>")


def _deadline_text(snap: MeetingSnapshot, d: Deadline) -> str:
    if d.all_day:
        return f"{d.due:%d %B %Y}"
    return f"{snap.meeting.local(d.due):%d %B %Y %H:%M %Z}"  # type: ignore[arg-type]


async def meeting_page(request: web.Request) -> web.Response:
    snap = request.app[SNAPSHOTS].get(request.match_info["meeting"])
    m, version = snap.meeting, snap.version
    public = request.app[OPTIONS].public_url
    parts = [f"<h1>{escape(m.title)}</h1>", f"<p>{escape(m.organiser)} · {escape(m.venue)}, {escape(m.city)} · "
             f"{m.start_date:%d %B %Y} – {m.end_date:%d %B %Y} · times in {escape(m.timezone)}</p>"]
    if m.remote.url:
        parts.append(f'<p>Remote participation: <a href="{escape(m.remote.url)}">{escape(m.remote.url)}</a> '
                     f"{escape(m.remote.instructions)}</p>")
    if version is None:
        parts.append("<p>No agenda has been published yet.</p>")
        return _page(m.title, "".join(parts))
    feeds = [_feed_row(public, m.id, "all", "All sessions"), _feed_row(public, m.id, "deadlines", "Deadlines")]
    feeds += [_feed_row(public, m.id, track_key(name), f"Track: {name}") for name in version.tracks().values()]
    parts.append(f"<h2>Calendar feeds</h2><ul>{''.join(feeds)}</ul>")
    parts.append(f"<h2>Agenda (version {version.number})</h2>")
    by_day = groupby(version.sessions, key=lambda p: m.local(p.session.start).date())
    for day, group in by_day:
        rows = []
        for p in group:
            s = p.session
            status = "" if s.status is SessionStatus.SCHEDULED else f" ({s.status.value})"
            rows.append(
                f'<tr class="{s.status.value}"><td>{m.local(s.start):%H:%M}–{m.local(s.end):%H:%M}</td>'
                f"<td>{escape(s.title)}{escape(status)}</td><td>{escape(s.room)}</td><td>{escape(s.track)}</td></tr>"
            )
        parts.append(f"<h3>{day:%A %d %B %Y}</h3><table>{''.join(rows)}</table>")
    if version.deadlines:
        items = "".join(f"<li>{_deadline_text(snap, d)}: {escape(d.title)}</li>" for d in version.deadlines)
        parts.append(f"<h2>Deadlines</h2><ul>{items}</ul>")
    history = "".join(
        f'<li><a href="/api/v1/meetings/{escape(m.id)}/versions/{v.number}/changelog">version {v.number}</a> '
        f"{v.published_at:%Y-%m-%d %H:%M} UTC — {v.change_count} change(s) {escape(v.comment)}</li>"
        for v in reversed(snap.versions)
    )
    parts.append(f"<h2>Versions</h2><ul>{history}</ul>")
    return _page(m.title, "".join(parts))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get(r"/meetings/{meeting:[a-z0-9-]+}", meeting_page)
