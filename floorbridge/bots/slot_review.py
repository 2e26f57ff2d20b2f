"""The secretariat's review of speaking-slot requests from chat, and the notice that tells a
delegate the decision on their own platform.

    review                          the meeting's calls, with how many requests wait
    review CALL                     the pending and waitlisted requests in draft order, with buttons
    review REF                      one request in full
    review REF approve [SESSION]    approve at the next free place of the session (asked for by default)
    review REF waitlist [REASON]    put on the waiting list
    review REF reject REASON        refuse, with the reason the delegate will read

Requests hold personal details: the review runs in a private chat or in one of the meeting's
moderators' chats, for the meeting's secretariat only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from floorbridge.core.chats import ChatProfile, ChatRef, Role, Staff
from floorbridge.core.errors import ConcurrentChange, InvalidInput, NotFound
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.meeting import Meeting
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.ports import SlotDesk
from floorbridge.core.richtext import Block, Button, Part, b, code, i, link, message, p, ul
from floorbridge.core.slots import REASON_LIMIT, SlotCall, SlotRequest, SlotStatus, draft_order
from floorbridge.core.speakers import QueueRefused
from floorbridge.core.versions import AgendaVersion

from .events import Reply
from .floor import chat_of
from .i18n import LANGUAGE_NAMES, Translator, translator
from .present import Viewer
from .slot_dialogue import MODE_LABELS, RANK_LABELS, STAKEHOLDER_LABELS, STATUS_LABELS, MeetingOf, slot_feed_url

if TYPE_CHECKING:
    from .conversation import Context

MAX_LISTED = 20
DECISION_WORDS = {"approve": SlotStatus.APPROVED, "waitlist": SlotStatus.WAITLISTED, "reject": SlotStatus.REJECTED}


def _session_title(version: AgendaVersion | None, sid: SessionId) -> str:
    published = version.session(sid) if version is not None else None
    return published.session.title if published is not None else sid


def slot_text(t: Translator, viewer: Viewer, version: AgendaVersion | None, r: SlotRequest) -> str:
    """An approved slot: number, session, start (in the reader's zone too) and minutes."""
    sid = r.approved_session or r.form.session
    when = viewer.moment(r.slot_start) if r.slot_start is not None else "?"
    return t._("number {n} in {session}, {time}, {minutes} minutes").format(
        n=r.order, session=_session_title(version, sid), time=when, minutes=r.slot_minutes)


class SlotReview:
    """The `review` command; the conversation routes it here."""

    def __init__(self, desk: SlotDesk | None, staff: Staff, staff_chats: Mapping[MeetingId, Sequence[ChatRef]], *,
                 meeting_of: MeetingOf) -> None:
        self.desk = desk
        self.staff = staff
        self.staff_chats = staff_chats
        self._meeting_of = meeting_of

    @staticmethod
    def _say(*blocks: Block, buttons: Sequence[Sequence[Button]] = ()) -> list[Reply]:
        return [Reply(message(*blocks, buttons=buttons))]

    async def handle(self, ctx: Context) -> list[Reply]:
        t = ctx.t
        if self.desk is None:
            return self._say(p(t._("Speaking-slot requests are not available here.")))
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, version = found
        if self.staff.role(meeting.id, ctx.incoming.user) is not Role.SECRETARIAT:
            return self._say(p(t._("Only the secretariat of {meeting} reviews speaking-slot requests.")
                               .format(meeting=meeting.title)))
        if ctx.incoming.is_group and ctx.incoming.chat not in self.staff_chats.get(meeting.id, ()):
            return self._say(p(t._("Speaking-slot requests hold personal details: review them in a private chat "
                                   "or in the moderators' chat.")))
        viewer = Viewer(t, meeting, ctx.profile.timezone)
        desk = self.desk
        if not ctx.args:
            return await self._calls(t, desk, meeting)
        word, rest = ctx.args[0], ctx.args[1:]
        calls = {c.id: c for c in await desk.store.calls(meeting.id)}
        if word.lower() in calls and not rest:
            return await self._pending(t, desk, viewer, version, calls[word.lower()])
        ref = word.upper()[:64]
        request = await desk.store.get_request(ref)
        if request is None or request.meeting_id != meeting.id:
            return self._say(p(t._("{meeting} has no speaking-slot request or call {ref}.")
                               .format(meeting=meeting.title, ref=word[:64])),
                             buttons=[[Button(t._("Speaking-slot calls"), "review")]])
        call = calls.get(request.call_id)
        if call is None:
            return self._say(p(t._("That call for speaking-slot requests no longer exists.")))
        if not rest:
            return self._show(t, viewer, version, call, request)
        return await self._decide(t, desk, viewer, version, call, request, rest)

    # ---------------------------------------------------------------- looking

    async def _calls(self, t: Translator, desk: SlotDesk, meeting: Meeting) -> list[Reply]:
        calls = await desk.store.calls(meeting.id)
        if not calls:
            return self._say(p(t._("{meeting} takes no speaking-slot requests at the moment.")
                               .format(meeting=meeting.title)))
        lines: list[list[Part]] = []
        buttons: list[list[Button]] = []
        for call in calls:
            requests = await desk.store.requests(meeting.id, call.id)
            waiting = len(draft_order(requests))
            approved = sum(1 for r in requests if r.status is SlotStatus.APPROVED)
            lines.append([b(call.title), " ", code(call.id), " — ",
                          t.n_("{n} request to review", "{n} requests to review", waiting).format(n=waiting),
                          ", ", t.n_("{n} approved", "{n} approved", approved).format(n=approved)])
            buttons.append([Button(call.title[:60], f"review {call.id}")])
        return self._say(p(b(t._("Speaking-slot requests: {meeting}").format(meeting=meeting.title))), ul(lines),
                         buttons=buttons)

    def _who(self, t: Translator, r: SlotRequest) -> list[Part]:
        f = r.form
        return [b(f.name), ", ", f.title, " (", f.delegation, ") · ", t._(RANK_LABELS[f.rank])]

    async def _pending(self, t: Translator, desk: SlotDesk, viewer: Viewer, version: AgendaVersion | None,
                       call: SlotCall) -> list[Reply]:
        requests = await desk.store.requests(call.meeting_id, call.id)
        queue = draft_order(requests)
        until = t._("requests until {deadline}").format(deadline=viewer.moment(call.deadline))
        heading = p(b(call.title), " — ", until)
        if not queue:
            return self._say(heading, p(t._("No request waits for review.")))
        rows: list[list[Part]] = []
        buttons: list[list[Button]] = []
        for n, r in enumerate(queue[:MAX_LISTED], start=1):
            row: list[Part] = [f"{n}. ", code(r.ref), " ", *self._who(t, r), " · ",
                               _session_title(version, r.form.session), " · ", t._(MODE_LABELS[r.form.mode])]
            if r.status is SlotStatus.WAITLISTED:
                row += [" · ", i(t._(STATUS_LABELS[r.status]))]
            rows.append(row)
            buttons.append([Button(t._("Approve {ref}").format(ref=r.ref), f"review {r.ref} approve"),
                            Button(t._("Waitlist {ref}").format(ref=r.ref), f"review {r.ref} waitlist")])
        blocks: list[Block] = [heading, p(t._("In draft order: protocol precedence, then time of receipt.")),
                               ul(rows)]
        if len(queue) > MAX_LISTED:
            more = len(queue) - MAX_LISTED
            blocks.append(p(i(t.n_("… and {n} more", "… and {n} more", more).format(n=more))))
        blocks.append(p(i(t._("To refuse one, send {example} with the reason the delegate will read.")
                          .format(example="review REF reject REASON"))))
        return self._say(*blocks, buttons=buttons)

    def _show(self, t: Translator, viewer: Viewer, version: AgendaVersion | None, call: SlotCall,
              r: SlotRequest) -> list[Reply]:
        f = r.form
        rows: list[list[Part]] = [
            [b(t._("Name:")), " ", f.name],
            [b(t._("Title or function:")), " ", f.title],
            [b(t._("Delegation:")), " ", f.delegation],
            [b(t._("Stakeholder group:")), " ", t._(STAKEHOLDER_LABELS[f.stakeholder])],
            [b(t._("Rank:")), " ", t._(RANK_LABELS[f.rank])],
            [b(t._("Session:")), " ", _session_title(version, f.session), " ", code(f.session)],
            [b(t._("Mode:")), " ", t._(MODE_LABELS[f.mode])],
            [b(t._("Language:")), " ", LANGUAGE_NAMES.get(f.language, f.language)],
            [b(t._("Received:")), " ", viewer.moment(r.received_at)],
        ]
        status: list[Part] = [b(t._("Status:")), " ", t._(STATUS_LABELS[r.status])]
        if r.status is SlotStatus.APPROVED:
            status += [" — ", slot_text(t, viewer, version, r)]
        elif r.reason:
            status += [" (", r.reason, ")"]
        rows.append(status)
        buttons: list[list[Button]] = []
        if r.status is not SlotStatus.WITHDRAWN:
            buttons.append([Button(t._("Approve"), f"review {r.ref} approve"),
                            Button(t._("Waitlist"), f"review {r.ref} waitlist")])
            for n, s in enumerate(call.sessions, start=1):
                if s != f.session:
                    label = t._("Approve in {session}").format(session=_session_title(version, s)[:40])
                    buttons.append([Button(label, f"review {r.ref} approve {n}")])
        return self._say(p(b(call.title), " ", code(r.ref)), ul(rows), buttons=buttons)

    # ---------------------------------------------------------------- deciding

    async def _decide(self, t: Translator, desk: SlotDesk, viewer: Viewer, version: AgendaVersion | None,
                      call: SlotCall, r: SlotRequest, words: list[str]) -> list[Reply]:
        verb, rest = words[0].lower(), words[1:]
        decision = DECISION_WORDS.get(verb)
        if decision is None:
            unknown = t._("{word} is not a decision: use approve, waitlist or reject.")
            return self._say(p(unknown.format(word=verb[:30])),
                             buttons=[[Button(t._("Show {ref}").format(ref=r.ref), f"review {r.ref}")]])
        reason = " ".join(" ".join(rest).split())
        try:
            if decision is SlotStatus.APPROVED:
                session = self._session(call, rest[0]) if rest else None
                if rest and session is None:
                    return self._say(p(t._("{session} is not one of the segment's sessions: {sessions}.")
                                       .format(session=rest[0][:64], sessions=", ".join(call.sessions))))
                decided = await desk.approve_next(r.ref, meeting_id=call.meeting_id, session=session,
                                                  expected_updated_at=r.updated_at)
            else:
                if decision is SlotStatus.REJECTED and not reason:
                    return self._say(p(t._("A rejection needs the reason the delegate will read: {example}.")
                                       .format(example=f"review {r.ref} reject REASON")))
                if len(reason) > REASON_LIMIT:
                    too_long = t._("That reason is too long: at most {n} characters.")
                    return self._say(p(too_long.format(n=REASON_LIMIT)))
                decided = await desk.decide(r.ref, decision, meeting_id=call.meeting_id, reason=reason,
                                            expected_updated_at=r.updated_at)
        except QueueRefused as exc:
            return self._say(p(t._("Refused: {reason}.").format(reason=exc.reason.rstrip("."))))
        except InvalidInput as exc:
            return self._say(p(t._("Refused: {reason}.").format(reason="; ".join(str(x) for x in exc.problems))))
        except (ConcurrentChange, NotFound):
            return self._say(p(t._("Request {ref} changed meanwhile; look at it again.").format(ref=r.ref)),
                             buttons=[[Button(t._("Show {ref}").format(ref=r.ref), f"review {r.ref}")]])
        done: list[Part] = ["✅ ", code(decided.ref), " ", b(decided.form.name), " (", decided.form.delegation, "): ",
                            t._(STATUS_LABELS[decided.status])]
        if decided.status is SlotStatus.APPROVED:
            done += [" — ", slot_text(t, viewer, version, decided)]
        elif decided.reason:
            done += [" (", decided.reason, ")"]
        told = (t._("The delegate is told in their chat.") if chat_of(decided.notify) is not None
                else t._("The delegate asked on the web: they see the decision on their request's page."))
        buttons = [Button(t._("Next request"), f"review {call.id}")]
        if decided.approved_session is not None and len(f"slot list {decided.approved_session}") <= 64:
            buttons.append(Button(t._("List of speakers"), f"slot list {decided.approved_session}"))
        return self._say(p(*done), p(i(told)), buttons=[buttons])

    @staticmethod
    def _session(call: SlotCall, word: str) -> SessionId | None:
        """The session named after `approve` (its id, or its number in the call)."""
        if word in call.sessions:
            return SessionId(word)
        same = [s for s in call.sessions if s.lower() == word.lower()]
        if len(same) == 1:
            return same[0]
        if word.isdigit() and 1 <= int(word) <= len(call.sessions):
            return call.sessions[int(word) - 1]
        return None


# ------------------------------------------------------------------------------------ the notice


def decision_notice(request: SlotRequest, call: SlotCall, meeting: Meeting, version: AgendaVersion | None,
                    profile: ChatProfile | None, public_url: str) -> OutgoingMessage | None:
    """The decision, told to the delegate in the chat they asked from, in its language and zone."""
    chat = chat_of(request.notify)
    if chat is None:
        return None
    t = translator(profile.language if profile else "en")
    viewer = Viewer(t, meeting, profile.timezone if profile else "")
    ref, title = request.ref, call.title
    blocks: list[Block]
    if request.status is SlotStatus.APPROVED:
        approved = t._("Your speaking-slot request {ref} for {call} is approved.")
        blocks = [p("✅ ", b(approved.format(ref=ref, call=title))),
                  p(t._("Your slot: {slot}.").format(slot=slot_text(t, viewer, version, request)))]
        sid = request.approved_session or request.form.session
        published = version.session(sid) if version is not None else None
        remote_url = (published.session.remote_url if published is not None else "") or meeting.remote.url
        if request.form.mode.value == "remote" and remote_url:
            blocks.append(p(t._("You speak remotely: join the remote participation link before your slot:"), " ",
                            link(remote_url, remote_url)))
        if request.feed_token:
            blocks.append(p(t._("Your personal calendar link shows the slot:"), " ",
                            link(slot_feed_url(public_url, request.feed_token))))
    elif request.status is SlotStatus.WAITLISTED:
        blocks = [p("⏳ ", b(t._("Your speaking-slot request {ref} for {call} is on the waiting list.")
                              .format(ref=ref, call=title))),
                  p(t._("You will be told here if a slot becomes free."))]
    elif request.status is SlotStatus.REJECTED:
        refused = t._("Your speaking-slot request {ref} for {call} was not accepted.")
        blocks = [p(b(refused.format(ref=ref, call=title)))]
    else:
        return None
    if request.reason and request.status is not SlotStatus.APPROVED:
        blocks.append(p(t._("The secretariat's note: {reason}").format(reason=request.reason)))
    blocks.append(p(i(t._("Send {command} to see your requests.").format(command="slot mine"))))
    stamp = request.updated_at.isoformat() if request.updated_at else ""
    return OutgoingMessage(chat, message(*blocks, buttons=[[Button(t._("My requests"), "slot mine")]]),
                           meeting_id=meeting.id, dedup_key=f"slot:{ref}:{request.status.value}:{stamp}",
                           cause=f"slot {request.status.value} {ref}")

