"""Speaking-slot requests before a segment (as for the WSIS+20 high-level segment: "request a
speaking slot by 30 April 2025"): the rules a segment opens requests with, the request a delegate
files, and the secretariat's review with a draft order by protocol precedence."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from .errors import InvalidInput, Problem
from .ids import MeetingId, SessionId
from .speakers import QueueRefused

E = TypeVar("E", bound=enum.Enum)


class Stakeholder(enum.StrEnum):
    GOVERNMENT = "government"
    PRIVATE_SECTOR = "private_sector"
    CIVIL_SOCIETY = "civil_society"
    INTERNATIONAL_ORGANISATION = "international_organisation"
    ACADEMIA = "academia"
    TECHNICAL_COMMUNITY = "technical_community"


class ProtocolRank(enum.IntEnum):
    """Protocol precedence: a lower value speaks earlier."""

    HEAD_OF_STATE_OR_GOVERNMENT = 1
    VICE_PRESIDENT_OR_DEPUTY_PRIME_MINISTER = 2
    MINISTER = 3
    DEPUTY_MINISTER = 4
    HEAD_OF_REGULATOR_OR_AGENCY = 5
    AMBASSADOR_OR_HEAD_OF_DELEGATION = 6
    OTHER = 7

    @property
    def slug(self) -> str:
        return self.name.lower()

    @classmethod
    def from_slug(cls, value: str) -> ProtocolRank:
        return cls[value.strip().upper()]


class Mode(enum.StrEnum):
    IN_ROOM = "in_room"
    REMOTE = "remote"


class SlotStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    WAITLISTED = "waitlisted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class SlotCall:
    """A segment open for speaking-slot requests, with its rules."""

    meeting_id: MeetingId
    id: str  # slug, unique in the meeting
    title: str
    deadline: datetime  # aware
    sessions: tuple[SessionId, ...]  # the sessions one may choose
    minutes: int = 3  # time allotted per statement
    one_per_delegation: bool = True
    modes: frozenset[Mode] = frozenset(Mode)
    languages: tuple[str, ...] = ("en", "fr", "es", "ru", "ar", "zh")

    def is_open(self, now: datetime) -> bool:
        return now <= self.deadline


@dataclass(frozen=True)
class SlotForm:
    """What a delegate fills in (from a chat dialogue or the web form)."""

    name: str
    title: str  # title or function
    delegation: str  # country or organisation
    stakeholder: Stakeholder
    rank: ProtocolRank
    session: SessionId
    mode: Mode
    language: str


@dataclass(frozen=True)
class SlotRequest:
    ref: str  # the reference given in the acknowledgement
    call_id: str
    meeting_id: MeetingId
    requester: str  # "telegram:42", "web:<id>": who may change or withdraw it
    form: SlotForm
    received_at: datetime
    status: SlotStatus = SlotStatus.PENDING
    reason: str = ""  # why rejected or waitlisted
    approved_session: SessionId | None = None
    order: int = 0  # place in the approved session's list
    slot_start: datetime | None = None
    slot_minutes: int = 0
    updated_at: datetime | None = None
    notify: str = ""  # chat for notices ("telegram:42"), "" = none
    feed_token: str = ""  # private feed with the approved slot

    @property
    def open(self) -> bool:
        return self.status in (SlotStatus.PENDING, SlotStatus.WAITLISTED, SlotStatus.APPROVED)


FIELD_LIMITS = {"name": 200, "title": 200, "delegation": 200}
REASON_LIMIT = 500  # the secretariat's reason for a rejection or a waiting list


def check_form(call: SlotCall, form: SlotForm, where: str = "") -> None:
    """Raise InvalidInput naming every field that breaks the segment's rules."""
    problems = []
    prefix = f"{where}." if where else ""
    for name, limit in FIELD_LIMITS.items():
        value = getattr(form, name).strip()
        if not value:
            problems.append(Problem(prefix + name, "is required"))
        elif len(value) > limit:
            problems.append(Problem(prefix + name, f"is longer than {limit} characters"))
    if form.session not in call.sessions:
        problems.append(Problem(prefix + "session", f"{form.session!r} is not open for requests in "
                                f"{call.title!r}; choose one of {', '.join(call.sessions)}"))
    if form.mode not in call.modes:
        problems.append(Problem(prefix + "mode", f"{form.mode} statements are not possible in {call.title!r}"))
    if form.language not in call.languages:
        problems.append(Problem(prefix + "language", f"{form.language!r} is not one of the segment's languages "
                                f"({', '.join(call.languages)})"))
    if problems:
        raise InvalidInput(problems)


