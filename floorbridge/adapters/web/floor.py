"""The lists of speakers on the web: the public JSON and live stream (server-sent events), a
delegate's request from the browser, the moderators' actions, the record (CSV, JSON) and the
per-delegation ledger of speaking time.

Web delegates have no account: the first request sets an HttpOnly cookie holding 128 random bits,
and that is who they are for "one open request each" and for withdrawing."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from floorbridge.core.agenda import Session
from floorbridge.core.chats import Role
from floorbridge.core.errors import InvalidInput, Problem
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.ports import FloorDesk, SpeakerStore
from floorbridge.core.speakers import (
    Actor,
    Channel,
    CloseList,
    Command,
    EndSpeech,
    Move,
    Next,
    Participant,
    PauseSpeech,
    ReaddLast,
    Remove,
    ReopenList,
    RequestFloor,
    ResumeSpeech,
    SetBudget,
    SetTime,
    Speaker,
    SpeakerList,
    SpeechType,
    StartSpeech,
    Withdraw,
    delegation_ledger,
)

from .console_auth import CONSOLE, ConsoleAuth
from .limits import read_payload, shown

DELEGATE_COOKIE = "fb_delegate"
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
FLOOR = web.AppKey("floor", FloorDesk)
SPEAKER_STORE = web.AppKey("speaker_store", SpeakerStore)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("floor_clock")
BASE = "/api/v1/meetings/{meeting}/sessions/{session}/speakers"
MAX_FIELD = 200
SSE_MIN_INTERVAL = 0.2  # seconds between two pushes of one list: a burst becomes one update


def _ids(request: web.Request) -> tuple[MeetingId, SessionId]:
    return MeetingId(request.match_info["meeting"]), SessionId(request.match_info["session"])


def _now(request: web.Request) -> datetime:
    clock = request.app.get(CLOCK)
    return clock() if clock is not None else datetime.now(UTC)


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def speaker_json(s: Speaker, now: datetime, position: int = 0) -> dict[str, Any]:
    return {
        "id": s.id,
        "position": position,
        "name": s.participant.name,
        "delegation": s.participant.delegation,
        "channel": str(s.participant.channel),
        "remote": s.participant.remote,
        "speech_type": str(s.speech_type),
        "state": str(s.state),
        "requested_at": _time(s.requested_at),
        "started_at": _time(s.started_at),
        "ended_at": _time(s.ended_at),
        "allotted_seconds": s.allotted_seconds,
        "spoken_seconds": round(s.spoken_seconds(now), 1),
        "remaining_seconds": round(s.remaining_seconds(now), 1) if s.started_at else None,
    }


def list_json(lst: SpeakerList, session: Session, now: datetime) -> dict[str, Any]:
    current = lst.current_speaker()
    return {
        "meeting": lst.meeting_id,
        "session": {"id": session.id, "title": session.title, "room": session.room,
                    "start": _time(session.start), "end": _time(session.end)},
        "version": lst.version,
        "closed": lst.closed,
        "seconds_per_speaker": lst.seconds_per_speaker,
        "budgets": dict(sorted(lst.budgets.items())),
        "server_time": _time(now),
        "current": speaker_json(current, now) if current else None,
        "waiting": [speaker_json(s, now, n) for n, s in enumerate(lst.waiting(), start=1)],
        "finished": [speaker_json(s, now) for s in lst.finished()],
    }


async def get_list(request: web.Request) -> web.Response:
    meeting_id, session_id = _ids(request)
    desk = request.app[FLOOR]
    _meeting, session = await desk.session(meeting_id, session_id)
    lst = await desk.view(meeting_id, session_id)
    body = list_json(lst, session, _now(request))
    key = _delegate_key(request)
    if key:
        mine = lst.open_request_of(key)
        body["mine"] = speaker_json(mine, _now(request), lst.position_of(mine.id)) if mine else None
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the whole list at once, then again after every change (at most five
    times a second; a burst of requests becomes one update)."""
    meeting_id, session_id = _ids(request)
    desk = request.app[FLOOR]
    _meeting, session = await desk.session(meeting_id, session_id)
    watch = getattr(desk, "watch", None)
    if watch is None:
        raise web.HTTPNotImplemented(text="live updates are not available")
    queue: asyncio.Queue[int] = watch(meeting_id, session_id)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    key = _delegate_key(request)
    try:
        while True:
            lst = await desk.view(meeting_id, session_id)
            body = list_json(lst, session, _now(request))
            if key:
                mine = lst.open_request_of(key)
                body["mine"] = speaker_json(mine, _now(request), lst.position_of(mine.id)) if mine else None
            data = json.dumps(body, separators=(",", ":"))
            await response.write(f"id: {lst.version}\nevent: list\ndata: {data}\n\n".encode())
            try:
                await asyncio.wait_for(queue.get(), timeout=15)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await asyncio.sleep(SSE_MIN_INTERVAL)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        unwatch = getattr(desk, "unwatch", None)
        if unwatch is not None:
            unwatch(meeting_id, session_id, queue)
    return response


