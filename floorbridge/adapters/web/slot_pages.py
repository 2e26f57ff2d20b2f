"""HTML pages for speaking slots, without JavaScript: a delegate's request form, its
acknowledgement (the reference and the private calendar link), and the public rolling list of
speakers of a session, readable on a phone.

Every piece of text goes through html.escape; the pages carry the site's strict CSP.

The form has no CSRF token, on purpose and safely: the only identity it uses is the delegate
cookie, which is SameSite=Strict (a cross-site POST arrives without it, as a stranger) and carries
no authority beyond this browser's own requests; there is no session or role behind it. A POST a
browser marks as cross-site (Sec-Fetch-Site, or an Origin other than this site) is refused anyway,
so that a foreign page can neither plant a request nor replace the delegate's cookie.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from aiohttp import web

from floorbridge.adapters.slot_service import SlotService
from floorbridge.bots.i18n import LANGUAGE_NAMES
from floorbridge.bots.slot_dialogue import MODE_LABELS, RANK_LABELS, STAKEHOLDER_LABELS, STATUS_LABELS
from floorbridge.core.agenda import Session
from floorbridge.core.errors import InvalidInput, NotFound, Problem
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.meeting import Meeting
from floorbridge.core.slots import FIELD_LIMITS, ProtocolRank, SlotCall, SlotRequest, Stakeholder, rolling_list
from floorbridge.core.speakers import QueueRefused

from .links import webcal
from .pages import html_page
from .slots import (
    SLOTS,
    deadline_text,
    delegate_key,
    feed_url,
    file_request,
    meeting_sessions,
    refuse_cross_site,
    set_identity,
)

_STYLE = """body{font-family:system-ui,sans-serif;max-width:40rem;margin:auto;padding:1rem;line-height:1.5}
label{display:block;font-weight:600;margin-top:1rem}input,select,button{font:inherit;width:100%;box-sizing:border-box;
padding:.5rem;margin-top:.25rem}button{margin-top:1.5rem;font-weight:600}.error{color:#a00;margin:.25rem 0 0}
.problems{border:2px solid #a00;padding:.5rem 1rem}.ref{font-size:1.4rem;font-weight:700;letter-spacing:.05em}
ol.speakers{padding-left:1.5rem}ol.speakers li{margin:.6rem 0}.when{color:#555;white-space:nowrap}
.hint{color:#555;font-size:.95rem}"""


def _page(title: str, body: str, *, status: int = 200, private: bool = False) -> web.Response:
    return html_page(title, body, style=_STYLE, status=status, cache="no-store" if private else "no-cache")


def _session_label(meeting: Meeting, sid: str, session: Session | None) -> str:
    if session is None:
        return sid
    start, end = meeting.local(session.start), meeting.local(session.end)
    return f"{start:%a %d %B, %H:%M}–{end:%H:%M} — {session.title}"


# ---------------------------------------------------------------- the form


def _select(name: str, label: str, options: Sequence[tuple[str, str]], chosen: str, errors: Mapping[str, str]) -> str:
    opts = ['<option value="">— choose —</option>'] if len(options) > 1 else []
    for value, text in options:
        selected = " selected" if value == chosen else ""
        opts.append(f'<option value="{escape(value)}"{selected}>{escape(text)}</option>')
    return _field(name, label, f'<select id="{name}" name="{name}" required{_invalid(name, errors)}>'
                               f'{"".join(opts)}</select>', errors)


def _input(name: str, label: str, value: str, errors: Mapping[str, str], *, autocomplete: str = "",
           hint: str = "") -> str:
    auto = f' autocomplete="{autocomplete}"' if autocomplete else ""
    limit = FIELD_LIMITS.get(name, 200)
    control = (f'<input id="{name}" name="{name}" type="text" value="{escape(value)}" maxlength="{limit}" '
               f'required{auto}{_invalid(name, errors)}>')
    if hint:
        control = f'<span class="hint" id="{name}-hint">{escape(hint)}</span>' + control
    return _field(name, label, control, errors)


def _invalid(name: str, errors: Mapping[str, str]) -> str:
    return f' aria-invalid="true" aria-describedby="{name}-error"' if name in errors else ""


def _field(name: str, label: str, control: str, errors: Mapping[str, str]) -> str:
    error = f'<p class="error" id="{name}-error">{escape(errors[name])}</p>' if name in errors else ""
    return f'<label for="{name}">{escape(label)}</label>{control}{error}'


def _mine_block(request: web.Request, mine: Sequence[SlotRequest]) -> str:
    if not mine:
        return ""
    items = "".join(
        f'<li><span class="ref">{escape(r.ref)}</span> — {escape(STATUS_LABELS[r.status])} · '
        f'<a href="{escape(webcal(feed_url(request, r.feed_token)))}">your calendar</a></li>'
        for r in mine
    )
    return f"<h2>Your requests from this browser</h2><ul>{items}</ul>"


async def _form_page(request: web.Request, *, values: Mapping[str, Any] | None = None,
                     problems: Sequence[Problem] = (), refusal: str = "", status: int = 200) -> web.Response:
    service = request.app[SLOTS]
    meeting_id = MeetingId(request.match_info["meeting"])
    call = await service.call(meeting_id, request.match_info["call"])
    meeting, sessions = await meeting_sessions(service, meeting_id)
    is_open = call.is_open(service.clock())
    parts = [f"<h1>{escape(call.title)}</h1>", f"<p>{escape(meeting.title)}</p>"]
    deadline = escape(deadline_text(meeting, call))
    if is_open:
        parts.append(f"<p>Request a speaking slot by <strong>{deadline}</strong>.</p>")
    else:
        parts.append(f"<p><strong>Requests closed on {deadline}.</strong></p>")
    rules = [f"Statements are limited to {call.minutes} minutes."]
    if call.one_per_delegation:
        rules.append("One speaker per delegation.")
    rules.append("The secretariat draws up the list of speakers in order of protocol precedence.")
    parts.append(f'<p class="hint">{escape(" ".join(rules))}</p>')
    key = delegate_key(request)
    if key:
        mine = [r for r in await service.store.requests_of(key) if r.meeting_id == meeting_id and r.call_id == call.id]
        parts.append(_mine_block(request, mine))
    errors: dict[str, str] = {}
    general: list[str] = [refusal] if refusal else []
    fields = {"name", "title", "delegation", "stakeholder", "rank", "session", "mode", "language"}
    for problem in problems:
        if problem.where in fields and problem.where not in errors:
            errors[problem.where] = problem.what
        elif problem.where not in fields:
            general.append(str(problem))
    if errors or general:
        listed = "".join(f"<li>{escape(x)}</li>" for x in general)
        count = f"<p>Please correct {len(errors)} field(s) below.</p>" if errors else ""
        parts.append(f'<div class="problems" role="alert">{count}{"<ul>" + listed + "</ul>" if listed else ""}</div>')
    if is_open:
        v = {k: str(x) for k, x in (values or {}).items() if isinstance(x, str)}
        session_options = [(sid, _session_label(meeting, sid, sessions.get(sid))) for sid in call.sessions]
        form = [
            '<form method="post">',
            _input("name", "Your name (as the chair will announce it)", v.get("name", ""), errors,
                   autocomplete="name"),
            _input("title", "Title or function", v.get("title", ""), errors, autocomplete="organization-title"),
            _input("delegation", "Delegation (country or organisation)", v.get("delegation", ""), errors,
                   autocomplete="organization"),
            _select("stakeholder", "Stakeholder group", [(s.value, STAKEHOLDER_LABELS[s]) for s in Stakeholder],
                    v.get("stakeholder", ""), errors),
            _select("rank", "Protocol rank", [(r.slug, RANK_LABELS[r]) for r in ProtocolRank], v.get("rank", ""),
                    errors),
            _select("session", f"Session (times in {meeting.timezone})", session_options, v.get("session", ""),
                    errors),
            _select("mode", "How you will speak", [(m.value, MODE_LABELS[m]) for m in sorted(call.modes)],
                    v.get("mode", ""), errors),
            _select("language", "Language of the statement",
                    [(c, LANGUAGE_NAMES.get(c, c)) for c in call.languages], v.get("language", ""), errors),
            "<button type=\"submit\">Request a speaking slot</button></form>",
        ]
        parts.append("".join(form))
    return _page(f"{call.title} — speaking slot", "".join(parts), status=status, private=True)


async def form_page(request: web.Request) -> web.Response:
    return await _form_page(request)


async def post_form(request: web.Request) -> web.Response:
    refuse_cross_site(request)
    service = request.app[SLOTS]
    meeting_id = MeetingId(request.match_info["meeting"])
    call = await service.call(meeting_id, request.match_info["call"])
    meeting = await service.agenda.get_meeting(meeting_id)
    data = dict(await request.post())
    if not call.is_open(service.clock()):
        return await _form_page(request, refusal=f"The deadline passed on {deadline_text(meeting, call)}: "
                                                 "requests can no longer be filed.", status=422)
    try:
        filed, fresh = await file_request(request, service, meeting_id, call, meeting, data)
    except InvalidInput as exc:
        return await _form_page(request, values=data, problems=exc.problems, status=400)
    except QueueRefused as exc:
        return await _form_page(request, values=data, refusal=exc.reason[:1].upper() + exc.reason[1:] + ".",
                                status=422)
    response = _acknowledgement(request, service, call, meeting, filed)
    set_identity(response, request, fresh)
    return response


def _acknowledgement(request: web.Request, service: SlotService, call: SlotCall, meeting: Meeting,
                     filed: SlotRequest) -> web.Response:
    url = feed_url(request, filed.feed_token)
    body = (
        f"<h1>Request received</h1><p>{escape(call.title)} — {escape(meeting.title)}</p>"
        f'<p>Your reference: <span class="ref">{escape(filed.ref)}</span></p>'
        "<p>Keep it: quote it when you write to the secretariat. The secretariat reviews the requests "
        f"after the deadline ({escape(deadline_text(meeting, call))}) in order of protocol precedence.</p>"
        "<h2>Your personal calendar</h2>"
        "<p>It shows your slot, with its time and your place in the list, once the secretariat approves it. "
        "The link is private: anyone who has it can see your slot.</p>"
        f'<p><a href="{escape(webcal(url))}">Subscribe in your calendar app</a></p>'
        f'<p class="hint">Or add this address to your calendar: <a href="{escape(url)}">{escape(url)}</a></p>'
    )
    return _page("Request received", body, private=True)


# ---------------------------------------------------------------- the rolling list


async def speakers_page(request: web.Request) -> web.Response:
    service = request.app[SLOTS]
    meeting_id, session_id = MeetingId(request.match_info["meeting"]), SessionId(request.match_info["session"])
    meeting, sessions = await meeting_sessions(service, meeting_id)
    session = sessions.get(session_id)
    if session is None:
        raise NotFound(f"{meeting_id} has no session {session_id!r}")
    speakers = rolling_list(await service.store.requests(meeting_id), session_id)
    start, end = meeting.local(session.start), meeting.local(session.end)
    where = f", {session.room}" if session.room else ""
    parts = [
        f"<h1>{escape(session.title)}</h1>",
        f"<p>{escape(meeting.title)}<br>{start:%A %d %B %Y, %H:%M}–{end:%H:%M} ({escape(meeting.timezone)})"
        f"{escape(where)}</p>",
        "<h2>List of speakers</h2>",
    ]
    if not speakers:
        parts.append("<p>No speakers have been announced for this session yet.</p>")
    else:
        items = []
        for r in speakers:
            when = f'<span class="when">{meeting.local(r.slot_start):%H:%M}</span> · ' if r.slot_start else ""
            items.append(
                f'<li value="{r.order}">{when}<strong>{escape(r.form.name)}</strong>, {escape(r.form.title)} — '
                f"{escape(r.form.delegation)} <span class=\"when\">({r.slot_minutes} min)</span></li>"
            )
        parts.append(f'<ol class="speakers">{"".join(items)}</ol>')
    parts.append('<p class="hint">The list may change; it follows protocol precedence.</p>')
    return _page(f"Speakers — {session.title}", "".join(parts))


def add_routes(app: web.Application, service: SlotService) -> None:
    app[SLOTS] = service
    app.router.add_get(r"/meetings/{meeting:[a-z0-9-]+}/slots/{call:[a-z0-9-]+}", form_page)
    app.router.add_post(r"/meetings/{meeting:[a-z0-9-]+}/slots/{call:[a-z0-9-]+}", post_form)
    app.router.add_get(r"/meetings/{meeting:[a-z0-9-]+}/sessions/{session}/speakers-list", speakers_page)