def check_submission(call: SlotCall, form: SlotForm, requester: str, now: datetime,
                     others: Iterable[SlotRequest], replacing: str | None = None) -> None:
    """The rules for a new request (or a change of request `replacing`): before the deadline,
    one open request per requester, and one speaker per delegation when the segment says so."""
    if not call.is_open(now):
        raise QueueRefused("the deadline for speaking-slot requests has passed", "deadline")
    check_form(call, form)
    for other in others:
        if other.ref == replacing or not other.open or other.call_id != call.id:
            continue
        if other.requester == requester:
            raise QueueRefused(f"you already have a request ({other.ref}); change or withdraw it", "duplicate")
        if call.one_per_delegation and _same(other.form.delegation, form.delegation):
            raise QueueRefused(f"{form.delegation} already has a speaker in {call.title} (one speaker per "
                               "delegation)", "delegation")


def _same(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def draft_order(requests: Iterable[SlotRequest]) -> list[SlotRequest]:
    """Pending and waitlisted requests in protocol precedence, ties broken by time of receipt."""
    candidates = [r for r in requests if r.status in (SlotStatus.PENDING, SlotStatus.WAITLISTED)]
    return sorted(candidates, key=lambda r: (r.form.rank, r.received_at, r.ref))


def change_allowed(request: SlotRequest, requester: str, call: SlotCall, now: datetime) -> None:
    if request.requester != requester:
        raise QueueRefused("this is not your request", "forbidden")
    if not call.is_open(now):
        raise QueueRefused("the deadline for speaking-slot requests has passed", "deadline")
    if not request.open:
        raise QueueRefused(f"request {request.ref} is {request.status}", "closed")


def review(request: SlotRequest, decision: SlotStatus, now: datetime, *, reason: str = "",
           session: SessionId | None = None, order: int = 0, start: datetime | None = None,
           minutes: int = 0) -> SlotRequest:
    """The secretariat's decision on one request."""
    if request.status is SlotStatus.WITHDRAWN:
        raise QueueRefused(f"request {request.ref} was withdrawn", "closed")
    if decision is SlotStatus.REJECTED and not reason.strip():
        raise QueueRefused("a rejection needs a reason", "invalid")
    if decision is SlotStatus.APPROVED:
        if session is None or order < 1 or start is None or minutes < 1:
            raise QueueRefused("an approval needs the session, the order (1 or more), the start and the minutes",
                               "invalid")
        return replace(request, status=decision, approved_session=session, order=order, slot_start=start,
                       slot_minutes=minutes, reason="", updated_at=now)
    if decision not in (SlotStatus.WAITLISTED, SlotStatus.REJECTED, SlotStatus.PENDING):
        raise QueueRefused(f"cannot set a request to {decision}", "invalid")
    return replace(request, status=decision, reason=reason.strip(), approved_session=None, order=0,
                   slot_start=None, slot_minutes=0, updated_at=now)


def rolling_list(requests: Iterable[SlotRequest], session: SessionId) -> list[SlotRequest]:
    """The approved speakers of a session, in order: the published rolling list of speakers."""
    approved = [r for r in requests if r.status is SlotStatus.APPROVED and r.approved_session == session]
    return sorted(approved, key=lambda r: (r.order, r.slot_start or r.received_at, r.ref))


def next_place(requests: Iterable[SlotRequest], session: SessionId, opens: datetime, *,
               skip: str = "") -> tuple[int, datetime]:
    """Where the next approved speaker of a session goes: the order after the last one, starting
    when the last approved slot ends (or when the session opens). `skip` is the request being
    placed, which must not count itself."""
    placed = [r for r in rolling_list(requests, session) if r.ref != skip]
    order = max((r.order for r in placed), default=0) + 1
    ends = [r.slot_start + timedelta(minutes=r.slot_minutes) for r in placed if r.slot_start is not None]
    return order, max([opens, *ends])


def parse_choice(kind: type[E], value: object, where: str, labels: Mapping[str, E] | None = None) -> E:
    """An enum value from form text, with an error naming the field and the choices."""
    text = str(value or "").strip().lower()
    try:
        if labels and text in labels:
            return labels[text]
        if issubclass(kind, ProtocolRank):
            return kind.from_slug(text)  # type: ignore[return-value]
        return kind(text)
    except (ValueError, KeyError):
        choices = ", ".join((m.name.lower() if isinstance(m, ProtocolRank) else str(m.value)) for m in kind)
        raise InvalidInput([Problem(where, f"{value!r} is not one of: {choices}")]) from None
