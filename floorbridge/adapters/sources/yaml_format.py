"""Our own agenda format: YAML with an optional `meeting:` block, `sessions:` and `deadlines:`.

Validated strictly (unknown keys and wrong types are errors naming the key and its line).
The format is documented in docs/agenda-format.md.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from floorbridge.core.agenda import Document, Session, SessionStatus
from floorbridge.core.deadline import Deadline, DeadlineKind
from floorbridge.core.errors import InvalidInput
from floorbridge.core.ids import DeadlineId, MeetingId, SessionId, is_item_id
from floorbridge.core.meeting import (
    Contact,
    Meeting,
    PracticalInfo,
    RemoteParticipation,
    check_meeting,
)

from .imported import ImportedAgenda, Parsed, ProblemLog, finish, in_meeting_tz

KeyPath = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _AgendaLoader(yaml.SafeLoader):
    """YAML 1.1 without its traps: `start: 9:30` stays the text "9:30" (not the base-60 number 570),
    yes/no/on/off stay text (the "Norway problem"), and only a plain YYYY-MM-DD becomes a date;
    date-times stay text so that we, not PyYAML, decide what a missing offset means."""


_AgendaLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag not in (_INT, _FLOAT, _BOOL, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_AgendaLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_AgendaLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789"))
_AgendaLoader.add_implicit_resolver(
    _FLOAT, re.compile(r"^[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?$"), list("-+0123456789")
)
_AgendaLoader.add_implicit_resolver(_TIMESTAMP, re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), list("0123456789"))


def _construct_date(loader: yaml.SafeLoader, node: Node) -> date:
    text = loader.construct_scalar(node)  # type: ignore[arg-type]
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a date in the calendar", node.start_mark
        ) from None


_AgendaLoader.add_constructor(_TIMESTAMP, _construct_date)


# ---------------------------------------------------------------- the schema


def _none_is_empty(value: object) -> object:
    return "" if value is None else value


def _not_a_number(value: object) -> object:
    if isinstance(value, bool | int | float):
        raise ValueError(
            f'{value!r} is a number, not a time; write HH:MM in quotes ("09:30") or an ISO date-time with offset'
        )
    return value


def _due_value(value: object) -> object:
    if isinstance(value, date | str):
        return value
    raise ValueError('write the due date as YYYY-MM-DD or "YYYY-MM-DD HH:MM"')


Text = Annotated[str, BeforeValidator(_none_is_empty)]
Day = Annotated[date, Field(strict=False)]
Clock = Annotated[str, BeforeValidator(_not_a_number)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, str_strip_whitespace=True)


class ContactIn(_Strict):
    name: str
    role: Text = ""
    email: Text = ""
    phone: Text = ""


class RemoteIn(_Strict):
    url: Text = ""
    platform: Text = ""
    instructions: Text = ""
    registration_required: bool = True


class PracticalIn(_Strict):
    registration_desk: Text = ""
    registration_opens: Text = ""
    wifi_ssid: Text = ""
    wifi_password: Text = ""
    lockers: Text = ""
    printers: Text = ""
    visas: Text = ""
    contacts: list[ContactIn] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class MeetingIn(_Strict):
    id: str
    title: str
    organiser: str
    timezone: str
    start_date: Day
    end_date: Day
    venue: Text = ""
    city: Text = ""
    country: Text = ""
    languages: list[str] = Field(default_factory=lambda: ["en"])
    url: Text = ""
    description: Text = ""
    remote: RemoteIn = Field(default_factory=RemoteIn)
    practical: PracticalIn = Field(default_factory=PracticalIn)


class DocumentIn(_Strict):
    title: str
    url: str


class SessionIn(_Strict):
    id: str
    title: str
    date: Day | None = None
    start: Clock
    end: Clock
    track: Text = ""
    room: Text = ""
    remote_url: Text = ""
    description: Text = ""
    documents: list[DocumentIn] = Field(default_factory=list)
    chairs: list[str] = Field(default_factory=list)
    status: Literal["scheduled", "tentative", "cancelled"] = "scheduled"


class DeadlineIn(_Strict):
    id: str
    kind: Literal["registration", "contributions", "visa-support", "speaking-slot", "other"]
    title: str
    due: Annotated[date | str, BeforeValidator(_due_value)]
    source: Text = ""
    description: Text = ""
    url: Text = ""


_TOP_KEYS = ("meeting", "sessions", "deadlines")


# ---------------------------------------------------------------- lines


def _line_map(node: Node, log: ProblemLog) -> dict[KeyPath, int]:
    """(key, index, key, ...) -> line of that key or list item, 1-based; reports duplicate keys."""
    lines: dict[KeyPath, int] = {(): node.start_mark.line + 1}

    def walk(n: Node, path: KeyPath) -> None:
        if isinstance(n, MappingNode):
            for key_node, value_node in n.value:
                key = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
                here = (*path, key)
                line = key_node.start_mark.line + 1
                if here in lines and key != "<<":
                    log.add(line, f"{_dotted(here)}: key {key!r} appears twice (first on line {lines[here]})")
                    continue
                lines[here] = line
                walk(value_node, here)
        elif isinstance(n, SequenceNode):
            for index, item in enumerate(n.value):
                lines[(*path, index)] = item.start_mark.line + 1
                walk(item, (*path, index))

    walk(node, ())
    return lines


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Where:
    def __init__(self, log: ProblemLog, lines: Mapping[KeyPath, int]) -> None:
        self.log = log
        self.lines = lines

    def line(self, path: KeyPath) -> int:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1

    def add(self, path: KeyPath, what: str) -> None:
        self.log.add(self.line(path), f"{_dotted(path)}: {what}" if path else what)


def _fields_of(model: type[BaseModel], rest: tuple[Any, ...]) -> type[BaseModel]:
    """The model class that the pydantic error location `rest` ends in (for 'did you mean')."""
    for part in rest:
        if isinstance(part, str) and part in model.model_fields:
            nested = _model_in(model.model_fields[part].annotation)
            if nested is None:
                break
            model = nested
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _validate(model: type[M], data: object, prefix: KeyPath, where: _Where) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            loc = tuple(err["loc"])
            path = (*prefix, *loc)
            kind = err["type"]
            if kind == "extra_forbidden":
                key = str(loc[-1])
                allowed = list(_fields_of(model, loc[:-1]).model_fields)
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                where.add(path, f"unknown key ({hint}allowed: {', '.join(allowed)})")
            elif kind == "missing":
                where.add(path[:-1], f"missing required key {loc[-1]!r}")
            else:
                message = err["msg"].removeprefix("Value error, ")
                got = err.get("input")
                shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) else ""
                where.add(path, f"{message}{shown}")
        return None


# ---------------------------------------------------------------- reading


def read_yaml(path: Path, text: str, existing: Meeting | None) -> ImportedAgenda:
    log = ProblemLog(path.name, str(path))
    loader = _AgendaLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            log.add(1, "the file is empty; it needs at least 'sessions:'")
            raise log.error()
        where = _Where(log, _line_map(node, log))
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        log.add(line, f"not valid YAML: {e.problem or e.context}")
        raise log.error() from None
    finally:
        loader.dispose()
    return _read(data, where, log, existing)


def _read(data: object, where: _Where, log: ProblemLog, existing: Meeting | None) -> ImportedAgenda:
    if not isinstance(data, dict):
        where.add((), f"the top level must be a mapping with keys {', '.join(_TOP_KEYS)}")
        raise log.error()
    for key in data:
        if key not in _TOP_KEYS:
            close = difflib.get_close_matches(str(key), _TOP_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            where.add((str(key),), f"unknown key ({hint}allowed: {', '.join(_TOP_KEYS)})")

    defined: Meeting | None = None
    meeting: Meeting | None = None
    if "meeting" in data:
        meeting_in = _validate_meeting(data["meeting"], where)
        if meeting_in is not None:
            defined = _meeting(meeting_in, where)
            if defined is not None and existing is not None and existing.id != defined.id:
                where.add(
                    ("meeting", "id"),
                    f"the file describes meeting {defined.id!r}, but it is being imported into {existing.id!r}",
                )
        meeting = defined
    elif existing is not None:
        meeting = existing
    else:
        log.add(
            1,
            "no meeting to put these sessions in: create the meeting first with a YAML file "
            "that has a 'meeting:' block (id, title, organiser, timezone, start_date, end_date)",
        )

    parsed: list[Parsed] = []
    for index, item in enumerate(_list(data, "sessions", where)):
        session_in = _validate(SessionIn, item, ("sessions", index), where)
        if session_in is not None and meeting is not None:
            session = _session(session_in, meeting, ("sessions", index), where)
            if session is not None:
                origin = f"{log.file}:{where.line(('sessions', index))}"
                parsed.append(Parsed(session, origin, where.line(("sessions", index))))

    deadlines: list[Deadline] | None = None
    if "deadlines" in data:
        deadlines = []
        first_at: dict[str, int] = {}
        for index, item in enumerate(_list(data, "deadlines", where)):
            here: KeyPath = ("deadlines", index)
            deadline_in = _validate(DeadlineIn, item, here, where)
            if deadline_in is None:
                continue
            if not is_item_id(deadline_in.id):
                where.add((*here, "id"), f"{deadline_in.id!r} must be letters, digits, '.', '_' or '-'")
                continue
            if deadline_in.id in first_at:
                where.add(
                    (*here, "id"),
                    f"id {deadline_in.id!r} is used twice (first on line {first_at[deadline_in.id]})",
                )
                continue
            first_at[deadline_in.id] = where.line(here)
            deadline = _deadline(deadline_in, meeting, here, where)
            if deadline is not None:
                deadlines.append(deadline)
    return finish(log, meeting, defined, parsed, deadlines)


def _list(data: dict[Any, Any], key: str, where: _Where) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        where.add((key,), f"must be a list (one '- ' item per {key[:-1]})")
        return []
    return value


def _validate_meeting(raw: object, where: _Where) -> MeetingIn | None:
    """Validate the practical and remote blocks apart, so their mistakes do not hide the meeting's own
    (a wrong timezone, end before start) or stop the sessions from being checked."""
    if not isinstance(raw, dict):
        return _validate(MeetingIn, raw, ("meeting",), where)
    parts = ("remote", "practical")
    core = _validate(MeetingIn, {k: v for k, v in raw.items() if k not in parts}, ("meeting",), where)
    remote = _validate(RemoteIn, raw.get("remote") or {}, ("meeting", "remote"), where)
    practical = _validate(PracticalIn, raw.get("practical") or {}, ("meeting", "practical"), where)
    if core is None:
        return None
    return core.model_copy(update={"remote": remote or RemoteIn(), "practical": practical or PracticalIn()})


def _meeting(m: MeetingIn, where: _Where) -> Meeting | None:
    meeting = Meeting(
        id=MeetingId(m.id),
        title=m.title,
        organiser=m.organiser,
        timezone=m.timezone,
        start_date=m.start_date,
        end_date=m.end_date,
        venue=m.venue,
        city=m.city,
        country=m.country,
        languages=tuple(m.languages),
        url=m.url,
        description=m.description,
        remote=RemoteParticipation(**m.remote.model_dump()),
        practical=PracticalInfo(
            **m.practical.model_dump(exclude={"contacts", "notes"}),
            contacts=tuple(Contact(**c.model_dump()) for c in m.practical.contacts),
            notes=tuple(m.practical.notes),
        ),
    )
    try:
        check_meeting(meeting, where="meeting")
    except InvalidInput as e:
        for problem in e.problems:
            key = problem.where.removeprefix("meeting.")
            where.add(("meeting", key), problem.what)
        return None
    return meeting


_HH_MM = re.compile(r"^(\d{1,2}):(\d{2})$")


def _session(s: SessionIn, meeting: Meeting, here: KeyPath, where: _Where) -> Session | None:
    ok = True
    moments: dict[str, datetime] = {}
    clocks = {label: _HH_MM.match(raw.strip()) for label, raw in (("start", s.start), ("end", s.end))}
    if s.date is None and any(clocks.values()):
        where.add((*here, "date"), "missing: HH:MM times need the session's date (YYYY-MM-DD)")
        ok = False
    if s.date is not None and not any(clocks.values()):
        where.add(
            (*here, "date"),
            "not used: start and end are full date-times; drop 'date' or write start and end as HH:MM",
        )
        ok = False
    for label, raw in (("start", s.start), ("end", s.end)):
        clock = clocks[label]
        if clock is not None:
            hour, minute = int(clock.group(1)), int(clock.group(2))
            if hour > 23 or minute > 59:
                where.add((*here, label), f"{raw!r} is not a time of day (00:00 to 23:59)")
                ok = False
            elif s.date is not None:
                moment, problem = in_meeting_tz(meeting, s.date, time(hour, minute))
                if problem:
                    where.add((*here, label), problem)
                    ok = False
                moments[label] = moment
            continue
        try:
            parsed = datetime.fromisoformat(raw.strip())
        except ValueError:
            where.add(
                (*here, label),
                f"{raw!r} is neither HH:MM nor an ISO date-time (2025-07-07T09:30+02:00)",
            )
            ok = False
            continue
        if parsed.tzinfo is None:
            where.add(
                (*here, label),
                f"{raw!r} has no UTC offset; write HH:MM with 'date' for the meeting's local time, "
                "or add the offset (+02:00)",
            )
            ok = False
            continue
        moments[label] = parsed.astimezone(UTC)
    if not ok or len(moments) != 2:
        return None
    return Session(
        id=SessionId(s.id),
        title=s.title,
        start=moments["start"],
        end=moments["end"],
        track=s.track,
        room=s.room,
        remote_url=s.remote_url,
        description=s.description,
        documents=tuple(Document(d.title, d.url) for d in s.documents),
        chairs=tuple(s.chairs),
        status=SessionStatus(s.status),
    )


_DUE_LOCAL = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{1,2}):(\d{2})$")


def _deadline(d: DeadlineIn, meeting: Meeting | None, here: KeyPath, where: _Where) -> Deadline | None:
    due: date | datetime
    if isinstance(d.due, date):
        due = d.due
    else:
        text = d.due.strip()
        local = _DUE_LOCAL.match(text)
        try:
            if local is not None:
                day = date.fromisoformat(local.group(1))
                at = time(int(local.group(2)), int(local.group(3)))
                if meeting is None:
                    return None
                due, problem = in_meeting_tz(meeting, day, at)
                if problem:
                    where.add((*here, "due"), problem)
                    return None
            else:
                parsed = datetime.fromisoformat(text)
                if parsed.tzinfo is None:
                    raise ValueError(text)
                due = parsed.astimezone(UTC)
        except ValueError:
            where.add(
                (*here, "due"),
                f'{d.due!r} is not YYYY-MM-DD, "YYYY-MM-DD HH:MM" (meeting time) or an ISO date-time with offset',
            )
            return None
    return Deadline(
        id=DeadlineId(d.id),
        kind=DeadlineKind(d.kind),
        title=d.title,
        due=due,
        source=d.source,
        description=d.description,
        url=d.url,
    )
