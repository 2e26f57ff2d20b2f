"""Speaking-slot requests on the web (JSON): the segments open for requests, a delegate's request
(filed, read, changed and withdrawn until the deadline), the secretariat's list with the draft
order by protocol precedence and its review, the public rolling list of speakers of a session,
and each request's private calendar feed (/ical/slot/{token}.ics).

Web delegates have no account: as for the live list of speakers (floor.py), the first request
sets an HttpOnly, SameSite=Strict cookie of 128 random bits, and "web:<cookie>" is who they are.
That cookie is never shown to anybody: the secretariat sees only which channel a request came
from. Delegates' writes carry no CSRF token: the cookie is SameSite=Strict (a cross-site POST
arrives without it, as a stranger) and gives no authority beyond the browser's own requests; a
browser-announced cross-site write (Sec-Fetch-Site, Origin) is refused all the same, so that a
foreign page cannot plant a request or replace the delegate's cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web

from floorbridge.adapters.slot_service import SlotService
from floorbridge.bots.conversation import new_feed_token
from floorbridge.calendar.slots import render_slot_calendar
from floorbridge.core.agenda import Session
from floorbridge.core.chats import Role
from floorbridge.core.errors import InvalidInput, NotFound, Problem
from floorbridge.core.ids import MeetingId, SessionId, is_slug
from floorbridge.core.meeting import Meeting
from floorbridge.core.slots import (
    FIELD_LIMITS,
    REASON_LIMIT,
    Mode,
    ProtocolRank,
    SlotCall,
    SlotForm,
    SlotRequest,
    SlotStatus,
    Stakeholder,
    check_form,
    draft_order,
    parse_choice,
    rolling_list,
)
from floorbridge.core.speakers import NotAllowed, QueueRefused

from .conditional import not_modified
from .console_auth import CONSOLE, Who
from .floor import DELEGATE_COOKIE
from .keys import OPTIONS
from .limits import read_payload, shown, whole_number

SLOTS = web.AppKey("slots", SlotService)
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
COOKIE_DAYS = 180  # the cookie must outlive the segment: requests are changed weeks after filing
MAX_MINUTES = 60
MAX_LANGUAGES = 30
FORM_FIELDS = ("name", "title", "delegation", "stakeholder", "rank", "session", "mode", "language")
CALL_FIELDS = ("title", "deadline", "sessions", "minutes", "one_per_delegation", "modes", "languages")
REVIEW_FIELDS = ("decision", "reason", "session", "order", "start", "minutes", "expected_updated_at", "csrf")
DECISIONS = (SlotStatus.APPROVED, SlotStatus.WAITLISTED, SlotStatus.REJECTED)

E = TypeVar("E", Stakeholder, ProtocolRank, Mode)


# ---------------------------------------------------------------- shared pieces


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def deadline_text(meeting: Meeting, call: SlotCall) -> str:
    """The deadline as people at the meeting read it: "30 April 2025 23:59 CEST (Europe/Zurich)"."""
    local = meeting.local(call.deadline)
    return f"{local:%d %B %Y %H:%M} {local.tzname() or ''} ({meeting.timezone})".replace("  ", " ")


def deadline_refusal(meeting: Meeting, call: SlotCall, *, changing: bool = False) -> QueueRefused:
    what = "changed or withdrawn" if changing else "filed"
    return QueueRefused(f"the deadline for speaking-slot requests for {call.title} passed on "
                        f"{deadline_text(meeting, call)}; requests can no longer be {what}", "deadline")


def feed_url(request: web.Request, token: str) -> str:
    return f"{request.app[OPTIONS].public_url.rstrip('/')}/ical/slot/{token}.ics"


def delegate_key(request: web.Request) -> str:
    value = request.cookies.get(DELEGATE_COOKIE, "")
    return f"web:{value}" if _COOKIE_VALUE.match(value) else ""


def identity(request: web.Request) -> tuple[str, str]:
    """(requester key, fresh cookie value to set or "")."""
    key = delegate_key(request)
    if key:
        return key, ""
    fresh = secrets.token_urlsafe(16)
    return f"web:{fresh}", fresh


def set_identity(response: web.StreamResponse, request: web.Request, fresh: str) -> None:
    if fresh:
        response.set_cookie(DELEGATE_COOKIE, fresh, httponly=True, samesite="Strict", secure=request.secure,
                            max_age=COOKIE_DAYS * 86400, path="/")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def refuse_cross_site(request: web.Request) -> None:
    """Delegates' writes come from this site's own pages or from non-browser clients."""
    site = request.headers.get("Sec-Fetch-Site", "")
    if site and site not in ("same-origin", "none"):
        raise NotAllowed("requests from other sites cannot file, change or withdraw speaking-slot requests")
    origin = request.headers.get("Origin")
    if origin is not None:
        allowed = {_origin(request.app[OPTIONS].public_url), f"{request.scheme}://{request.host}".lower()}
        if origin.lower() not in allowed:
            raise NotAllowed("requests from other sites cannot file, change or withdraw speaking-slot requests")


async def require_secretariat(request: web.Request, meeting_id: MeetingId, *, csrf: bool) -> Who:
    auth = request.app.get(CONSOLE)
    if auth is None:
        raise web.HTTPForbidden(text="the console is not enabled on this server")
    return await auth.require(request, meeting_id, (Role.SECRETARIAT,), csrf=csrf)


def _unknown(data: Mapping[str, Any], known: tuple[str, ...], what: str, problems: list[Problem]) -> None:
    for name in data:
        if name not in known:
            problems.append(Problem(str(name)[:60], f"is not a field of {what} (fields: {', '.join(known)})"))


def _text(data: Mapping[str, Any], name: str, problems: list[Problem], *, limit: int, required: bool = True) -> str:
    raw = data.get(name, "")
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        problems.append(Problem(name, "must be text"))
        return ""
    value = " ".join(raw.split())
    if required and not value:
        problems.append(Problem(name, "is required"))
    elif len(value) > limit:
        problems.append(Problem(name, f"is longer than {limit} characters"))
    return value


def _choice(kind: type[E], data: Mapping[str, Any], name: str, problems: list[Problem]) -> E | None:
    raw = data.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        problems.append(Problem(name, "is required"))
        return None
    if not isinstance(raw, str):
        problems.append(Problem(name, "must be text"))
        return None
    try:
        return parse_choice(kind, raw.replace("-", "_"), name)
    except InvalidInput as exc:
        problems.extend(exc.problems)
        return None


def _moment(data: Mapping[str, Any], name: str, problems: list[Problem], *, required: bool) -> datetime | None:
    raw = data.get(name)
    if raw is None or raw == "":
        if required:
            problems.append(Problem(name, "is required (ISO 8601 with an offset, e.g. 2025-04-30T23:59:00+02:00)"))
        return None
    if not isinstance(raw, str):
        problems.append(Problem(name, "must be an ISO 8601 date and time"))
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        problems.append(Problem(name, f"{raw[:60]!r} is not an ISO 8601 date and time "
                                      "(e.g. 2025-04-30T23:59:00+02:00)"))
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        problems.append(Problem(name, f"{raw[:60]!r} needs a UTC offset (e.g. +02:00 or Z)"))
        return None
    return value


def _whole(data: Mapping[str, Any], name: str, problems: list[Problem], *, low: int, high: int,
           default: int | None = None) -> int | None:
    raw = data.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, str) and (number := whole_number(raw.strip())) is not None:  # form-encoded numbers
        raw = number
    if isinstance(raw, bool) or not isinstance(raw, int):
        problems.append(Problem(name, "must be a whole number"))
        return None
    if not low <= raw <= high:
        problems.append(Problem(name, f"must be between {low} and {high}, not {shown(raw)}"))
        return None
    return raw


def parse_slot_form(data: Mapping[str, Any], call: SlotCall) -> SlotForm:
    """A delegate's form from JSON or form fields; InvalidInput names every bad field at once."""
    problems: list[Problem] = []
    name = _text(data, "name", problems, limit=FIELD_LIMITS["name"])
    title = _text(data, "title", problems, limit=FIELD_LIMITS["title"])
    delegation = _text(data, "delegation", problems, limit=FIELD_LIMITS["delegation"])
    stakeholder = _choice(Stakeholder, data, "stakeholder", problems)
    rank = _choice(ProtocolRank, data, "rank", problems)
    # A rule with a single possibility needs no answer.
    defaults = {"session": call.sessions[0] if len(call.sessions) == 1 else "",
                "mode": next(iter(call.modes)).value if len(call.modes) == 1 else "",
                "language": call.languages[0] if len(call.languages) == 1 else ""}
    filled = {k: (data.get(k) if data.get(k) not in (None, "") else defaults[k]) for k in defaults}
    mode = _choice(Mode, filled, "mode", problems)
    session = _text(filled, "session", problems, limit=128)
    language = _text(filled, "language", problems, limit=10).lower()
    form = SlotForm(name, title, delegation, stakeholder or Stakeholder.GOVERNMENT, rank or ProtocolRank.OTHER,
                    SessionId(session), mode or Mode.IN_ROOM, language)
    named = {p.where for p in problems}
    try:
        check_form(call, form)
    except InvalidInput as exc:
        problems += [p for p in exc.problems if p.where not in named]
    if problems:
        raise InvalidInput(problems)
    return form