# ---------------------------------------------------------------- delegates on the web


def _delegate_key(request: web.Request) -> str:
    value = request.cookies.get(DELEGATE_COOKIE, "")
    return f"web:{value}" if _COOKIE_VALUE.match(value) else ""


def _text(data: dict[str, Any], name: str, problems: list[Problem], *, required: bool = True) -> str:
    raw = data.get(name, "")
    if not isinstance(raw, str):
        problems.append(Problem(name, "must be text"))
        return ""
    value = " ".join(raw.split())
    if required and not value:
        problems.append(Problem(name, "is required"))
    elif len(value) > MAX_FIELD:
        problems.append(Problem(name, f"is longer than {MAX_FIELD} characters"))
    return value


def _speech_type(data: dict[str, Any], problems: list[Problem]) -> SpeechType:
    raw = data.get("speech_type", "contribution")
    try:
        return SpeechType(raw)
    except ValueError:
        problems.append(Problem("speech_type", f"{shown(raw)} is not one of: {', '.join(t.value for t in SpeechType)}"))
        return SpeechType.CONTRIBUTION


async def request_floor(request: web.Request) -> web.Response:
    meeting_id, session_id = _ids(request)
    data = await read_payload(request)
    problems: list[Problem] = []
    name = _text(data, "name", problems)
    delegation = _text(data, "delegation", problems, required=False)
    kind = _speech_type(data, problems)
    remote = data.get("remote", True)
    if not isinstance(remote, bool):
        problems.append(Problem("remote", "must be true or false"))
    if problems:
        raise InvalidInput(problems)
    key = _delegate_key(request)
    fresh = ""
    if not key:
        fresh = secrets.token_urlsafe(16)
        key = f"web:{fresh}"
    participant = Participant(key, name, delegation, Channel.WEB, remote=bool(remote))
    outcome = await request.app[FLOOR].request(meeting_id, session_id, RequestFloor(participant, kind),
                                               Actor(key, name, Channel.WEB))
    assert outcome.speaker is not None
    position = next((n.position for n in outcome.notices if n.kind == "queued"), 0)
    response = web.json_response({"speaker": speaker_json(outcome.speaker, _now(request), position),
                                  "version": outcome.version}, status=201)
    if fresh:
        response.set_cookie(DELEGATE_COOKIE, fresh, httponly=True, samesite="Strict", max_age=30 * 86400,
                            secure=request.secure, path="/")
    return response


async def withdraw_mine(request: web.Request) -> web.Response:
    meeting_id, session_id = _ids(request)
    key = _delegate_key(request)
    if not key:
        raise InvalidInput([Problem("cookie", "this browser has no request to withdraw")])
    await request.app[FLOOR].act(meeting_id, session_id, Withdraw(key), Actor(key, key, Channel.WEB))
    return web.json_response({"withdrawn": True})


# ---------------------------------------------------------------- moderators


def _int(data: dict[str, Any], name: str, problems: list[Problem]) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(Problem(name, "must be a whole number"))
        return 0
    return value


def _command(data: dict[str, Any]) -> Command:
    problems: list[Problem] = []
    action = data.get("action")
    simple: dict[str, Command] = {"next": Next(), "end": EndSpeech(), "pause": PauseSpeech(),
                                  "resume": ResumeSpeech(), "close": CloseList(), "reopen": ReopenList(),
                                  "readd_last": ReaddLast()}
    command: Command | None = None
    if action in simple:
        command = simple[str(action)]
    elif action == "start":
        command = StartSpeech(_int(data, "speaker_id", problems))
    elif action == "remove":
        command = Remove(_int(data, "speaker_id", problems))
    elif action == "move":
        command = Move(_int(data, "speaker_id", problems), _int(data, "position", problems))
    elif action == "set_time":
        command = SetTime(_int(data, "seconds", problems))
    elif action == "set_budget":
        seconds = data.get("seconds")
        if seconds is not None:
            seconds = _int(data, "seconds", problems)
        command = SetBudget(_text(data, "delegation", problems), seconds)
    elif action == "add":
        name = _text(data, "name", problems)
        delegation = _text(data, "delegation", problems, required=False)
        remote = bool(data.get("remote", False))
        kind = _speech_type(data, problems)
        channel = Channel.WEB if remote else Channel.ROOM
        command = RequestFloor(Participant(f"room:{name.casefold()}", name, delegation or name, channel, remote), kind)
    elif action == "withdraw":
        command = Withdraw(_text(data, "participant", problems))
    else:
        names = sorted([*simple, "start", "remove", "move", "set_time", "set_budget", "add", "withdraw"])
        problems.append(Problem("action", f"{shown(action)} is not one of: {', '.join(names)}"))
    if problems or command is None:
        raise InvalidInput(problems)
    return command


