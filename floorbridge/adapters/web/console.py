"""The moderator console and the public live list of speakers: server-rendered HTML shells that
two small scripts (static/console.js, static/live.js, sharing static/speakers.js) fill from the
list's server-sent events.

Signing in: a console account (username and password, checked with argon2 by ConsoleAuth) through
a form protected by a double-submit token (a SameSite=Strict cookie and a hidden field), or a
one-time link a moderator asks the bot for. Either opens a console session (HttpOnly,
SameSite=Strict cookie). Console pages send a person who is not signed in to the login form, and
answer 403 to one signed in without a role in the meeting. The console page carries the session's
CSRF token in <meta name="csrf-token">; console.js sends it with every action.

Every piece of text goes through html.escape; pages carry a strict CSP that allows only this
site's own scripts, styles and connections (no inline script, no CDN).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from importlib import resources
from itertools import groupby
from urllib.parse import quote

from aiohttp import web

from floorbridge.core.agenda import Session, SessionStatus
from floorbridge.core.chats import Role
from floorbridge.core.errors import NotFound
from floorbridge.core.ids import MeetingId
from floorbridge.core.speakers import SpeechType

from .conditional import not_modified
from .console_auth import CONSOLE, SESSION_COOKIE, Who
from .headers import SECURITY_HEADERS
from .keys import SNAPSHOTS
from .ratelimit import client_of
from .snapshot import MeetingSnapshot
from .throttle import FailureThrottle

LOGIN_COOKIE = "fb_login_csrf"
LOGIN_PATH = "/console/login"
MAX_USERNAME, MAX_PASSWORD = 100, 1024
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP}
_SESSION_ID = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # as core.ids allows: no dot segments, no slashes
# Where a sign-in may send the browser back to: console pages of this site only (no open redirect).
_NEXT = re.compile(rf"^/console(?:/{_SESSION_ID}){{0,2}}$")
# Chat platforms fetch links to show previews; such a fetch must not spend a one-time link.
_PREVIEW_AGENTS = re.compile(r"bot\b|preview|facebookexternalhit|synapse|whatsapp|slack|embedly", re.IGNORECASE)

SPEECH_LABELS = {
    SpeechType.CONTRIBUTION: "Contribution",
    SpeechType.POINT_OF_ORDER: "Point of order",
    SpeechType.INTERPOSED_QUESTION: "Interposed question",
    SpeechType.ANSWER: "Answer",
    SpeechType.RIGHT_OF_REPLY: "Right of reply",
}
ROLE_LABELS = {Role.MODERATOR: "moderator", Role.SECRETARIAT: "secretariat"}


# ---------------------------------------------------------------- static files


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str
    version: str  # pages link /static/<name>?v=<version>, which may be cached for good


STATIC_TYPES = {
    "speakers.js": "text/javascript; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
    "floor.css": "text/css; charset=utf-8",
}
STATIC: web.AppKey[dict[str, StaticFile]] = web.AppKey("console_static")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def load_static() -> dict[str, StaticFile]:
    folder = resources.files(__package__ or "floorbridge.adapters.web") / "static"
    files = {}
    for name, content_type in STATIC_TYPES.items():
        body = (folder / name).read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        files[name] = StaticFile(body, content_type, f'"{digest[:32]}"', digest[:12])
    return files


async def static_file(request: web.Request) -> web.Response:
    found = request.app[STATIC].get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound(text="no such file")
    # A versioned URL never changes its bytes; an unversioned one is revalidated every time.
    cache = "public, max-age=31536000, immutable" if request.query.get("v") == found.version else "no-cache"
    headers = {"ETag": found.etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if not_modified(request.headers.get("If-None-Match"), None, (found.etag,), _EPOCH):
        return web.Response(status=304, headers=headers)
    return web.Response(body=found.body, headers={**headers, "Content-Type": found.content_type})


def _asset(request: web.Request, name: str) -> str:
    return f"/static/{name}?v={request.app[STATIC][name].version}"


# ---------------------------------------------------------------- page helpers


def _page(request: web.Request, title: str, body: str, *, status: int = 200, script: str = "",
          head: str = "", private: bool = True) -> web.Response:
    # Deferred scripts run in document order: the shared helpers first.
    scripts = "".join(f'<script src="{escape(_asset(request, name))}" defer></script>'
                      for name in (("speakers.js", script) if script else ()))
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="stylesheet" href="{escape(_asset(request, "floor.css"))}">'
        f"{head}{scripts}</head><body>{body}</body></html>"
    )
    headers = {**_HEADERS, "Cache-Control": "no-store" if private else "no-cache"}
    return web.Response(text=html, status=status, content_type="text/html", headers=headers)


def _cross_site(request: web.Request) -> bool:
    return request.headers.get("Sec-Fetch-Site", "") == "cross-site"


def _go(request: web.Request, location: str) -> web.Response:
    """Send the browser to a page of this site. After a navigation from another site (a link in a
    web chat), the browser would leave the SameSite=Strict session cookie out of a plain redirect;
    a page that moves on by itself makes the next request same-site, so the cookie goes along."""
    if _cross_site(request):
        body = f'<main class="narrow"><p>Continuing to <a href="{escape(location)}">{escape(location)}</a>…</p></main>'
        return _page(request, "floorbridge console", body,
                     head=f'<meta http-equiv="refresh" content="0;url={escape(location)}">')
    return web.Response(status=303, headers={**_HEADERS, "Location": location, "Cache-Control": "no-store"})


def _safe_next(raw: str) -> str:
    return raw if _NEXT.match(raw) else ""


def _signed_in_bar(who: Who, crumbs: list[tuple[str, str]]) -> str:
    trail = " › ".join(f'<a href="{escape(href)}">{escape(label)}</a>' if href else escape(label)
                       for label, href in crumbs)
    return (
        f'<header class="bar"><nav aria-label="Console">{trail}</nav>'
        f'<form method="post" action="/console/logout" class="signout">'
        f'<input type="hidden" name="csrf" value="{escape(who.csrf)}">'
        f'<span>Signed in as <strong>{escape(who.name)}</strong></span> '
        f'<button type="submit">Sign out</button></form></header>'
    )


async def _guard(request: web.Request, meeting_id: MeetingId | None = None) -> Who | web.Response:
    """The signed-in person (with a role in `meeting_id` when given), or the answer to send instead:
    the login form for a stranger, 403 for someone without a role in the meeting."""
    who = await request.app[CONSOLE].who(request)
    if who is None:
        if _cross_site(request):
            return _go(request, request.path_qs)  # perhaps signed in: the same-site retry carries the cookie
        target = _safe_next(request.path)
        return _go(request, LOGIN_PATH + (f"?next={quote(target, safe='/')}" if target else ""))
    if meeting_id is not None and meeting_id not in who.roles:
        body = (f"{_signed_in_bar(who, [('Meetings', '/console')])}<main class=\"narrow\"><h1>Not allowed</h1>"
                f"<p>You are not a moderator or member of the secretariat of {escape(meeting_id)}. "
                f'<a href="/console">Your meetings</a>.</p></main>')
        return _page(request, "Not allowed", body, status=403)
    return who


guard_page = _guard  # for the other console pages (mail)


def _snapshot(request: web.Request, meeting_id: str) -> MeetingSnapshot:
    return request.app[SNAPSHOTS].get(meeting_id)


def _session_of(snap: MeetingSnapshot, session_id: str) -> Session:
    if snap.version is not None:
        for placed in snap.version.sessions:
            if placed.session.id == session_id:
                return placed.session
    raise NotFound(f"there is no session {session_id!r} in {snap.meeting.id}")


def _when(snap: MeetingSnapshot, s: Session) -> str:
    m = snap.meeting
    where = f" · {s.room}" if s.room else ""
    return f"{m.local(s.start):%A %d %B %Y, %H:%M}–{m.local(s.end):%H:%M} ({m.timezone}){where}"


# ---------------------------------------------------------------- signing in and out


def _login_page(request: web.Request, *, error: str = "", status: int = 200, username: str = "",
                next_path: str = "") -> web.Response:
    token = secrets.token_urlsafe(32)
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        '<main class="narrow"><h1>Moderator console</h1>'
        f"{alert}"
        f'<form method="post" action="{LOGIN_PATH}" class="login">'
        f'<input type="hidden" name="csrf" value="{escape(token)}">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        '<label for="username">Username</label>'
        f'<input id="username" name="username" autocomplete="username" required maxlength="{MAX_USERNAME}" '
        f'value="{escape(username)}"{"" if username else " autofocus"}>'
        '<label for="password">Password</label>'
        f'<input id="password" name="password" type="password" autocomplete="current-password" required '
        f'maxlength="{MAX_PASSWORD}"{" autofocus" if username else ""}>'
        '<button type="submit">Sign in</button></form>'
        '<p class="hint">Moderators listed for a meeting can also ask the bot for a one-time link: '
        "send <code>/console</code> to it in a private chat.</p></main>"
    )
    response = _page(request, "Sign in — floorbridge console", body, status=status)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", secure=request.secure,
                        path=LOGIN_PATH, max_age=3600)
    return response


async def login_form(request: web.Request) -> web.Response:
    next_path = _safe_next(request.query.get("next", ""))
    if await request.app[CONSOLE].who(request) is not None:
        return _go(request, next_path or "/console")
    return _login_page(request, next_path=next_path)


def _address_key(request: web.Request) -> str:
    """The sign-in throttle's key for the client's address, shared by passwords and login links."""
    return f"ip:{client_of(request) or '?'}"


async def login_submit(request: web.Request) -> web.Response:
    auth = request.app[CONSOLE]
    form = await request.post()
    next_path = _safe_next(str(form.get("next", "")))
    sent, kept = str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "")
    if not sent or not kept or not hmac.compare_digest(sent.encode(), kept.encode()):
        return _login_page(request, status=403, next_path=next_path,
                           error="The sign-in form had expired or was sent from another site; please sign in again.")
    username = " ".join(str(form.get("username", "")).split())
    password = str(form.get("password", ""))
    keys = (_address_key(request), f"user:{username.lower()[:MAX_USERNAME]}")
    wait = request.app[SIGN_IN_THROTTLE].retry_after(*keys)
    if wait > 0:
        page = _login_page(request, status=429, username=username[:MAX_USERNAME], next_path=next_path,
                           error=f"Too many failed sign-ins; try again in {int(wait) + 1} seconds.")
        page.headers["Retry-After"] = str(int(wait) + 1)
        return page
    account = None
    if username and len(username) <= MAX_USERNAME and len(password) <= MAX_PASSWORD:
        account = await auth.check_password(username, password)
    if account is None:
        request.app[SIGN_IN_THROTTLE].failed(*keys)
        # The same words whether the user exists or not (ConsoleAuth also takes the same time).
        return _login_page(request, status=401, username=username[:MAX_USERNAME], next_path=next_path,
                           error="Sign-in failed: wrong username or password.")
    await auth.close_session(request)  # a new sign-in replaces this browser's earlier session
    token, _session = await auth.open_session(f"account:{account.username}")
    response = _go(request, next_path or "/console")
    auth.set_cookie(response, request, token)
    response.del_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return response


async def login_with_link(request: web.Request) -> web.Response:
    auth = request.app[CONSOLE]
    if _PREVIEW_AGENTS.search(request.headers.get("User-Agent", "")):
        return _page(request, "floorbridge console", '<main class="narrow"><h1>Moderator console</h1>'
                     "<p>Open this one-time link in your browser to sign in.</p></main>")
    # Links are 256 random bits, so guessing is hopeless; still, an address presenting dead links
    # is held like one failing to sign in (the same counter: 10 in 5 minutes).
    throttle, address = request.app[SIGN_IN_THROTTLE], _address_key(request)
    wait = throttle.retry_after(address)
    if wait > 0:
        body = ('<main class="narrow"><h1>Too many attempts</h1>'
                f"<p>Too many failed sign-ins from your address; try again in {int(wait) + 1} seconds.</p></main>")
        page = _page(request, "Too many attempts — floorbridge console", body, status=429)
        page.headers["Retry-After"] = str(int(wait) + 1)
        return page
    subject = await auth.use_login_link(request.match_info["token"])
    if subject is None:
        throttle.failed(address)
        body = ('<main class="narrow"><h1>This link no longer works</h1>'
                "<p>A console link can be used once, for a few minutes, and this one has been used or has expired. "
                "Ask the bot for a new one: send <code>/console</code> to it in a private chat.</p>"
                f'<p>Or <a href="{LOGIN_PATH}">sign in with a console account</a>.</p></main>')
        return _page(request, "Link expired — floorbridge console", body, status=403)
    await auth.close_session(request)
    token, _session = await auth.open_session(subject)
    response = _go(request, "/console")
    auth.set_cookie(response, request, token)
    return response


async def logout(request: web.Request) -> web.Response:
    auth = request.app[CONSOLE]
    who = await auth.who(request)
    if who is None:
        return _go(request, LOGIN_PATH)
    sent = request.headers.get("X-CSRF-Token", "") or str((await request.post()).get("csrf", ""))
    if not hmac.compare_digest(sent.encode(), who.csrf.encode()):
        body = ('<main class="narrow"><h1>Not signed out</h1><p>The request had a missing or wrong CSRF token. '
                '<a href="/console">Reload the console</a> and sign out from there.</p></main>')
        return _page(request, "Not signed out", body, status=403)
    await auth.close_session(request)
    response = _go(request, LOGIN_PATH)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# ---------------------------------------------------------------- console pages


async def console_home(request: web.Request) -> web.Response:
    who = await _guard(request)
    if isinstance(who, web.Response):
        return who
    meetings = request.app[SNAPSHOTS].meetings
    items = []
    for meeting_id, role in sorted(who.roles.items()):
        snap = meetings.get(meeting_id)
        title = snap.meeting.title if snap else meeting_id
        items.append(f'<li><a href="/console/{quote(meeting_id)}">{escape(title)}</a> '
                     f'<span class="tag">{escape(ROLE_LABELS.get(role, str(role)))}</span></li>')
    listing = (f'<ul class="meetings">{"".join(items)}</ul>' if items
               else "<p>You have no meeting to moderate. Ask the secretariat to give you a role.</p>")
    body = f'{_signed_in_bar(who, [("Meetings", "")])}<main><h1>Your meetings</h1>{listing}</main>'
    return _page(request, "floorbridge console", body)


async def console_meeting(request: web.Request) -> web.Response:
    meeting_id = MeetingId(request.match_info["meeting"])
    who = await _guard(request, meeting_id)
    if isinstance(who, web.Response):
        return who
    snap = _snapshot(request, meeting_id)
    m, version = snap.meeting, snap.version
    parts = [_signed_in_bar(who, [("Meetings", "/console"), (m.title, "")]),
             f"<main><h1>{escape(m.title)}</h1><p>{escape(m.venue)}, {escape(m.city)} · times in "
             f"{escape(m.timezone)}</p>",
             f'<p><a href="/console/{quote(m.id)}/mail">Mail</a>: the quarantine, announcements to relay and '
             "deadlines to confirm.</p>"]
    if version is None:
        parts.append("<p>No agenda has been published yet: sessions appear here once it is.</p>")
    else:
        parts.append(f"<h2>Sessions (agenda version {version.number})</h2>")
        for day, group in groupby(version.sessions, key=lambda p: m.local(p.session.start).date()):
            rows = []
            for placed in group:
                s = placed.session
                sid = quote(s.id, safe="")
                status = "" if s.status is SessionStatus.SCHEDULED else f" ({s.status.value})"
                rows.append(
                    f'<tr class="{escape(s.status.value)}"><td>{m.local(s.start):%H:%M}–{m.local(s.end):%H:%M}</td>'
                    f'<td><a href="/console/{quote(m.id)}/{sid}">{escape(s.title)}</a>{escape(status)}</td>'
                    f"<td>{escape(s.room)}</td>"
                    f'<td><a href="/meetings/{quote(m.id)}/sessions/{sid}/live">public page</a></td></tr>'
                )
            parts.append(f'<h3>{day:%A %d %B %Y}</h3><table class="sessions">{"".join(rows)}</table>')
    parts.append("</main>")
    return _page(request, f"{m.title} — console", "".join(parts))


def _speech_options() -> str:
    return "".join(f'<option value="{escape(t.value)}">{escape(label)}</option>' for t, label in SPEECH_LABELS.items())


async def console_session(request: web.Request) -> web.Response:
    meeting_id = MeetingId(request.match_info["meeting"])
    who = await _guard(request, meeting_id)
    if isinstance(who, web.Response):
        return who
    snap = _snapshot(request, meeting_id)
    s = _session_of(snap, request.match_info["session"])
    m = snap.meeting
    mid, sid = quote(m.id, safe=""), quote(s.id, safe="")
    api = f"/api/v1/meetings/{mid}/sessions/{sid}/speakers"
    role = who.roles[meeting_id]
    body = (
        _signed_in_bar(who, [("Meetings", "/console"), (m.title, f"/console/{mid}"), (s.title, "")])
        + f'<main id="console" data-meeting="{escape(m.id)}" data-session="{escape(s.id)}" '
        f'data-role="{escape(role.value)}">'
        f"<h1>{escape(s.title)}</h1>"
        f'<p class="meta">{escape(_when(snap, s))} · <a href="/meetings/{mid}/sessions/{sid}/live">public page</a>'
        f' · record <a href="{api}/record.csv">CSV</a> <a href="{api}/record.json">JSON</a>'
        f' · <a href="{api}/audit">audit trail</a></p>'
        '<p id="status" class="status" role="status">Connecting…</p>'
        '<p id="notice" class="notice" role="alert" hidden></p>'
        '<div class="columns"><section class="now" aria-labelledby="h-now"><h2 id="h-now">Speaking now</h2>'
        '<div id="current" aria-live="polite"><p class="empty">Nobody has the floor.</p></div>'
        '<p class="timer idle" aria-label="Time left"><span id="timer">–</span> <span id="timer-note"></span></p>'
        '<div class="actions">'
        '<button type="button" id="btn-next" class="primary">Next speaker <kbd>N</kbd></button>'
        '<button type="button" id="btn-end">End speech</button>'
        '<button type="button" id="btn-pause">Pause</button>'
        '<button type="button" id="btn-readd">Re-add last speaker</button>'
        '<button type="button" id="btn-close">Close list</button></div>'
        '<form id="form-time" class="inline"><label for="time-seconds">Seconds per speaker</label>'
        '<input id="time-seconds" name="seconds" type="number" min="10" max="14400" step="1" required>'
        '<button type="submit">Set time</button></form>'
        '<h2 id="h-budgets">Speaking-time budgets</h2><ul id="budgets" class="budgets"></ul>'
        '<form id="form-budget" class="inline"><label for="budget-delegation">Budget for delegation</label>'
        '<input id="budget-delegation" name="delegation" required maxlength="200">'
        '<label for="budget-seconds">Seconds in this session</label>'
        '<input id="budget-seconds" name="seconds" type="number" min="1" max="86400" step="1" required>'
        '<button type="submit">Set budget</button></form></section>'
        '<section class="queue" aria-labelledby="h-waiting"><h2 id="h-waiting">Waiting <span id="count"></span></h2>'
        '<p id="list-state" class="list-state"></p>'
        '<p class="hint">Drag a row, or focus it and press Alt+↑ / Alt+↓, to move it. '
        "N gives the floor to the next speaker.</p>"
        '<table class="waiting"><thead><tr><th scope="col">#</th><th scope="col">Name</th>'
        '<th scope="col">Delegation</th><th scope="col">Speech</th><th scope="col">Where</th>'
        '<th scope="col">Channel</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>'
        '<tbody id="waiting"></tbody></table><p id="waiting-empty" class="empty">Nobody is waiting.</p>'
        '<h3>Add an in-room speaker</h3><form id="form-add" class="inline">'
        '<label for="add-name">Name</label><input id="add-name" name="name" required maxlength="200">'
        '<label for="add-delegation">Delegation</label><input id="add-delegation" name="delegation" maxlength="200">'
        f'<label for="add-type">Speech</label><select id="add-type" name="speech_type">{_speech_options()}</select>'
        '<button type="submit">Add in-room speaker</button></form></section></div>'
        '<section id="slots" class="slots" hidden aria-labelledby="h-slots">'
        '<h2 id="h-slots">Speaking-slot requests</h2><div id="slot-calls"></div></section>'
        "</main>"
    )
    head = f'<meta name="csrf-token" content="{escape(who.csrf)}">'
    return _page(request, f"{s.title} — console", body, script="console.js", head=head)


# ---------------------------------------------------------------- the public live page


async def live_page(request: web.Request) -> web.Response:
    snap = _snapshot(request, request.match_info["meeting"])
    s = _session_of(snap, request.match_info["session"])
    m = snap.meeting
    api = f"/api/v1/meetings/{quote(m.id, safe='')}/sessions/{quote(s.id, safe='')}/speakers"
    body = (
        f'<main id="live" class="live" data-meeting="{escape(m.id)}" data-session="{escape(s.id)}">'
        f"<h1>{escape(s.title)}</h1>"
        f'<p class="meta"><a href="/meetings/{quote(m.id)}">{escape(m.title)}</a><br>{escape(_when(snap, s))}</p>'
        '<p id="status" class="status" role="status">Connecting…</p>'
        f'<noscript><p>This page follows the list live with JavaScript. Without it, see <a href="{api}">the list '
        "as JSON</a>.</p></noscript>"
        '<section class="now" aria-labelledby="h-now"><h2 id="h-now">Speaking now</h2>'
        '<div id="current" aria-live="polite"><p class="empty">Nobody has the floor.</p></div>'
        '<p class="timer idle" aria-label="Time left"><span id="timer">–</span> <span id="timer-note"></span></p>'
        "</section>"
        '<section aria-labelledby="h-waiting"><h2 id="h-waiting">List of speakers <span id="count"></span></h2>'
        '<p id="list-state" class="list-state"></p><ol id="waiting" class="speakers"></ol>'
        '<p id="waiting-empty" class="empty">Nobody is waiting.</p></section>'
        '<section class="ask" aria-labelledby="h-ask"><h2 id="h-ask">Ask for the floor</h2>'
        '<div id="mine" class="mine" hidden><p id="mine-text" aria-live="polite"></p>'
        '<button type="button" id="withdraw">Withdraw my request</button></div>'
        '<form id="ask-form"><p class="hint">For delegates following remotely.</p>'
        '<label for="ask-name">Your name</label>'
        '<input id="ask-name" name="name" required maxlength="200" autocomplete="name">'
        '<label for="ask-delegation">Delegation</label>'
        '<input id="ask-delegation" name="delegation" maxlength="200" autocomplete="organization">'
        f'<label for="ask-type">Speech</label><select id="ask-type" name="speech_type">{_speech_options()}</select>'
        '<button type="submit">Ask for the floor</button></form>'
        '<p id="ask-error" class="error" role="alert" hidden></p></section></main>'
    )
    return _page(request, f"{s.title} — live list of speakers", body, script="live.js", private=False)


SIGN_IN_THROTTLE = web.AppKey("sign_in_throttle", FailureThrottle)


def add_routes(app: web.Application) -> None:
    """The console, its static files and the public live page (the console needs app[CONSOLE])."""
    app[STATIC] = load_static()
    r = app.router
    r.add_get(r"/static/{name:[a-z]+\.(?:js|css)}", static_file)
    app[SIGN_IN_THROTTLE] = FailureThrottle()
    r.add_get(LOGIN_PATH, login_form)
    r.add_post(LOGIN_PATH, login_submit)
    r.add_get(LOGIN_PATH + "/{token}", login_with_link)
    r.add_post("/console/logout", logout)
    r.add_get("/console", console_home)
    r.add_get(r"/console/{meeting:[a-z0-9-]+}", console_meeting)
    r.add_get(rf"/console/{{meeting:[a-z0-9-]+}}/{{session:{_SESSION_ID}}}", console_session)
    r.add_get(rf"/meetings/{{meeting:[a-z0-9-]+}}/sessions/{{session:{_SESSION_ID}}}/live", live_page)