async def meeting_sessions(service: SlotService, meeting_id: MeetingId) -> tuple[Meeting, dict[str, Session]]:
    meeting = await service.agenda.get_meeting(meeting_id)
    version = await service.agenda.latest_version(meeting_id)
    return meeting, ({ps.session.id: ps.session for ps in version.sessions} if version is not None else {})


def _session_json(sid: str, session: Session | None) -> dict[str, Any]:
    if session is None:
        return {"id": sid, "title": sid, "start": None, "end": None}
    return {"id": sid, "title": session.title, "start": _time(session.start), "end": _time(session.end)}


def call_json(request: web.Request, call: SlotCall, meeting: Meeting, sessions: Mapping[str, Session],
              now: datetime) -> dict[str, Any]:
    public = request.app[OPTIONS].public_url.rstrip("/")
    return {
        "id": call.id,
        "meeting": call.meeting_id,
        "title": call.title,
        "deadline": _time(call.deadline),
        "deadline_local": meeting.local(call.deadline).isoformat(),
        "timezone": meeting.timezone,
        "open": call.is_open(now),
        "sessions": [_session_json(sid, sessions.get(sid)) for sid in call.sessions],
        "minutes": call.minutes,
        "one_per_delegation": call.one_per_delegation,
        "modes": sorted(m.value for m in call.modes),
        "languages": list(call.languages),
        "form_url": f"{public}/meetings/{call.meeting_id}/slots/{call.id}",
    }


