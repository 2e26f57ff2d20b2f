"""What the bots push without being asked: agenda changes after a publish, the pinned "today's
schedule", deadline reminders, and notices to moderators when a chat cannot be reached.

Each function returns outbox messages with a dedup key, so computing them twice (a retried
publish, a restarted reminder loop, two processes) stores each message once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta

from floorbridge.core.chats import ChatProfile, ChatRef, NoticeKind, Subscription
from floorbridge.core.deadline import Deadline
from floorbridge.core.ids import MeetingId, slugify
from floorbridge.core.meeting import Meeting
from floorbridge.core.outbox import OutboxItem, OutboxKind, OutgoingMessage
from floorbridge.core.richtext import Block, Button, Part, b, i, message, p, ul
from floorbridge.core.versions import AgendaVersion

from .i18n import translator
from .present import Viewer

# When an all-day deadline's reminders fire, local time (as in the calendar feeds' alarms).
ALL_DAY_REMINDER_AT = time(9, 0)
MAX_CHANGES_SHOWN = 60


def _viewer(meeting: Meeting, profile: ChatProfile) -> Viewer:
    return Viewer(translator(profile.language), meeting, profile.timezone)


def version_announcements(
    meeting: Meeting,
    version: AgendaVersion,
    subscribers: Iterable[tuple[Subscription, ChatProfile]],
    *,
    today: date,
) -> list[OutgoingMessage]:
    """One message per subscriber with the changes that concern them, and the pinned schedule of
    each group that follows the meeting."""
    out: list[OutgoingMessage] = []
    for sub, profile in subscribers:
        if sub.wants(NoticeKind.AGENDA) and version.changes.from_version is not None:
            changes = [c for c in version.changes if c.is_deadline or not c.tracks or not sub.tracks
                       or {slugify(x) for x in c.tracks} & sub.tracks]
            if not sub.wants(NoticeKind.DEADLINES):
                changes = [c for c in changes if not c.is_deadline]
            if changes:
                viewer = _viewer(meeting, profile)
                t = viewer.t
                lines: list[list[Part]] = [viewer.change_line(c) for c in changes[:MAX_CHANGES_SHOWN]]
                if len(changes) > MAX_CHANGES_SHOWN:
                    more = len(changes) - MAX_CHANGES_SHOWN
                    lines.append([i(t.n_("… and {n} more change", "… and {n} more changes", more).format(n=more))])
                head: list[Part] = [b(t._("Agenda updated: {meeting}").format(meeting=meeting.title)), " — ",
                                    t._("version {n}").format(n=version.number)]
                blocks: list[Block] = [p(*head)]
                if version.comment:
                    blocks.append(p(i(version.comment)))
                blocks.append(ul(lines))
                out.append(OutgoingMessage(
                    sub.chat,
                    message(*blocks, buttons=[[Button(t._("Today"), "today"), Button(t._("Agenda"), "agenda")]]),
                    meeting_id=meeting.id,
                    dedup_key=f"version:{meeting.id}:{version.number}:{sub.chat}",
                    cause=f"version {version.number}",
                ))
        if profile.is_group and sub.active:
            out.append(pinned_today(meeting, version, profile, today))
    return out


def pinned_today(meeting: Meeting, version: AgendaVersion, profile: ChatProfile, today: date) -> OutgoingMessage:
    """The group's pinned message: the day's sessions (or the next day that has some)."""
    viewer = _viewer(meeting, profile)
    t = viewer.t
    days = sorted({viewer.local_day(ps.session.start) for ps in version.sessions})
    shown = today if today in days else next((d for d in days if d > today), days[-1] if days else today)
    sessions = sorted((ps.session for ps in version.sessions if viewer.local_day(ps.session.start) == shown),
                      key=lambda s: (s.start, s.id))
    title = t._("Today's schedule") if shown == today else t._("Next meeting day")
    blocks: list[Block] = [p(b(title), " — ", meeting.title, " — ", t.date(shown))]
    if sessions:
        blocks.append(ul([viewer.session_line(s) for s in sessions]))
    else:
        blocks.append(p(t._("No sessions.")))
    blocks.append(p(i(t._("Updated with version {n}.").format(n=version.number))))
    return OutgoingMessage(
        profile.chat,
        message(*blocks),
        kind=OutboxKind.PIN_TODAY,
        meeting_id=meeting.id,
        dedup_key=f"pin:{meeting.id}:{version.number}:{shown.isoformat()}:{profile.chat}",
        cause=f"pinned schedule, version {version.number}",
    )


def reminder_moments(
    meeting: Meeting, deadline: Deadline, offsets: Iterable[timedelta]
) -> list[tuple[timedelta, datetime]]:
    """When each reminder of `deadline` is due, earliest first. A dated deadline's reminders come
    at 09:00 local time that many whole days before (a sub-day offset: 09:00 on the day)."""
    out = []
    for offset in offsets:
        if isinstance(deadline.due, datetime):
            out.append((offset, deadline.due - offset))
        else:
            out.append((offset, meeting.localize(deadline.due - timedelta(days=offset.days), ALL_DAY_REMINDER_AT)))
    return sorted(out, key=lambda x: x[1])


def deadline_end(meeting: Meeting, deadline: Deadline) -> datetime:
    if isinstance(deadline.due, datetime):
        return deadline.due
    return meeting.localize(deadline.due + timedelta(days=1), time(0, 0))


def due_reminders(
    meeting: Meeting,
    version: AgendaVersion,
    subscribers: Iterable[tuple[Subscription, ChatProfile]],
    offsets: Sequence[timedelta],
    now: datetime,
) -> list[OutgoingMessage]:
    """The reminder each subscriber should have now: for every deadline not yet passed, the latest
    reminder whose time has come (a server started late sends one, not a backlog of all)."""
    out: list[OutgoingMessage] = []
    chosen: list[tuple[Deadline, timedelta]] = []
    for deadline in version.deadlines:
        if now >= deadline_end(meeting, deadline):
            continue
        passed = [(o, at) for o, at in reminder_moments(meeting, deadline, offsets) if at <= now]
        if passed:
            chosen.append((deadline, passed[-1][0]))
    if not chosen:
        return out
    for sub, profile in subscribers:
        if not sub.wants(NoticeKind.DEADLINES):
            continue
        viewer = _viewer(meeting, profile)
        t = viewer.t
        today = viewer.local_day(now)
        for deadline, offset in chosen:
            due_text = deadline.due.isoformat()
            out.append(OutgoingMessage(
                sub.chat,
                message(
                    p(b(t._("Reminder")), " — ", meeting.title),
                    ul([viewer.deadline_line(deadline, today)]),
                    buttons=[[Button(t._("Deadlines"), "deadlines")]],
                ),
                meeting_id=meeting.id,
                dedup_key=f"reminder:{meeting.id}:{deadline.id}:{due_text}:{_iso(offset)}:{sub.chat}",
                cause=f"reminder {deadline.id} {_iso(offset)}",
            ))
    return out


def _iso(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    days, rest = divmod(seconds, 86400)
    return f"P{days}DT{rest}S" if rest else f"P{days}D"


def delivery_failed(
    item: OutboxItem,
    reason: str,
    moderator_chats: Sequence[ChatRef],
    language: str = "en",
) -> list[OutgoingMessage]:
    """Tell a meeting's moderators' chats that a chat could not be reached and was unsubscribed."""
    t = translator(language)
    chat = item.outgoing.chat
    meeting_id: MeetingId | None = item.outgoing.meeting_id
    return [
        OutgoingMessage(
            target,
            message(
                p(b(t._("Delivery stopped")), " — ", str(meeting_id or "")),
                p(t._("Messages to {chat} cannot be delivered ({reason}); its subscription was stopped.")
                  .format(chat=str(chat), reason=reason[:300])),
            ),
            meeting_id=meeting_id,
            dedup_key=f"failed:{chat}:{item.id}:{target}",
            cause=f"delivery to {chat} failed",
        )
        for target in moderator_chats
        if target != chat
    ]
