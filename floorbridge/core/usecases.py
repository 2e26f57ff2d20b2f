"""Use cases over the ports: what the CLI, the web console and the bots ask the core to do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from .agenda import Session
from .deadline import Deadline
from .errors import InvalidInput, NotFound, Problem
from .ids import MeetingId
from .meeting import Meeting, check_meeting
from .outbox import OutgoingMessage
from .ports import AgendaStore, RenderedFeed
from .versions import AgendaVersion, publish

FeedRenderer = Callable[[Meeting, AgendaVersion], Mapping[str, RenderedFeed]]
Announcer = Callable[[Meeting, AgendaVersion], Awaitable[Sequence[OutgoingMessage]]]


async def import_agenda(
    store: AgendaStore,
    meeting_id: MeetingId,
    *,
    defined_meeting: Meeting | None,
    sessions: Sequence[Session],
    deadlines: Sequence[Deadline] | None,
    source: str,
) -> Meeting:
    """Replace the meeting's working copy with an imported agenda, all or nothing.

    `defined_meeting` is the meeting the file itself describes (YAML, frab), which creates
    the meeting or updates its details. The caller has already validated the file.
    """
    if defined_meeting is not None:
        if defined_meeting.id != meeting_id:
            raise InvalidInput(
                [Problem(source, f"the file describes meeting {defined_meeting.id!r}, not {meeting_id!r}")],
                source=source,
            )
        check_meeting(defined_meeting)
        meeting = defined_meeting
    else:
        try:
            meeting = await store.get_meeting(meeting_id)
        except NotFound:
            raise InvalidInput(
                [Problem(source, f"meeting {meeting_id!r} does not exist; create it with a YAML file "
                                 "that has a 'meeting:' block")],
                source=source,
            ) from None
    await store.replace_working_copy(meeting_id, sessions, deadlines, defined_meeting)
    return meeting


async def publish_agenda(
    store: AgendaStore,
    meeting_id: MeetingId,
    render: FeedRenderer,
    *,
    now: datetime,
    comment: str = "",
    announce: Announcer | None = None,
) -> AgendaVersion:
    """Freeze the working copy as the next version and store it with its rendered feeds and the
    chat messages that announce it (`announce`), all in one transaction.

    Raises NothingToPublish when nothing changed, ConcurrentChange when another publisher
    stored the same version number first.
    """
    meeting = await store.get_meeting(meeting_id)
    working = await store.working_copy(meeting_id)
    previous = await store.latest_version(meeting_id)
    version = publish(meeting_id, previous, working.sessions, working.deadlines, now=now, comment=comment)
    messages = await announce(meeting, version) if announce is not None else ()
    await store.save_version(version, render(meeting, version), messages)
    return version