def form_json(form: SlotForm) -> dict[str, Any]:
    return {"name": form.name, "title": form.title, "delegation": form.delegation,
            "stakeholder": form.stakeholder.value, "rank": form.rank.slug, "session": form.session,
            "mode": form.mode.value, "language": form.language}


def request_json(request: web.Request, r: SlotRequest, *, owner: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ref": r.ref,
        "meeting": r.meeting_id,
        "call": r.call_id,
        "status": r.status.value,
        "reason": r.reason,
        "received_at": _time(r.received_at),
        # Full precision: the secretariat sends it back as expected_updated_at.
        "updated_at": r.updated_at.astimezone(UTC).isoformat() if r.updated_at else None,
        "form": form_json(r.form),
        "slot": ({"session": r.approved_session, "order": r.order, "start": _time(r.slot_start),
                  "minutes": r.slot_minutes} if r.status is SlotStatus.APPROVED else None),
    }
    if owner:
        out["feed_url"] = feed_url(request, r.feed_token)
    else:
        out["channel"] = r.requester.partition(":")[0]  # never the requester key: a web key is a cookie
    return out


# ---------------------------------------------------------------- public


async def list_calls(request: web.Request) -> web.Response:
    service = request.app[SLOTS]
    meeting_id = MeetingId(request.match_info["meeting"])
    meeting, sessions = await meeting_sessions(service, meeting_id)
    now = service.clock()
    calls = await service.store.calls(meeting_id)
    return web.json_response({
        "meeting": meeting_id, "timezone": meeting.timezone, "server_time": _time(now),
        "calls": [call_json(request, c, meeting, sessions, now) for c in calls],
    }, headers={"Cache-Control": "no-cache"})


