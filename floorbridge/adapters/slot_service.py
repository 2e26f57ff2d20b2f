"""Speaking-slot requests of a running floorbridge: filing, changing and withdrawing them until
the deadline, and the secretariat's review. Each request gets a reference for the delegate and
its own private calendar feed (the approved slot appears in it)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from floorbridge.core.agenda import Session
from floorbridge.core.errors import InvalidInput, NotFound, Problem
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.ports import AgendaStore, SlotStore
from floorbridge.core.slots import (
    SlotCall,
    SlotForm,
    SlotRequest,
    SlotStatus,
    change_allowed,
    check_submission,
    next_place,
    review,
)
from floorbridge.core.speakers import QueueRefused

# The messages telling a delegate of the secretariat's decision (written with the decision).
DecisionNotices = Callable[[SlotRequest, SlotCall], Awaitable[Sequence[OutgoingMessage]]]

_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud on the phone


def new_ref(call: SlotCall) -> str:
    code = "".join(secrets.choice(_REF_ALPHABET) for _ in range(6))
    return f"{call.id[:12].upper()}-{code}"


class SlotService:
    def __init__(self, store: SlotStore, agenda: AgendaStore, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.agenda = agenda
        self.clock = clock
        self._notices: DecisionNotices | None = None
        self._on_enqueued: Callable[[], None] = lambda: None

    def tell_requesters(self, notices: DecisionNotices, on_enqueued: Callable[[], None]) -> None:
        """Have every decision tell the delegate in chat: the chat runtime, which knows the
        platforms and the delegates' languages, gives the messages and wakes its delivery."""
        self._notices = notices
        self._on_enqueued = on_enqueued

    async def call(self, meeting_id: MeetingId, call_id: str) -> SlotCall:
        call = await self.store.get_call(meeting_id, call_id)
        if call is None:
            raise NotFound(f"{meeting_id} has no speaking-slot call {call_id!r}")
        return call

    async def open_call(self, call: SlotCall) -> None:
        """Create or change a segment's rules; its sessions must exist in the published agenda."""
        version = await self.agenda.latest_version(call.meeting_id)
        if version is None:
            raise NotFound(f"meeting {call.meeting_id!r} has no published agenda")
        known = {ps.session.id for ps in version.sessions}
        unknown = [s for s in call.sessions if s not in known]
        problems = [Problem("sessions", f"{s!r} is not a session of {call.meeting_id}") for s in unknown]
        if not call.sessions:
            problems.append(Problem("sessions", "name at least one session"))
        if call.deadline.tzinfo is None:
            problems.append(Problem("deadline", "needs a timezone"))
        if problems:
            raise InvalidInput(problems)
        await self.store.save_call(call)

    async def submit(self, meeting_id: MeetingId, call_id: str, form: SlotForm, requester: str,
                     notify: str = "") -> SlotRequest:
        call = await self.call(meeting_id, call_id)
        now = self.clock()
        check_submission(call, form, requester, now, await self.store.requests(meeting_id, call_id))
        request = SlotRequest(new_ref(call), call.id, meeting_id, requester, form, now, updated_at=now,
                              notify=notify, feed_token=secrets.token_urlsafe(32))
        await self.store.add_request(request, [])
        return request

    async def mine(self, ref: str, requester: str) -> tuple[SlotCall, SlotRequest]:
        request = await self.store.get_request(ref)
        if request is None or request.requester != requester:
            raise NotFound(f"you have no speaking-slot request {ref!r}")
        return await self.call(request.meeting_id, request.call_id), request

    async def change(self, ref: str, form: SlotForm, requester: str) -> SlotRequest:
        call, request = await self.mine(ref, requester)
        now = self.clock()
        change_allowed(request, requester, call, now)
        check_submission(call, form, requester, now, await self.store.requests(call.meeting_id, call.id),
                         replacing=ref)
        # A changed request goes back to review: the secretariat decided on the old one.
        changed = replace(request, form=form, status=SlotStatus.PENDING, approved_session=None, order=0,
                          slot_start=None, slot_minutes=0, reason="", updated_at=now)
        await self.store.update_request(changed, request.updated_at, [])
        return changed

    async def withdraw(self, ref: str, requester: str) -> SlotRequest:
        call, request = await self.mine(ref, requester)
        now = self.clock()
        change_allowed(request, requester, call, now)
        withdrawn = replace(request, status=SlotStatus.WITHDRAWN, updated_at=now)
        await self.store.update_request(withdrawn, request.updated_at, [])
        return withdrawn

    async def session_of(self, meeting_id: MeetingId, session_id: SessionId) -> Session:
        version = await self.agenda.latest_version(meeting_id)
        published = version.session(session_id) if version is not None else None
        if published is None:
            raise NotFound(f"{session_id!r} is not a session of the published agenda of {meeting_id}")
        return published.session

    async def decide(self, ref: str, decision: SlotStatus, *, meeting_id: MeetingId, reason: str = "",
                     session: SessionId | None = None, order: int = 0, start: datetime | None = None,
                     minutes: int = 0, expected_updated_at: datetime | None = None) -> SlotRequest:
        """Approve (session, order, start, minutes), waitlist or reject (with a reason) a request;
        the delegate's notice is stored in the same transaction."""
        request = await self._request(ref, meeting_id)
        call = await self.call(meeting_id, request.call_id)
        if decision is SlotStatus.APPROVED:
            session = session or request.form.session
            if session not in call.sessions:
                raise QueueRefused(f"{session!r} is not one of the segment's sessions", "invalid")
            minutes = minutes or call.minutes
            if start is not None:
                await self._check_within(meeting_id, session, start, minutes)
        decided = review(request, decision, self.clock(), reason=reason, session=session, order=order,
                         start=start, minutes=minutes)
        notices = await self._notices(decided, call) if self._notices is not None else []
        await self.store.update_request(decided, expected_updated_at or request.updated_at, notices)
        if notices:
            self._on_enqueued()
        return decided

    async def approve_next(self, ref: str, *, meeting_id: MeetingId, session: SessionId | None = None,
                           expected_updated_at: datetime | None = None) -> SlotRequest:
        """Approve a request at the next free place of a session (the one asked for by default):
        after the last approved speaker, for the segment's time per statement."""
        request = await self._request(ref, meeting_id)
        call = await self.call(meeting_id, request.call_id)
        sid = session or request.approved_session or request.form.session
        if sid not in call.sessions:
            raise QueueRefused(f"{sid!r} is not one of the segment's sessions ({', '.join(call.sessions)})", "invalid")
        opens = (await self.session_of(meeting_id, sid)).start
        order, start = next_place(await self.store.requests(meeting_id), sid, opens, skip=ref)
        return await self.decide(ref, SlotStatus.APPROVED, meeting_id=meeting_id, session=sid, order=order,
                                 start=start, minutes=call.minutes,
                                 expected_updated_at=expected_updated_at or request.updated_at)

    async def _request(self, ref: str, meeting_id: MeetingId) -> SlotRequest:
        request = await self.store.get_request(ref)
        if request is None or request.meeting_id != meeting_id:
            raise NotFound(f"{meeting_id} has no speaking-slot request {ref!r}")
        return request

    async def _check_within(self, meeting_id: MeetingId, session_id: SessionId, start: datetime,
                            minutes: int) -> None:
        s = await self.session_of(meeting_id, session_id)
        if s.start <= start and start + timedelta(minutes=minutes) <= s.end:
            return
        meeting = await self.agenda.get_meeting(meeting_id)
        raise InvalidInput([Problem("start", f"{meeting.local(start):%d %B %Y %H:%M} + {minutes} minutes is "
                                             f"outside {s.title} ({meeting.local(s.start):%H:%M}–"
                                             f"{meeting.local(s.end):%H:%M}, {meeting.timezone})")])
