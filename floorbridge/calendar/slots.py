"""A delegate's private feed of their speaking slot: /ical/slot/{token}.ics.

One VEVENT once the secretariat approves the request, at the slot's wall-clock time in the
meeting's zone; none while it waits for review. A slot that was in the calendar and is then
withdrawn or rejected stays in the feed as STATUS:CANCELLED (with "Cancelled: " in the SUMMARY,
since several clients ignore STATUS in subscribed feeds) so that clients drop or strike it.

What the feed knows comes from the request alone: a withdrawal keeps the approved slot, so an
approved-then-withdrawn request is cancelled at the slot's time; a rejection clears the slot, so
a rejected request is shown cancelled at the time of the session it asked for (a delegate who
never had the event only sees that the request will not be heard). A request that goes back to
review (changed, waitlisted) drops the event: subscribed clients remove what a feed no longer lists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from icalendar import Alarm, Calendar, Event, vText, vUri

from floorbridge.core.agenda import Session
from floorbridge.core.meeting import Meeting, zone
from floorbridge.core.slots import Mode, SlotRequest, SlotStatus

from .events import CANCELLED_PREFIX, clean_text, location, remote_link
from .feeds import PRODID
from .vtimezone import vtimezone

SUMMARY_PREFIX = "Your statement: "
REMINDER_BEFORE = timedelta(minutes=15)


def slot_uid(request: SlotRequest) -> str:
    """Stable for the request's whole life, whatever its session, time or status."""
    return f"slot-{request.ref}@floorbridge"


def slot_sequence(request: SlotRequest) -> int:
    """Seconds from receipt to the last change: grows every time the request changes (each
    change sets `updated_at`), and never depends on when the feed is fetched."""
    if request.updated_at is None:
        return 0
    return max(int((request.updated_at - request.received_at).total_seconds()), 0)


def _span(request: SlotRequest, session: Session | None) -> tuple[datetime, datetime] | None:
    if request.slot_start is not None:
        minutes = request.slot_minutes if request.slot_minutes > 0 else 1
        return request.slot_start, request.slot_start + timedelta(minutes=minutes)
    if session is not None:
        return session.start, session.end
    return None


def _cancelled(request: SlotRequest) -> bool:
    if request.status is SlotStatus.WITHDRAWN:
        return request.slot_start is not None  # withdrawn after approval: the slot is still known
    return request.status is SlotStatus.REJECTED


def _description(meeting: Meeting, request: SlotRequest, session: Session | None, cancelled: bool) -> str:
    form = request.form
    lines: list[str] = []
    if cancelled:
        lines.append("This speaking slot has been cancelled." if request.status is SlotStatus.WITHDRAWN
                     else "This speaking-slot request was not accepted.")
        if request.reason.strip():
            lines.append(f"Reason: {clean_text(request.reason)}")
    else:
        lines.append(f"Speaking order: {request.order}")
        lines.append(f"Time allotted: {request.slot_minutes} minutes")
    lines.append("Mode: " + ("remote" if form.mode is Mode.REMOTE else "in the room"))
    lines.append(f"Language: {form.language}")
    lines.append(f"Speaker: {clean_text(form.name)}, {clean_text(form.title)} ({clean_text(form.delegation)})")
    lines.append(f"Reference: {request.ref}")
    link = remote_link(meeting, session) if session is not None else meeting.remote.url
    if form.mode is Mode.REMOTE and link and not cancelled:
        platform = f" ({clean_text(meeting.remote.platform)})" if meeting.remote.platform.strip() else ""
        lines.append(f"Remote participation{platform}: {link}")
    return "\n".join(lines)


def slot_event(meeting: Meeting, request: SlotRequest, session: Session | None) -> Event | None:
    """The VEVENT of an approved (or cancelled) slot; None while there is nothing to show."""
    cancelled = _cancelled(request)
    approved = request.status is SlotStatus.APPROVED and request.slot_start is not None
    if not (approved or cancelled):
        return None
    span = _span(request, session)
    if span is None:
        return None
    start, end = span
    stamp = (request.updated_at or request.received_at).astimezone(UTC)
    title = clean_text(session.title) if session is not None else str(request.approved_session or request.form.session)
    ev = Event()
    ev.add("UID", slot_uid(request))
    ev.add("DTSTAMP", stamp)
    ev.add("LAST-MODIFIED", stamp)
    ev.add("SEQUENCE", slot_sequence(request))
    # Wall-clock time with TZID, as the agenda feeds: 11:12 in Geneva stays 11:12 in Geneva.
    ev.add("DTSTART", meeting.local(start))
    ev.add("DTEND", meeting.local(end))
    summary = SUMMARY_PREFIX + title
    ev.add("SUMMARY", CANCELLED_PREFIX + summary if cancelled else summary)
    ev.add("DESCRIPTION", _description(meeting, request, session, cancelled))
    if session is not None and request.form.mode is Mode.IN_ROOM:
        where = location(meeting, session)
        if where:
            ev.add("LOCATION", where)
    ev.add("STATUS", "CANCELLED" if cancelled else "CONFIRMED")
    ev.add("TRANSP", "TRANSPARENT" if cancelled else "OPAQUE")
    link = remote_link(meeting, session) if session is not None else meeting.remote.url
    if request.form.mode is Mode.REMOTE and link and not cancelled:
        ev.add("URL", vUri(link), parameters={"VALUE": "URI"})
    if not cancelled:
        alarm = Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", f"{summary} (in 15 minutes)")
        alarm.add("TRIGGER", -REMINDER_BEFORE)
        ev.add_component(alarm)
    return ev


def render_slot_calendar(meeting: Meeting, request: SlotRequest, session: Session | None, *,
                         refresh_minutes: int = 60) -> bytes:
    """The VCALENDAR of one request's feed. `session` is the agenda's session of the slot (the
    approved one, else the one asked for), None if the agenda no longer has it."""
    cal = Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    cal.add("CALSCALE", "GREGORIAN")
    cal.add("METHOD", "PUBLISH")
    name = " ".join(clean_text(f"Your speaking slot — {meeting.title}").split())
    cal.add("NAME", vText(name))
    cal.add("X-WR-CALNAME", vText(name))
    cal.add("X-WR-TIMEZONE", vText(meeting.timezone))
    every = f"PT{max(refresh_minutes, 1)}M"
    cal.add("REFRESH-INTERVAL", vText(every), parameters={"VALUE": "DURATION"})
    cal.add("X-PUBLISHED-TTL", vText(every))
    event = slot_event(meeting, request, session)
    days = [meeting.start_date, meeting.end_date]
    if event is not None:
        days += [meeting.local(event.decoded("DTSTART")).date(), meeting.local(event.decoded("DTEND")).date()]
    # The meeting's zone is always described (X-WR-TIMEZONE names it); it also keeps an empty
    # calendar valid, since RFC 5545 wants at least one component.
    cal.add_component(vtimezone(meeting.timezone, zone(meeting.timezone), min(days), max(days)))
    if event is not None:
        cal.add_component(event)
    return cast(bytes, cal.to_ical())


__all__ = ["render_slot_calendar", "slot_event", "slot_sequence", "slot_uid"]