async def rolling(request: web.Request) -> web.Response:
    service = request.app[SLOTS]
    meeting_id, session_id = MeetingId(request.match_info["meeting"]), SessionId(request.match_info["session"])
    meeting, sessions = await meeting_sessions(service, meeting_id)
    session = sessions.get(session_id)
    if session is None:
        raise NotFound(f"{meeting_id} has no session {session_id!r}")
    speakers = rolling_list(await service.store.requests(meeting_id), session_id)
    return web.json_response({
        "meeting": meeting_id,
        "timezone": meeting.timezone,
        "session": _session_json(session_id, session),
        "speakers": [{"order": r.order, "name": r.form.name, "title": r.form.title, "delegation": r.form.delegation,
                      "start": _time(r.slot_start),
                      "start_local": meeting.local(r.slot_start).isoformat() if r.slot_start else None,
                      "minutes": r.slot_minutes} for r in speakers],
    }, headers={"Cache-Control": "no-cache"})


# ---------------------------------------------------------------- delegates


async def open_call_of(service: SlotService, meeting_id: MeetingId, call_id: str) -> tuple[SlotCall, Meeting]:
    call = await service.call(meeting_id, call_id)
    meeting = await service.agenda.get_meeting(meeting_id)
    if not call.is_open(service.clock()):
        raise deadline_refusal(meeting, call)
    return call, meeting


async def file_request(request: web.Request, service: SlotService, meeting_id: MeetingId, call: SlotCall,
                       meeting: Meeting, data: Mapping[str, Any]) -> tuple[SlotRequest, str]:
    """Check and file a delegate's request; (the request, a fresh cookie value or "")."""
    form = parse_slot_form(data, call)
    key, fresh = identity(request)
    try:
        filed = await service.submit(meeting_id, call.id, form, key)
    except QueueRefused as exc:
        if exc.code == "deadline":
            raise deadline_refusal(meeting, call) from None
        raise
    return filed, fresh


async def submit(request: web.Request) -> web.Response:
    service = request.app[SLOTS]
    meeting_id = MeetingId(request.match_info["meeting"])
    refuse_cross_site(request)
    call, meeting = await open_call_of(service, meeting_id, request.match_info["call"])
    data = await read_payload(request)
    filed, fresh = await file_request(request, service, meeting_id, call, meeting, data)
    response = web.json_response({"ref": filed.ref, "status": filed.status.value,
                                  "feed_url": feed_url(request, filed.feed_token),
                                  "request": request_json(request, filed, owner=True)}, status=201)
    set_identity(response, request, fresh)
    return response


async def _mine(request: web.Request) -> tuple[SlotService, str, SlotCall, SlotRequest]:
    service = request.app[SLOTS]
    ref = request.match_info["ref"].upper()
    key = delegate_key(request)
    if not key:
        raise NotFound(f"you have no speaking-slot request {ref!r}")
    call, mine = await service.mine(ref, key)
    return service, key, call, mine