async def moderate(request: web.Request) -> web.Response:
    meeting_id, session_id = _ids(request)
    auth: ConsoleAuth = request.app[CONSOLE]
    who = await auth.require(request, meeting_id, (Role.MODERATOR, Role.SECRETARIAT), csrf=True)
    data = await read_payload(request)
    command = _command(data)
    expected = data.get("expected_version")
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
        raise InvalidInput([Problem("expected_version", "must be a whole number")])
    actor = Actor(who.subject, who.name, Channel.WEB, moderator=True)
    desk = request.app[FLOOR]
    if isinstance(command, RequestFloor):
        outcome = await desk.request(meeting_id, session_id, command, actor)
    else:
        outcome = await desk.act(meeting_id, session_id, command, actor, expected)
    _meeting, session = await desk.session(meeting_id, session_id)
    lst = await desk.view(meeting_id, session_id)
    return web.json_response({"done": outcome.audit.action, "list": list_json(lst, session, _now(request))})


async def audit(request: web.Request) -> web.Response:
    meeting_id, session_id = _ids(request)
    await request.app[CONSOLE].require(request, meeting_id, (Role.MODERATOR, Role.SECRETARIAT))
    await request.app[FLOOR].session(meeting_id, session_id)
    entries = await request.app[SPEAKER_STORE].audit_trail(meeting_id, session_id)
    return web.json_response({"entries": [
        {"version": e.version, "at": _time(e.at), "actor": e.actor.name, "actor_key": e.actor.key,
         "channel": str(e.actor.channel), "moderator": e.actor.moderator, "action": e.action, "detail": e.detail}
        for e in entries]})


# ---------------------------------------------------------------- the record


RECORD_COLUMNS = ("order", "name", "delegation", "channel", "remote", "speech_type", "requested_at", "started_at",
                  "ended_at", "speaking_seconds")


def _record_rows(lst: SpeakerList, now: datetime) -> list[dict[str, Any]]:
    return [{"order": n, "name": s.participant.name, "delegation": s.participant.delegation,
             "channel": str(s.participant.channel), "remote": s.participant.remote,
             "speech_type": str(s.speech_type), "requested_at": _time(s.requested_at),
             "started_at": _time(s.started_at), "ended_at": _time(s.ended_at),
             "speaking_seconds": round(s.spoken_seconds(now), 1)}
            for n, s in enumerate([*lst.finished(), *([lst.current_speaker()] if lst.current is not None else [])],
                                  start=1) if s is not None]


async def record(request: web.Request) -> web.Response:
    meeting_id, session_id = _ids(request)
    desk = request.app[FLOOR]
    await desk.session(meeting_id, session_id)
    rows = _record_rows(await desk.view(meeting_id, session_id), _now(request))
    name = f"speakers-{meeting_id}-{session_id}"
    if request.match_info["format"] == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, RECORD_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            # A leading = + - @ makes spreadsheets run the cell as a formula: quote it as text.
            writer.writerow({k: (f"'{v}" if isinstance(v, str) and v[:1] in "=+-@" else v) for k, v in row.items()})
        return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return web.json_response({"meeting": meeting_id, "session": session_id, "speakers": rows},
                             headers={"Content-Disposition": f'inline; filename="{name}.json"'})


async def ledger(request: web.Request) -> web.Response:
    meeting_id = MeetingId(request.match_info["meeting"])
    lists = await request.app[SPEAKER_STORE].lists_of(meeting_id)
    table = delegation_ledger(lists, _now(request))
    return web.json_response({"meeting": meeting_id, "delegations": [
        {"delegation": d, "seconds": round(v["seconds"], 1), "speeches": int(v["speeches"])}
        for d, v in table.items()]})


def add_routes(app: web.Application, desk: FloorDesk, store: SpeakerStore) -> None:
    app[FLOOR] = desk
    app[SPEAKER_STORE] = store
    app.router.add_get(BASE, get_list)
    app.router.add_get(BASE + "/events", stream)
    app.router.add_post(BASE + "/requests", request_floor)
    app.router.add_delete(BASE + "/requests/mine", withdraw_mine)
    app.router.add_post(BASE + "/actions", moderate)
    app.router.add_get(BASE + "/audit", audit)
    app.router.add_get(BASE + "/record.{format:csv|json}", record)
    app.router.add_get("/api/v1/meetings/{meeting}/speaking-time", ledger)

