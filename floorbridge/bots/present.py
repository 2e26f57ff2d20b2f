"""How agenda items, changes and deadlines are worded for a delegate, in their language and zone."""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo

from floorbridge.core.agenda import Document, Session
from floorbridge.core.changes import Change, ChangeKind, TimeSpan
from floorbridge.core.deadline import Deadline, DeadlineKind
from floorbridge.core.meeting import Meeting, zone
from floorbridge.core.richtext import Inline, Part, Text, b, code, i, link

from .i18n import Translator


def kind_label(t: Translator, kind: DeadlineKind) -> str:
    """What a deadline is for, in the reader's language."""
    return {
        DeadlineKind.REGISTRATION: t._("Registration"),
        DeadlineKind.CONTRIBUTIONS: t._("Written contributions"),
        DeadlineKind.VISA_SUPPORT: t._("Visa support request"),
        DeadlineKind.SPEAKING_SLOT: t._("Speaking-slot request"),
        DeadlineKind.OTHER: t._("Deadline"),
    }[kind]


class Viewer:
    """A delegate's view: their translator and zone next to the meeting's."""

    def __init__(self, t: Translator, meeting: Meeting, user_zone: str = "") -> None:
        self.t = t
        self.meeting = meeting
        self.meeting_tz: tzinfo = meeting.tz
        self.user_tz: tzinfo | None = None
        if user_zone and user_zone != meeting.timezone:
            self.user_tz = zone(user_zone)

    def differs(self, moment: datetime) -> bool:
        return self.user_tz is not None and moment.astimezone(self.user_tz).utcoffset() != moment.astimezone(
            self.meeting_tz
        ).utcoffset()

    def span(self, start: datetime, end: datetime, *, with_day: bool = False) -> str:
        t = self.t
        first = t.day_and_time(start, self.meeting_tz) if with_day else t.time(start, self.meeting_tz)
        text = f"{first}–{t.time(end, self.meeting_tz)}"
        if self.user_tz is not None and self.differs(start):
            mine = t.day_and_time(start, self.user_tz) if with_day else t.time(start, self.user_tz)
            text += " " + t._("({start}–{end} your time)").format(start=mine, end=t.time(end, self.user_tz))
        return text

    def moment(self, when: datetime) -> str:
        t = self.t
        text = t.day_and_time(when, self.meeting_tz)
        if self.user_tz is not None and self.differs(when):
            text += " " + t._("({time} your time)").format(time=t.day_and_time(when, self.user_tz))
        return text

    def due(self, deadline: Deadline) -> str:
        if isinstance(deadline.due, datetime):
            return self.moment(deadline.due)
        return self.t._("{date} (end of day, {zone})").format(
            date=self.t.date(deadline.due), zone=self.t.zone_name(self.meeting_tz)
        )

    def due_for_reader(self, deadline: Deadline) -> str:
        """`due`, and for a whole-day deadline also when that day ends in the reader's zone."""
        text = self.due(deadline)
        if isinstance(deadline.due, datetime) or self.user_tz is None:
            return text
        end = self.meeting.localize(deadline.due, time(23, 59))
        if not self.differs(end):
            return text
        return text + " " + self.t._("({time} your time)").format(time=self.t.day_and_time(end, self.user_tz))

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.meeting_tz).date()

    # ---------------------------------------------------------------- pieces

    def session_line(self, s: Session, *, with_day: bool = False) -> list[Part]:
        parts: list[Part] = [self.span(s.start, s.end, with_day=with_day), " ", b(s.title)]
        if s.room:
            parts += [" · ", s.room]
        if s.cancelled:
            parts += [" · ", i(self.t._("cancelled"))]
        elif s.status.value == "tentative":
            parts += [" · ", i(self.t._("tentative"))]
        parts += [" · ", code(s.id)]
        return parts

    def kind_label(self, kind: DeadlineKind) -> str:
        return kind_label(self.t, kind)

    def deadline_line(self, d: Deadline, today: date) -> list[Part]:
        due_day = d.due.astimezone(self.meeting_tz).date() if isinstance(d.due, datetime) else d.due
        left = (due_day - today).days
        if left < 0:
            when = self.t._("passed")
        elif left == 0:
            when = self.t._("today")
        else:
            when = self.t.n_("in {n} day", "in {n} days", left).format(n=left)
        parts: list[Part] = [b(self.kind_label(d.kind)), ": ", d.title, " — ", self.due(d), " (", when, ")"]
        if d.url:
            parts += [" ", link(d.url, self.t._("details"))]
        return parts

    def change_line(self, c: Change) -> list[Part]:
        t = self.t
        title: Inline = b(c.title)
        if c.kind is ChangeKind.ADDED and isinstance(c.new, TimeSpan):
            return [t._("New:"), " ", title, ", ", self.span(c.new.start, c.new.end, with_day=True)]
        if c.kind is ChangeKind.CANCELLED:
            return [t._("Cancelled:"), " ", title]
        if c.kind is ChangeKind.REINSTATED:
            return [t._("Back on the agenda:"), " ", title]
        if c.kind is ChangeKind.MOVED_TIME and isinstance(c.old, TimeSpan) and isinstance(c.new, TimeSpan):
            return [
                t._("Moved:"), " ", title, ", ", t._("from"), " ",
                self.span(c.old.start, c.old.end, with_day=True), " ", t._("to"), " ",
                b(self.span(c.new.start, c.new.end, with_day=True)),
            ]
        if c.kind is ChangeKind.MOVED_ROOM:
            return [t._("New room:"), " ", title, ", ", str(c.old or "—"), " → ", b(str(c.new or "—"))]
        if c.kind is ChangeKind.RENAMED:
            return [t._("Renamed:"), " ", str(c.old), " → ", title]
        if c.kind is ChangeKind.REDESCRIBED:
            return [t._("Description updated:"), " ", title]
        if c.kind is ChangeKind.STATUS:
            return [t._("Status changed:"), " ", title, ", ", str(c.old), " → ", str(c.new)]
        if c.kind is ChangeKind.TRACK:
            return [t._("Moved to another track:"), " ", title, ", ", str(c.old or "—"), " → ", str(c.new or "—")]
        if c.kind is ChangeKind.REMOTE_LINK:
            return [t._("New remote-participation link:"), " ", title]
        if c.kind is ChangeKind.CHAIRS:
            chairs = ", ".join(c.new) if isinstance(c.new, tuple) else ""
            return [t._("Chairs changed:"), " ", title, ", ", chairs or "—"]
        if c.kind is ChangeKind.DOCUMENT_ADDED and isinstance(c.new, Document):
            return [t._("New document:"), " ", link(c.new.url, c.new.title), " (", title, ")"]
        if c.kind is ChangeKind.DOCUMENT_WITHDRAWN and isinstance(c.old, Document):
            return [t._("Document withdrawn:"), " ", c.old.title, " (", title, ")"]
        if c.kind is ChangeKind.DEADLINE_ADDED:
            return [t._("New deadline:"), " ", title, " — ", self._due_value(c.new)]
        if c.kind is ChangeKind.DEADLINE_MOVED:
            return [t._("Deadline moved:"), " ", title, ", ", self._due_value(c.old), " → ", b(self._due_value(c.new))]
        if c.kind is ChangeKind.DEADLINE_CHANGED:
            return [t._("Deadline updated:"), " ", title]
        if c.kind is ChangeKind.DEADLINE_REMOVED:
            return [t._("Deadline withdrawn:"), " ", title]
        return [Text(c.kind.value), " ", title]

    def _due_value(self, value: object) -> str:
        if isinstance(value, datetime):
            return self.moment(value)
        if isinstance(value, date):
            return self.t.date(value)
        return "—"


def day_start(meeting: Meeting, day: date) -> datetime:
    return meeting.localize(day, time(0, 0))