async def get_mine(request: web.Request) -> web.Response:
    service, _key, call, mine = await _mine(request)
    body = request_json(request, mine, owner=True)
    meeting = await service.agenda.get_meeting(call.meeting_id)
    body["deadline"] = _time(call.deadline)
    body["can_change"] = mine.open and call.is_open(service.clock())
    body["call_title"] = call.title
    body["deadline_local"] = meeting.local(call.deadline).isoformat()
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def change_mine(request: web.Request) -> web.Response:
    refuse_cross_site(request)
    service, key, call, mine = await _mine(request)
    meeting = await service.agenda.get_meeting(call.meeting_id)
    if not call.is_open(service.clock()):
        raise deadline_refusal(meeting, call, changing=True)
    form = parse_slot_form(await read_payload(request), call)
    try:
        changed = await service.change(mine.ref, form, key)
    except QueueRefused as exc:
        if exc.code == "deadline":
            raise deadline_refusal(meeting, call, changing=True) from None
        raise
    return web.json_response(request_json(request, changed, owner=True))


async def withdraw_mine(request: web.Request) -> web.Response:
    refuse_cross_site(request)
    service, key, call, mine = await _mine(request)
    meeting = await service.agenda.get_meeting(call.meeting_id)
    if not call.is_open(service.clock()):
        raise deadline_refusal(meeting, call, changing=True)
    try:
        withdrawn = await service.withdraw(mine.ref, key)
    except QueueRefused as exc:
        if exc.code == "deadline":
            raise deadline_refusal(meeting, call, changing=True) from None
        raise
    return web.json_response(request_json(request, withdrawn, owner=True))


# ---------------------------------------------------------------- the secretariat


async def put_call(request: web.Request) -> web.Response:
    service = request.app[SLOTS]
    meeting_id, call_id = MeetingId(request.match_info["meeting"]), request.match_info["call"]
    await require_secretariat(request, meeting_id, csrf=True)
    data = await read_payload(request, json_only=True)
    meeting, sessions = await meeting_sessions(service, meeting_id)
    problems: list[Problem] = []
    if not is_slug(call_id):
        problems.append(Problem("call", f"{call_id[:60]!r} is not a slug (a-z, 0-9 and inner '-')"))
    _unknown(data, CALL_FIELDS, "a speaking-slot call", problems)
    title = _text(data, "title", problems, limit=200)
    deadline = _moment(data, "deadline", problems, required=True)
    chosen: list[SessionId] = []
    raw_sessions = data.get("sessions")
    if not isinstance(raw_sessions, list) or not all(isinstance(s, str) for s in raw_sessions):
        problems.append(Problem("sessions", "must be a list of session ids"))
    elif len(raw_sessions) > len(sessions):
        problems.append(Problem("sessions", f"lists {len(raw_sessions)} sessions; {meeting_id} has {len(sessions)}"))
    elif not raw_sessions:
        problems.append(Problem("sessions", "name at least one session"))
    else:
        for sid in dict.fromkeys(raw_sessions):
            if sid in sessions:
                chosen.append(SessionId(sid))
            else:
                problems.append(Problem("sessions", f"{sid[:60]!r} is not a session of {meeting_id}"))
    minutes = _whole(data, "minutes", problems, low=1, high=MAX_MINUTES, default=3)
    one = data.get("one_per_delegation", True)
    if not isinstance(one, bool):
        problems.append(Problem("one_per_delegation", "must be true or false"))
    modes: set[Mode] = set(Mode)
    if "modes" in data:
        raw = data["modes"]
        if not isinstance(raw, list) or not raw or len(raw) > len(Mode) or not all(isinstance(m, str) for m in raw):
            problems.append(Problem("modes", f"must be a non-empty list of: {', '.join(m.value for m in Mode)}"))
        else:
            modes = set()
            for m in raw:
                try:
                    modes.add(Mode(m))
                except ValueError:
                    problems.append(Problem("modes", f"{m[:30]!r} is not one of: {', '.join(x.value for x in Mode)}"))
    languages: tuple[str, ...] | None = None
    if "languages" in data:
        raw = data["languages"]
        if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
            problems.append(Problem("languages", "must be a non-empty list of language codes, e.g. [\"en\", \"fr\"]"))
        elif len(raw) > MAX_LANGUAGES:
            problems.append(Problem("languages", f"lists {len(raw)} languages; at most {MAX_LANGUAGES}"))
        else:
            bad = [x for x in raw if not _LANGUAGE.match(x)]
            problems += [Problem("languages", f"{x[:20]!r} is not a language code (two or three letters, "
                                              "lower case)") for x in bad]
            languages = tuple(dict.fromkeys(raw))
    if problems:
        raise InvalidInput(problems)
    assert deadline is not None and minutes is not None
    existed = await service.store.get_call(meeting_id, call_id) is not None
    call = SlotCall(meeting_id, call_id, title, deadline, tuple(chosen), minutes=minutes, one_per_delegation=bool(one),
                    modes=frozenset(modes), **({"languages": languages} if languages is not None else {}))
    await service.open_call(call)
    return web.json_response(call_json(request, call, meeting, sessions, service.clock()),
                             status=200 if existed else 201)


