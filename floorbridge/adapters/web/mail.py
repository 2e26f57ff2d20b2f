"""Mail on the web: the signed HTTP endpoint that takes a raw message, the announcements archive
(JSON and HTML), and the console's review of the quarantine, relays and found deadlines.

The archive shows the letters as text only: every character goes through html.escape and the
pages carry the site's CSP (no script, no remote images), whatever HTML the mail had. The
quarantine never appears outside the console.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import date
from html import escape
from typing import Any
from urllib.parse import quote

from aiohttp import web

from floorbridge.bots.announcements import size_text
from floorbridge.bots.i18n import translator
from floorbridge.bots.present import kind_label
from floorbridge.core.announcements import DeadlineState, MailStatus, RelayState, StoredMail
from floorbridge.core.chats import Role
from floorbridge.core.deadline import DeadlineKind
from floorbridge.core.errors import ConcurrentChange, InvalidInput, NotFound, Problem
from floorbridge.core.ids import MeetingId

from ..mail.intake import MailIntake
from .console import guard_page
from .console_auth import CONSOLE
from .errors import error_response
from .limits import shown, whole_number
from .pages import html_page

MAIL = web.AppKey("mail_intake", MailIntake)
MAIL_KEY = web.AppKey("mail_hmac_key", bytes)
SIGNATURE_HEADER = "X-Floorbridge-Signature"
TIMESTAMP_HEADER = "X-Floorbridge-Timestamp"
MAX_SKEW_SECONDS = 300
MAX_LISTED = 100
STAFF = (Role.MODERATOR, Role.SECRETARIAT)

_ENGLISH = translator("en")  # the archive and the console are in English


def _kind(kind: DeadlineKind) -> str:
    return kind_label(_ENGLISH, kind)

_STYLE = """body{font-family:system-ui,sans-serif;max-width:48rem;margin:auto;padding:1rem;line-height:1.5}
.letter{white-space:pre-wrap;overflow-wrap:anywhere;border-left:3px solid #ccc;padding-left:1rem}
.meta{color:#555}.tag{font-size:.85rem;padding:.1rem .4rem;border:1px solid #999;border-radius:.3rem}
table{border-collapse:collapse}td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left}
form.inline{display:inline}button{font:inherit}"""


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    """What a sender puts in X-Floorbridge-Signature (after "sha256=")."""
    return hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def _page(title: str, body: str, *, status: int = 200, private: bool = False) -> web.Response:
    return html_page(title, body, style=_STYLE, status=status, cache="no-store" if private else "no-cache")


def _mail_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    number = whole_number(raw)
    if number is None:
        raise InvalidInput([Problem("path", f"{shown(raw)} is not a message number")])
    return number


async def _archived(request: web.Request) -> StoredMail:
    meeting_id = MeetingId(request.match_info["meeting"])
    mail = await request.app[MAIL].get(meeting_id, _mail_id(request))
    if not mail.archived or mail.parsed is None:
        raise NotFound(f"{meeting_id} has no announcement #{mail.id}")
    return mail


def _json(intake: MailIntake, mail: StoredMail, *, full: bool) -> dict[str, Any]:
    p = mail.parsed
    assert p is not None
    out: dict[str, Any] = {
        "id": mail.id,
        "subject": p.subject,
        "sender": p.sender,
        "list_id": p.list_id,
        "date": p.date.isoformat() if p.date else None,
        "received_at": mail.received_at.isoformat(),
        "first_paragraph": p.first_paragraph,
        "deadlines": [{"id": d.id, "kind": d.found.kind.value, "due": d.found.due.isoformat(),
                       "confidence": round(d.found.confidence, 2), "state": d.state.value, "excerpt": d.found.excerpt}
                      for d in mail.deadlines if d.state is not DeadlineState.REJECTED],
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
                        for a in p.attachments],
        "url": intake.archive_url(mail.meeting_id or MeetingId(""), mail.id),
    }
    if full:
        out.update(text=p.text, message_id=p.message_id, in_reply_to=p.in_reply_to, references=list(p.references))
    return out


# ---------------------------------------------------------------- the signed endpoint


async def _read_capped(request: web.Request, cap: int) -> bytes | None:
    """The body, or None once it is over `cap` (the rest is not read). Not through request.read():
    the site's body limit is for forms, mail has its own."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)


async def receive_signed(request: web.Request) -> web.Response:
    key = request.app.get(MAIL_KEY)
    intake = request.app[MAIL]
    meeting_id = MeetingId(request.match_info["meeting"])
    if not key:
        raise NotFound("the signed mail endpoint is not configured (set the key in the environment variable "
                       "named by mail.http_secret_env)")
    if await intake.meeting(meeting_id) is None:
        raise NotFound(f"there is no meeting {meeting_id!r}")
    body = await _read_capped(request, intake.max_bytes)
    if body is None:
        return error_response(request, 413, "too_large", f"the message is over the cap of {intake.max_bytes} bytes")
    stamp = request.headers.get(TIMESTAMP_HEADER, "")
    sent = request.headers.get(SIGNATURE_HEADER, "")
    sent_at = whole_number(stamp)
    if sent_at is None or abs(time.time() - sent_at) > MAX_SKEW_SECONDS:
        return error_response(request, 401, "bad_signature",
                              f"{TIMESTAMP_HEADER} must be the Unix time of sending, within {MAX_SKEW_SECONDS} s")
    expected = "sha256=" + signature(key, stamp, body)
    if not hmac.compare_digest(sent.encode("ascii", "replace"), expected.encode("ascii")):
        return error_response(request, 401, "bad_signature",
                              f"{SIGNATURE_HEADER} is missing or is not sha256=HMAC(key, timestamp '.' body)")
    if not body.strip():
        raise InvalidInput([Problem("body", "is empty: send the raw RFC 822 message")])
    receipt = await intake.receive(body, channel="http", meeting_id=meeting_id)
    return web.json_response({"id": receipt.id, "status": receipt.status.value, "reason": receipt.reason,
                              "new": receipt.new}, status=202)


# ---------------------------------------------------------------- the archive


def _limit(request: web.Request) -> tuple[int, int | None]:
    raw_limit, raw_before = request.query.get("limit", "50"), request.query.get("before")
    limit = whole_number(raw_limit)
    if limit is None or not 1 <= limit <= MAX_LISTED:
        raise InvalidInput([Problem("query parameter 'limit'", f"must be a whole number from 1 to {MAX_LISTED}")])
    before = whole_number(raw_before) if raw_before is not None else None
    if raw_before is not None and before is None:
        raise InvalidInput([Problem("query parameter 'before'", "must be a message number")])
    return limit, before


async def list_api(request: web.Request) -> web.Response:
    intake = request.app[MAIL]
    meeting_id = MeetingId(request.match_info["meeting"])
    if await intake.meeting(meeting_id) is None:
        raise NotFound(f"there is no meeting {meeting_id!r}")
    limit, before = _limit(request)
    mails = await intake.store.listing(meeting_id, archived=True, limit=limit, before=before)
    return web.json_response({"meeting": meeting_id,
                              "announcements": [_json(intake, m, full=False) for m in mails if m.parsed]})


async def one_api(request: web.Request) -> web.Response:
    return web.json_response(_json(request.app[MAIL], await _archived(request), full=True))


def _deadline_items(mail: StoredMail) -> str:
    items = []
    for d in mail.deadlines:
        if d.state is DeadlineState.REJECTED:
            continue
        note = "" if d.state is DeadlineState.ACCEPTED else ' <span class="tag">to be confirmed</span>'
        items.append(f"<li><strong>{escape(_kind(d.found.kind))}</strong>: "
                     f"{d.found.due:%d %B %Y}{note}</li>")
    return f"<h2>Deadlines</h2><ul>{''.join(items)}</ul>" if items else ""


async def list_page(request: web.Request) -> web.Response:
    intake = request.app[MAIL]
    meeting_id = MeetingId(request.match_info["meeting"])
    meeting = await intake.meeting(meeting_id)
    if meeting is None:
        raise NotFound(f"there is no meeting {meeting_id!r}")
    limit, before = _limit(request)
    mails = await intake.store.listing(meeting_id, archived=True, limit=limit, before=before)
    rows = "".join(
        f'<tr><td>{m.received_at:%Y-%m-%d}</td><td><a href="/meetings/{quote(meeting_id)}/announcements/{m.id}">'
        f"{escape(m.subject or '(no subject)')}</a></td><td>{escape(m.sender)}</td></tr>" for m in mails)
    body = (f"<h1>Announcements — {escape(meeting.title)}</h1>"
            + (f"<table><tr><th>Received</th><th>Subject</th><th>From</th></tr>{rows}</table>" if rows
               else "<p>No announcement has been received yet.</p>"))
    return _page(f"Announcements — {meeting.title}", body)


async def one_page(request: web.Request) -> web.Response:
    mail = await _archived(request)
    p = mail.parsed
    assert p is not None
    meeting = await request.app[MAIL].meeting(mail.meeting_id or "")
    title = meeting.title if meeting else str(mail.meeting_id)
    attachments = ""
    if p.attachments:
        names = "".join(f"<li>{escape(a.filename)} ({escape(a.content_type)}, {size_text(a.size)})</li>"
                        for a in p.attachments)
        attachments = f"<h2>Attachments (not relayed)</h2><ul>{names}</ul>"
    sent = f" · sent {p.date:%d %B %Y %H:%M %Z}" if p.date else ""
    body = (f'<p class="meta"><a href="/meetings/{quote(str(mail.meeting_id))}/announcements">'
            f"Announcements — {escape(title)}</a></p>"
            f"<h1>{escape(p.subject or '(no subject)')}</h1>"
            f'<p class="meta">From {escape(p.sender)}{escape(sent)}</p>'
            f"{_deadline_items(mail)}<div class=\"letter\">{escape(p.text)}</div>{attachments}")
    return _page(p.subject or "Announcement", body)


# ---------------------------------------------------------------- the console's review


def _state(mail: StoredMail) -> str:
    if mail.status is MailStatus.QUARANTINED:
        return f"quarantined: {mail.reason}"
    relay = {RelayState.WAITING: "waits for approval", RelayState.RELAYED: "relayed",
             RelayState.DECLINED: "not relayed (declined)", RelayState.NONE: "not relayed"}[mail.relay]
    return f"{mail.status.value}, {relay}"


def _button(meeting_id: str, mail_id: int, csrf: str, action: str, label: str, extra: str = "") -> str:
    return (f'<form class="inline" method="post" action="/console/{quote(meeting_id)}/mail/{mail_id}">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            f'<input type="hidden" name="action" value="{escape(action)}">{extra}'
            f"<button type=\"submit\">{escape(label)}</button></form>")


def _review_card(meeting_id: str, mail: StoredMail, csrf: str) -> str:
    head = (f'<h2 id="mail-{mail.id}">#{mail.id} {escape(mail.subject or "(no subject)")}</h2>'
            f'<p class="meta">From {escape(mail.sender or "?")} · received {mail.received_at:%Y-%m-%d %H:%M} UTC by '
            f"{escape(mail.channel)} · DKIM {escape(mail.dkim or '?')} · {escape(_state(mail))}</p>")
    actions = []
    if mail.status is MailStatus.QUARANTINED:
        actions.append(_button(meeting_id, mail.id, csrf, "release", "Release into the archive"))
    if mail.relay is RelayState.WAITING:
        actions.append(_button(meeting_id, mail.id, csrf, "relay", "Relay to the chats"))
        actions.append(_button(meeting_id, mail.id, csrf, "decline", "Do not relay"))
    rows = []
    for d in mail.deadlines:
        kinds = "".join(f'<option value="{k.value}"{" selected" if k is d.found.kind else ""}>'
                        f"{escape(_kind(k))}</option>" for k in DeadlineKind)
        fields = (f'<input type="hidden" name="deadline" value="{escape(d.id)}">'
                  f'<select name="kind" aria-label="kind">{kinds}</select> '
                  f'<input type="date" name="due" value="{d.found.due.isoformat()}" aria-label="due date"> ')
        decide = (_button(meeting_id, mail.id, csrf, "accept-deadline", "Accept", fields)
                  + _button(meeting_id, mail.id, csrf, "reject-deadline", "Reject",
                            f'<input type="hidden" name="deadline" value="{escape(d.id)}">'))
        rows.append(f"<tr><td>{escape(_kind(d.found.kind))}</td><td>{d.found.due.isoformat()}</td>"
                    f"<td>{d.found.confidence:.2f}</td><td>{escape(d.state.value)}</td>"
                    f"<td>{escape(d.found.excerpt)}</td><td>{decide}</td></tr>")
    table = (f"<table><tr><th>Kind</th><th>Due</th><th>Confidence</th><th>State</th><th>Found in</th><th></th></tr>"
             f"{''.join(rows)}</table>") if rows else ""
    text = f'<details><summary>Text</summary><div class="letter">{escape(mail.parsed.text)}</div></details>' \
        if mail.parsed is not None else "<p>The message could not be read.</p>"
    return f"<section>{head}<p>{' '.join(actions)}</p>{table}{text}</section>"


async def console_mail(request: web.Request) -> web.Response:
    meeting_id = MeetingId(request.match_info["meeting"])
    guarded = await guard_page(request, meeting_id)
    if isinstance(guarded, web.Response):
        return guarded  # the login form for a stranger, 403 for someone without a role here
    who = await request.app[CONSOLE].require(request, meeting_id, STAFF)
    intake = request.app[MAIL]
    waiting = await intake.waiting(meeting_id)
    cards = "".join(_review_card(meeting_id, m, who.csrf) for m in waiting)
    body = (f'<p class="meta"><a href="/console/{quote(meeting_id)}">Console — {escape(meeting_id)}</a></p>'
            f"<h1>Mail waiting for a moderator</h1>"
            + (cards or "<p>Nothing waits: no quarantined message, no relay to approve, no deadline to confirm.</p>"))
    return _page("Mail — console", body, private=True)


async def console_mail_action(request: web.Request) -> web.Response:
    meeting_id = MeetingId(request.match_info["meeting"])
    who = await request.app[CONSOLE].require(request, meeting_id, STAFF, csrf=True)
    intake = request.app[MAIL]
    mail_id = _mail_id(request)
    form = await request.post()
    action = str(form.get("action", ""))
    by = f"console:{who.subject}"
    try:
        if action == "release":
            await intake.release(meeting_id, mail_id, by)
        elif action == "relay":
            await intake.relay(meeting_id, mail_id, by)
        elif action == "decline":
            await intake.decline(meeting_id, mail_id, by)
        elif action in ("accept-deadline", "reject-deadline"):
            kind, due = _correction(form) if action == "accept-deadline" else (None, None)
            await intake.decide_deadline(meeting_id, mail_id, str(form.get("deadline", ""))[:64],
                                         accept=action == "accept-deadline", by=by, kind=kind, due=due)
        else:
            raise InvalidInput([Problem("action", f"{action[:30]!r} is not one of release, relay, decline, "
                                                  "accept-deadline, reject-deadline")])
    except ConcurrentChange as e:
        return _page("Changed meanwhile", f"<p>{escape(str(e))}</p><p><a href=\"/console/{quote(meeting_id)}/mail\">"
                                          "Back to the mail</a></p>", status=409, private=True)
    return web.Response(status=303, headers={"Location": f"/console/{quote(meeting_id)}/mail#mail-{mail_id}",
                                             "Cache-Control": "no-store"})


def _correction(form: Any) -> tuple[DeadlineKind | None, date | None]:
    raw_kind, raw_due = str(form.get("kind", "")), str(form.get("due", ""))
    try:
        kind = DeadlineKind(raw_kind) if raw_kind else None
    except ValueError:
        raise InvalidInput([Problem("kind", f"{raw_kind[:30]!r} is not a deadline kind")]) from None
    try:
        due = date.fromisoformat(raw_due) if raw_due else None
    except ValueError:
        raise InvalidInput([Problem("due", f"{raw_due[:30]!r} is not a date (YYYY-MM-DD)")]) from None
    return kind, due


def add_routes(app: web.Application, intake: MailIntake, key: bytes | None) -> None:
    app[MAIL] = intake
    if key:
        app[MAIL_KEY] = key
    r = app.router
    m = r"{meeting:[a-z0-9-]+}"
    r.add_post(f"/api/v1/meetings/{m}/mail", receive_signed)
    r.add_get(f"/api/v1/meetings/{m}/announcements", list_api)
    r.add_get(rf"/api/v1/meetings/{m}/announcements/{{id:\d+}}", one_api)
    r.add_get(f"/meetings/{m}/announcements", list_page)
    r.add_get(rf"/meetings/{m}/announcements/{{id:\d+}}", one_page)
    if CONSOLE in app:
        r.add_get(f"/console/{m}/mail", console_mail)
        r.add_post(rf"/console/{m}/mail/{{id:\d+}}", console_mail_action)
