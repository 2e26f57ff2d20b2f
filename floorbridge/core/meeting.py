"""A meeting and the practical information a delegate needs to attend it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo

import pytz

from .errors import InvalidInput, Problem
from .ids import MeetingId, is_slug


def zone(name: str) -> tzinfo:
    """The IANA zone called `name`; raises KeyError naming it when pytz does not know it."""
    try:
        return pytz.timezone(name)
    except pytz.UnknownTimeZoneError:
        raise KeyError(name) from None


def is_known_timezone(name: str) -> bool:
    return name in pytz.all_timezones_set


@dataclass(frozen=True)
class Contact:
    name: str
    role: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class RemoteParticipation:
    """How to take part without being in the room."""

    url: str = ""
    platform: str = ""
    instructions: str = ""
    registration_required: bool = True


@dataclass(frozen=True)
class PracticalInfo:
    registration_desk: str = ""
    registration_opens: str = ""
    wifi_ssid: str = ""
    wifi_password: str = ""
    lockers: str = ""
    printers: str = ""
    visas: str = ""
    contacts: tuple[Contact, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Meeting:
    id: MeetingId
    title: str
    organiser: str
    timezone: str
    start_date: date
    end_date: date
    venue: str = ""
    city: str = ""
    country: str = ""
    languages: tuple[str, ...] = ("en",)
    url: str = ""
    description: str = ""
    remote: RemoteParticipation = field(default_factory=RemoteParticipation)
    practical: PracticalInfo = field(default_factory=PracticalInfo)

    @property
    def tz(self) -> tzinfo:
        return zone(self.timezone)

    def local(self, moment: datetime) -> datetime:
        """`moment` (aware) as wall-clock time at the meeting."""
        return moment.astimezone(self.tz)

    def localize(self, day: date, at: time) -> datetime:
        """A wall-clock time at the meeting as an aware datetime (pytz needs localize, not tzinfo=)."""
        tz = self.tz
        naive = datetime.combine(day, at)
        if isinstance(tz, pytz.BaseTzInfo):
            return tz.localize(naive)
        return naive.replace(tzinfo=tz)

    def contains(self, moment: datetime) -> bool:
        """Whether `moment` falls on one of the meeting's days, in the meeting's timezone."""
        return self.start_date <= self.local(moment).date() <= self.end_date


def check_meeting(meeting: Meeting, where: str = "meeting") -> None:
    problems: list[Problem] = []
    if not is_slug(meeting.id):
        problems.append(Problem(f"{where}.id", f"{meeting.id!r} is not a slug (a-z, 0-9 and inner '-')"))
    if not meeting.title.strip():
        problems.append(Problem(f"{where}.title", "must not be empty"))
    if not is_known_timezone(meeting.timezone):
        problems.append(Problem(f"{where}.timezone", f"{meeting.timezone!r} is not an IANA timezone known to pytz"))
    if meeting.end_date < meeting.start_date:
        problems.append(
            Problem(f"{where}.end_date", f"{meeting.end_date} is before start_date {meeting.start_date}")
        )
    if problems:
        raise InvalidInput(problems)