async def list_requests(request: web.Request) -> web.Response:
    service = request.app[SLOTS]
    meeting_id, call_id = MeetingId(request.match_info["meeting"]), request.match_info["call"]
    await require_secretariat(request, meeting_id, csrf=False)
    call = await service.call(meeting_id, call_id)
    meeting, sessions = await meeting_sessions(service, meeting_id)
    requests = await service.store.requests(meeting_id, call_id)
    counts = Counter(r.status.value for r in requests)
    return web.json_response({
        "call": call_json(request, call, meeting, sessions, service.clock()),
        "counts": {s.value: counts.get(s.value, 0) for s in SlotStatus},
        "requests": [request_json(request, r, owner=False) for r in requests],
        "draft_order": [r.ref for r in draft_order(requests)],
    }, headers={"Cache-Control": "no-store"})


async def _meeting_request(service: SlotService, meeting_id: MeetingId, ref: str) -> SlotRequest:
    current = await service.store.get_request(ref)
    if current is None or current.meeting_id != meeting_id:
        raise NotFound(f"{meeting_id} has no speaking-slot request {ref!r}")
    return current


async def review_request(request: web.Request) -> web.Response:
    service = request.app[SLOTS]
    meeting_id, ref = MeetingId(request.match_info["meeting"]), request.match_info["ref"].upper()
    await require_secretariat(request, meeting_id, csrf=True)
    data = await read_payload(request)
    current = await _meeting_request(service, meeting_id, ref)
    call = await service.call(meeting_id, current.call_id)
    problems: list[Problem] = []
    _unknown(data, REVIEW_FIELDS, "a review", problems)
    raw = data.get("decision")
    decision = next((d for d in DECISIONS if d.value == raw), None)
    if decision is None:
        choices = ", ".join(d.value for d in DECISIONS)
        problems.append(Problem("decision", f"{str(raw)[:30]!r} is not one of: {choices}"))
    reason = _text(data, "reason", problems, limit=REASON_LIMIT, required=decision is SlotStatus.REJECTED)
    session_id = _text(data, "session", problems, limit=128, required=False) or None
    order = _whole(data, "order", problems, low=1, high=10_000)
    start = _moment(data, "start", problems, required=decision is SlotStatus.APPROVED)
    minutes = _whole(data, "minutes", problems, low=1, high=MAX_MINUTES, default=call.minutes)
    expected = _moment(data, "expected_updated_at", problems, required=False)
    if decision is SlotStatus.APPROVED:
        if order is None and "order" not in {p.where for p in problems}:
            problems.append(Problem("order", "is required for an approval (1 for the first speaker)"))
        sid = SessionId(session_id or current.form.session)
        if sid not in call.sessions:
            problems.append(Problem("session", f"{sid!r} is not one of the segment's sessions "
                                               f"({', '.join(call.sessions)})"))
    if problems:
        raise InvalidInput(problems)
    assert decision is not None
    decided = await service.decide(
        ref, decision, meeting_id=meeting_id, reason=reason,
        session=SessionId(session_id) if session_id else None, order=order or 0, start=start,
        minutes=minutes or 0, expected_updated_at=expected)
    return web.json_response(request_json(request, decided, owner=False))


# ---------------------------------------------------------------- the private feed


async def _renew_feed(service: SlotService, request: SlotRequest) -> SlotRequest:
    """A new private calendar link for `request`; the old one answers 404 from now on. The change
    bumps updated_at, so a review prepared on the old copy is refused rather than restoring the
    old token."""
    renewed = replace(request, feed_token=new_feed_token(), updated_at=service.clock())
    await service.store.update_request(renewed, request.updated_at, [])
    return renewed


async def renew_my_feed(request: web.Request) -> web.Response:
    """The requester's own calendar link, replaced (it leaked, it was shared by mistake)."""
    refuse_cross_site(request)
    service, _key, _call, mine = await _mine(request)
    renewed = await _renew_feed(service, mine)
    return web.json_response({"ref": renewed.ref, "feed_url": feed_url(request, renewed.feed_token),
                              "revoked": True}, headers={"Cache-Control": "no-store"})


async def revoke_feed(request: web.Request) -> web.Response:
    """The secretariat revokes a request's calendar link; the requester finds the new one where
    they find their request (the web, `slot mine` in chat). The new link is not shown here."""
    service = request.app[SLOTS]
    meeting_id, ref = MeetingId(request.match_info["meeting"]), request.match_info["ref"].upper()
    await require_secretariat(request, meeting_id, csrf=True)
    current = await _meeting_request(service, meeting_id, ref)
    renewed = await _renew_feed(service, current)
    return web.json_response({"ref": renewed.ref, "revoked": True})


async def slot_feed(request: web.Request) -> web.Response:
    service = request.app[SLOTS]
    token = request.match_info["token"]
    if not _TOKEN.match(token):
        raise NotFound("no such feed")
    found = await service.store.request_by_feed_token(token)
    if found is None or not hmac.compare_digest(found.feed_token.encode(), token.encode()):
        raise NotFound("no such feed")
    meeting, sessions = await meeting_sessions(service, found.meeting_id)
    session = sessions.get(found.approved_session or found.form.session)
    body = render_slot_calendar(meeting, found, session)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=300", "Content-Type": "text/calendar; charset=utf-8",
               "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}
    changed = found.updated_at or found.received_at
    if not_modified(request.headers.get("If-None-Match"), None, (etag,), changed):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers)


def add_routes(app: web.Application, service: SlotService) -> None:
    app[SLOTS] = service
    r = app.router
    meeting = "/api/v1/meetings/{meeting}"
    r.add_get(meeting + "/slot-calls", list_calls)
    r.add_put(meeting + "/slot-calls/{call}", put_call)
    r.add_post(meeting + "/slot-calls/{call}/requests", submit)
    r.add_get(meeting + "/slot-calls/{call}/requests", list_requests)
    r.add_post(meeting + "/slot-requests/{ref}/review", review_request)
    r.add_get(meeting + "/sessions/{session}/rolling-list", rolling)
    r.add_get("/api/v1/slot-requests/{ref}", get_mine)
    r.add_put("/api/v1/slot-requests/{ref}", change_mine)
    r.add_delete("/api/v1/slot-requests/{ref}", withdraw_mine)
    r.add_post(meeting + "/slot-requests/{ref}/feed-token", revoke_feed)
    r.add_post("/api/v1/slot-requests/{ref}/feed-token", renew_my_feed)
    r.add_get("/ical/slot/{token}.ics", slot_feed)
