"""The `slot` command: requesting a speaking slot in chat, one question at a time.

    slot                    the meeting's calls for speaking-slot requests, as buttons
    slot CALL               start (or go back to) a request for that call
    slot name TEXT          answer a question: name, title and delegation are free text;
    slot stakeholder X      stakeholder, rank, session, mode and language come as buttons
    slot send | cancel      file the request (or the change) / discard the unfinished one
    slot mine               your requests, their status and buttons to change or withdraw them
    slot change REF         change a request (before the deadline; it goes back to review)
    slot withdraw REF       withdraw it (before the deadline)
    slot list [SESSION]     the rolling list of approved speakers of a session (public, groups too)

The adapters deliver commands only (Discord slash commands and buttons, Matrix "!" messages,
Telegram groups), never a bare reply, so each free-text question tells the user to answer with
the command itself ("slot name Amina Diallo"). The answers so far are kept in memory per
(chat, user) for an hour of inactivity: an unfinished request is lost on restart, and nothing is
stored until the user sends it. Requests hold personal details, so the dialogue runs in private
chats only; the reference and the personal feed link are shown there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeAlias

from floorbridge.core.chats import ChatRef, UserRef
from floorbridge.core.errors import ConcurrentChange, InvalidInput, NotFound
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.meeting import Meeting
from floorbridge.core.ports import AgendaStore, SlotDesk
from floorbridge.core.richtext import Block, Button, Part, b, code, i, link, message, p, ul
from floorbridge.core.slots import (
    FIELD_LIMITS,
    Mode,
    ProtocolRank,
    SlotCall,
    SlotForm,
    SlotRequest,
    SlotStatus,
    Stakeholder,
    rolling_list,
)
from floorbridge.core.speakers import QueueRefused
from floorbridge.core.versions import AgendaVersion

from .events import Reply
from .i18n import LANGUAGE_NAMES
from .present import Viewer

if TYPE_CHECKING:
    from .conversation import Context

MeetingOf: TypeAlias = "Callable[[Context], Awaitable[tuple[Meeting, AgendaVersion] | Reply]]"

DRAFT_LIFETIME = timedelta(hours=1)
MAX_DRAFTS = 10_000
MAX_COMMAND_BYTES = 64  # Telegram's limit on a button's callback data (Discord allows 100)
MAX_LISTED = 20


def N_(text: str) -> str:
    return text


STAKEHOLDER_LABELS: dict[Stakeholder, str] = {
    Stakeholder.GOVERNMENT: N_("Government"),
    Stakeholder.PRIVATE_SECTOR: N_("Private sector"),
    Stakeholder.CIVIL_SOCIETY: N_("Civil society"),
    Stakeholder.INTERNATIONAL_ORGANISATION: N_("International organisation"),
    Stakeholder.ACADEMIA: N_("Academia"),
    Stakeholder.TECHNICAL_COMMUNITY: N_("Technical community"),
}
RANK_LABELS: dict[ProtocolRank, str] = {
    ProtocolRank.HEAD_OF_STATE_OR_GOVERNMENT: N_("Head of State or Government"),
    ProtocolRank.VICE_PRESIDENT_OR_DEPUTY_PRIME_MINISTER: N_("Vice-President or Deputy Prime Minister"),
    ProtocolRank.MINISTER: N_("Minister"),
    ProtocolRank.DEPUTY_MINISTER: N_("Deputy Minister"),
    ProtocolRank.HEAD_OF_REGULATOR_OR_AGENCY: N_("Head of a regulatory authority or agency"),
    ProtocolRank.AMBASSADOR_OR_HEAD_OF_DELEGATION: N_("Ambassador or head of delegation"),
    ProtocolRank.OTHER: N_("Other"),
}
MODE_LABELS: dict[Mode, str] = {
    Mode.IN_ROOM: N_("In the room"),
    Mode.REMOTE: N_("Remotely"),
}
STATUS_LABELS: dict[SlotStatus, str] = {
    SlotStatus.PENDING: N_("waiting for review"),
    SlotStatus.APPROVED: N_("approved"),
    SlotStatus.WAITLISTED: N_("on the waiting list"),
    SlotStatus.REJECTED: N_("not accepted"),
    SlotStatus.WITHDRAWN: N_("withdrawn"),
}

TEXT_FIELDS = ("name", "title", "delegation")
CHOICE_FIELDS = ("stakeholder", "rank", "session", "mode", "language")
FIELDS = TEXT_FIELDS + CHOICE_FIELDS


def slot_feed_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/ical/slot/{token}.ics"


def _same_delegation(a: str, b_: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b_.casefold().split())


def _fits(command: str) -> bool:
    return 0 < len(command.encode()) <= MAX_COMMAND_BYTES


def _form(draft: Draft) -> SlotForm:
    """The form of a draft whose every question is answered."""
    v = draft.values
    stakeholder, rank, mode = v["stakeholder"], v["rank"], v["mode"]
    assert isinstance(stakeholder, Stakeholder) and isinstance(rank, ProtocolRank) and isinstance(mode, Mode)
    return SlotForm(name=str(v["name"]), title=str(v["title"]), delegation=str(v["delegation"]),
                    stakeholder=stakeholder, rank=rank, session=SessionId(str(v["session"])), mode=mode,
                    language=str(v["language"]))


@dataclass
class Draft:
    """A request being filled in: the answers so far (text, or the enum member chosen)."""

    meeting_id: MeetingId
    call_id: str
    touched: datetime
    values: dict[str, object] = field(default_factory=dict)
    editing: str = ""  # the reference of the request being changed, "" for a new one


@dataclass(frozen=True)
class Scene:
    """What every step needs: the call, its meeting and agenda, and the user's view of times."""

    call: SlotCall
    meeting: Meeting
    version: AgendaVersion | None
    viewer: Viewer

    def session_title(self, sid: SessionId) -> str:
        published = self.version.session(sid) if self.version is not None else None
        return published.session.title if published is not None else sid

    def session_parts(self, sid: SessionId) -> list[Part]:
        published = self.version.session(sid) if self.version is not None else None
        if published is None:
            return [code(sid)]
        s = published.session
        return [self.viewer.span(s.start, s.end, with_day=True), " ", b(s.title)]


class SlotDialogue:
    def __init__(self, desk: SlotDesk | None, agenda: AgendaStore, *, public_url: str,
                 clock: Callable[[], datetime], meeting_of: MeetingOf) -> None:
        self.desk = desk
        self.agenda = agenda
        self.public_url = public_url
        self.clock = clock
        self._meeting_of = meeting_of
        self._drafts: dict[tuple[ChatRef, UserRef], Draft] = {}

    # ---------------------------------------------------------------- entry point

    async def handle(self, ctx: Context) -> list[Reply]:
        t = ctx.t
        if self.desk is None:
            return self._say(p(t._("Speaking-slot requests are not available here.")))
        desk = self.desk
        if ctx.args and ctx.args[0].lower() == "list":
            return await self._rolling(ctx, desk, ctx.args[1:])
        if ctx.incoming.is_group:
            return self._say(p(t._("A speaking-slot request holds your personal details: ask me in a private chat.")))
        if not ctx.args:
            return await self._calls(ctx, desk)
        head, rest = ctx.args[0].lower(), ctx.args[1:]
        if head == "mine":
            return await self._mine(ctx, desk)
        if head == "withdraw":
            return await self._withdraw(ctx, desk, rest)
        if head == "change":
            return await self._change(ctx, desk, rest)
        if head == "send":
            return await self._send(ctx, desk)
        if head == "cancel":
            return self._cancel(ctx)
        if head in FIELDS:
            return await self._answer(ctx, desk, head, rest)
        return await self._start(ctx, desk, ctx.args[0])

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _say(*blocks: Block, buttons: Sequence[Sequence[Button]] = ()) -> list[Reply]:
        return [Reply(message(*blocks, buttons=[[x for x in row if _fits(x.command) or x.url] for row in buttons]),
                      private=True)]

    @staticmethod
    def _requester(ctx: Context) -> str:
        return str(ctx.incoming.user)

    def _key(self, ctx: Context) -> tuple[ChatRef, UserRef]:
        return ctx.incoming.chat, ctx.incoming.user

    def _draft(self, ctx: Context) -> Draft | None:
        draft = self._drafts.get(self._key(ctx))
        if draft is not None and self.clock() - draft.touched > DRAFT_LIFETIME:
            del self._drafts[self._key(ctx)]
            return None
        return draft

    def _keep(self, ctx: Context, draft: Draft) -> None:
        draft.touched = self.clock()
        self._drafts[self._key(ctx)] = draft
        if len(self._drafts) > MAX_DRAFTS:
            oldest = min(self._drafts, key=lambda k: self._drafts[k].touched)
            del self._drafts[oldest]

    def _drop(self, ctx: Context) -> None:
        self._drafts.pop(self._key(ctx), None)

    async def _scene(self, ctx: Context, call: SlotCall) -> Scene:
        meeting = await self.agenda.get_meeting(call.meeting_id)
        version = await self.agenda.latest_version(call.meeting_id)
        return Scene(call, meeting, version, Viewer(ctx.t, meeting, ctx.profile.timezone))

    def _closed(self, ctx: Context, scene: Scene, *, changing: bool = False) -> list[Reply]:
        t = ctx.t
        deadline = scene.viewer.moment(scene.call.deadline)
        if changing:
            text = t._("The deadline for {call} passed on {deadline}: requests can no longer be changed or "
                       "withdrawn. Please write to the secretariat.")
        else:
            text = t._("The deadline for speaking-slot requests for {call} passed on {deadline}.")
        return self._say(p(text.format(call=scene.call.title, deadline=deadline)))

    @staticmethod
    def _steps(call: SlotCall) -> list[str]:
        """The questions this call asks: a choice with a single option is not asked."""
        steps = [*TEXT_FIELDS, "stakeholder", "rank"]
        if len(call.sessions) > 1:
            steps.append("session")
        if len(call.modes) > 1:
            steps.append("mode")
        if len(call.languages) > 1:
            steps.append("language")
        return steps

    @staticmethod
    def _defaults(call: SlotCall) -> dict[str, object]:
        values: dict[str, object] = {}
        if len(call.sessions) == 1:
            values["session"] = call.sessions[0]
        if len(call.modes) == 1:
            values["mode"] = next(iter(call.modes))
        if len(call.languages) == 1:
            values["language"] = call.languages[0]
        return values

    # ---------------------------------------------------------------- slot: the calls

    async def _calls(self, ctx: Context, desk: SlotDesk) -> list[Reply]:
        t = ctx.t
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, _version = found
        viewer = Viewer(t, meeting, ctx.profile.timezone)
        now = self.clock()
        calls = await desk.store.calls(meeting.id)
        if not calls:
            return self._say(p(t._("{meeting} takes no speaking-slot requests at the moment.")
                               .format(meeting=meeting.title)), buttons=[[Button(t._("My requests"), "slot mine")]])
        lines: list[list[Part]] = []
        buttons: list[list[Button]] = []
        for call in calls:
            deadline = viewer.moment(call.deadline)
            if call.is_open(now):
                lines.append([b(call.title), " ", code(call.id), " — ",
                              t._("requests until {deadline}").format(deadline=deadline)])
                buttons.append([Button(call.title[:60], f"slot {call.id}")])
            else:
                lines.append([b(call.title), " ", code(call.id), " — ",
                              t._("closed since {deadline}").format(deadline=deadline)])
        blocks: list[Block] = [p(b(t._("Speaking slots: {meeting}").format(meeting=meeting.title))), ul(lines)]
        if buttons:
            blocks.append(p(t._("Choose one to request a slot, or send {example}.")
                            .format(example=f"slot {calls[0].id}")))
        draft = self._draft(ctx)
        if draft is not None and draft.meeting_id == meeting.id:
            blocks.append(p(i(t._("Your unfinished request for {call} is kept: its button takes you back to it.")
                              .format(call=draft.call_id))))
        buttons.append([Button(t._("My requests"), "slot mine")])
        return self._say(*blocks, buttons=buttons)

    # ---------------------------------------------------------------- slot list

    async def _rolling(self, ctx: Context, desk: SlotDesk, words: list[str]) -> list[Reply]:
        """The published rolling list: what the public web page shows (so in groups too, and not only
        to the asker), in the reader's zone too."""
        t = ctx.t
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, version = found
        viewer = Viewer(t, meeting, ctx.profile.timezone)
        sessions: list[SessionId] = []
        for call in await desk.store.calls(meeting.id):
            sessions += [sid for sid in call.sessions if sid not in sessions and version.session(sid) is not None]
        if not sessions:
            return [Reply(message(p(t._("{meeting} takes no speaking-slot requests at the moment.")
                                    .format(meeting=meeting.title))))]
        requests = await desk.store.requests(meeting.id)
        wanted = " ".join(words)
        chosen = next((sid for sid in sessions if sid.lower() == wanted.lower()), None)
        if chosen is None:
            lines: list[list[Part]] = []
            buttons: list[list[Button]] = []
            for sid in sessions:
                s = version.session(sid)
                assert s is not None
                n = len(rolling_list(requests, sid))
                lines.append([*viewer.session_line(s.session, with_day=True), " — ",
                              t.n_("{n} speaker", "{n} speakers", n).format(n=n)])
                if _fits(f"slot list {sid}"):
                    buttons.append([Button(s.session.title[:60], f"slot list {sid}")])
            blocks: list[Block] = []
            if wanted:
                blocks.append(p(t._("{session} is not a session with a list of speakers.").format(session=wanted[:64])))
            blocks += [p(b(t._("Lists of speakers: {meeting}").format(meeting=meeting.title))), ul(lines)]
            return [Reply(message(*blocks, buttons=buttons[:MAX_LISTED]))]
        published = version.session(chosen)
        assert published is not None
        session = published.session
        approved = rolling_list(requests, chosen)
        blocks = [p(b(t._("Speakers: {session}").format(session=session.title)), " ",
                    viewer.span(session.start, session.end, with_day=True))]
        if approved:
            rows: list[list[Part]] = []
            for r in approved:
                when = viewer.moment(r.slot_start) if r.slot_start is not None else ""
                rows.append([f"{r.order}. ", when, " · ", b(r.form.name), ", ", r.form.title, " (",
                             r.form.delegation, ") · ", t._(MODE_LABELS[r.form.mode])])
            blocks.append(ul(rows))
        else:
            blocks.append(p(t._("No speaker is approved yet.")))
        page = f"{self.public_url.rstrip('/')}/meetings/{meeting.id}/sessions/{chosen}/speakers-list"
        blocks.append(p(link(page, t._("The list on the web"))))
        return [Reply(message(*blocks))]

    # ---------------------------------------------------------------- slot CALL

    async def _start(self, ctx: Context, desk: SlotDesk, word: str) -> list[Reply]:
        t = ctx.t
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, _version = found
        call_id = word.lower()
        try:
            call = await desk.call(meeting.id, call_id)
        except NotFound:
            refusal = self._say(p(t._("{meeting} has no call for speaking-slot requests named {call}.")
                                  .format(meeting=meeting.title, call=word[:64])))
            return refusal + await self._calls(ctx, desk)
        scene = await self._scene(ctx, call)
        if not call.is_open(self.clock()):
            return self._closed(ctx, scene)
        existing = [r for r in await desk.store.requests_of(self._requester(ctx))
                    if r.meeting_id == call.meeting_id and r.call_id == call.id and r.open]
        if existing:
            ref = existing[0].ref
            return self._say(
                p(t._("You already have a request for {call}: {ref} ({status}). Change it or withdraw it.")
                  .format(call=call.title, ref=ref, status=t._(STATUS_LABELS[existing[0].status]))),
                buttons=[[Button(t._("Change"), f"slot change {ref}"),
                          Button(t._("Withdraw"), f"slot withdraw {ref}")]])
        draft = self._draft(ctx)
        if draft is None or draft.editing or (draft.meeting_id, draft.call_id) != (call.meeting_id, call.id):
            draft = Draft(call.meeting_id, call.id, self.clock(), self._defaults(call))
        self._keep(ctx, draft)
        intro = [
            p(b(call.title), " — ",
              t._("requests until {deadline}").format(deadline=scene.viewer.moment(call.deadline)), "."),
            p(t._("I will ask for {n} details, one at a time. Statements are limited to {minutes} minutes. "
                  "Send {cancel} to stop.").format(n=len(self._steps(call)), minutes=call.minutes,
                                                   cancel="slot cancel")),
        ]
        return self._next(ctx, draft, scene, before=intro)

    # ---------------------------------------------------------------- the questions

    def _next(self, ctx: Context, draft: Draft, scene: Scene, *, before: Sequence[Block] = ()) -> list[Reply]:
        missing = [s for s in self._steps(scene.call) if s not in draft.values]
        if not missing:
            return self._summary(ctx, draft, scene, before=before)
        return self._question(ctx, draft, scene, missing[0], before=before)

    def _question(self, ctx: Context, draft: Draft, scene: Scene, step: str, *,
                  before: Sequence[Block] = ()) -> list[Reply]:
        t, call = ctx.t, scene.call
        steps = self._steps(call)
        number = steps.index(step) + 1 if step in steps else len(steps)
        head = t._("Step {n} of {total}:").format(n=number, total=len(steps))
        buttons: list[list[Button]] = []
        blocks: list[Block] = list(before)
        if step in TEXT_FIELDS:
            question, example = {
                "name": (t._("your name, as the chair will announce it."), "slot name Amina Diallo"),
                "title": (t._("your title or function."), "slot title Minister of Communications"),
                "delegation": (t._("the delegation you speak for: a country or an organisation."),
                               "slot delegation Kenya"),
            }[step]
            blocks += [p(b(head), " ", question),
                       p(t._("Reply with {command} followed by your answer, e.g. {example}.")
                         .format(command=f"slot {step}", example=example))]
            if step == "name" and ctx.incoming.user_name.strip():
                shown = " ".join(ctx.incoming.user_name.split())
                buttons.append([Button(t._("Use {name}").format(name=shown[:40]), f"slot name {shown}")])
        elif step == "stakeholder":
            blocks.append(p(b(head), " ", t._("the stakeholder group you speak for.")))
            labels = [Button(t._(STAKEHOLDER_LABELS[s]), f"slot stakeholder {s.value}") for s in Stakeholder]
            buttons += [labels[n:n + 2] for n in range(0, len(labels), 2)]
        elif step == "rank":
            blocks.append(p(b(head), " ", t._("your rank: speakers are listed in order of protocol precedence.")))
            buttons += [[Button(t._(RANK_LABELS[r]), f"slot rank {r.slug}")] for r in ProtocolRank]
        elif step == "session":
            blocks.append(p(b(head), " ", t._("the session you would like to speak in.")))
            lines: list[list[Part]] = []
            for n, sid in enumerate(call.sessions, start=1):
                lines.append([f"{n}. ", *scene.session_parts(sid), " ", code(sid)])
                command = f"slot session {sid}" if _fits(f"slot session {sid}") else f"slot session {n}"
                buttons.append([Button(f"{n}. {scene.session_title(sid)[:50]}", command)])
            blocks.append(ul(lines))
        elif step == "mode":
            blocks.append(p(b(head), " ", t._("will you speak in the room or remotely?")))
            buttons.append([Button(t._(MODE_LABELS[m]), f"slot mode {m.value}") for m in Mode if m in call.modes])
        else:  # language
            blocks.append(p(b(head), " ", t._("the language of your statement.")))
            labels = [Button(LANGUAGE_NAMES.get(c, c), f"slot language {c}") for c in call.languages]
            buttons += [labels[n:n + 3] for n in range(0, len(labels), 3)]
        if step in CHOICE_FIELDS:
            blocks.append(p(i(t._("Use the buttons, or send {example}.").format(example=self._example(call, step)))))
        return self._say(*blocks, buttons=buttons)

    @staticmethod
    def _example(call: SlotCall, step: str) -> str:
        value = {"stakeholder": Stakeholder.GOVERNMENT.value, "rank": ProtocolRank.MINISTER.slug,
                 "session": call.sessions[0] if call.sessions else "1",
                 "mode": sorted(m.value for m in call.modes)[0] if call.modes else Mode.REMOTE.value,
                 "language": call.languages[0] if call.languages else "en"}[step]
        return f"slot {step} {value}"

    @staticmethod
    def _choice(step: str, value: str, call: SlotCall) -> object | None:
        word = value.strip()
        lowered = word.lower().replace("-", "_")
        if step == "stakeholder":
            return next((s for s in Stakeholder if s.value == lowered), None)
        if step == "rank":
            return next((r for r in ProtocolRank if r.slug == lowered), None)
        if step == "session":
            if word in call.sessions:
                return SessionId(word)
            same = [s for s in call.sessions if s.lower() == word.lower()]
            if len(same) == 1:
                return same[0]
            if word.isdigit() and 1 <= int(word) <= len(call.sessions):
                return call.sessions[int(word) - 1]
            return None
        if step == "mode":
            return next((m for m in call.modes if m.value == lowered), None)
        return next((c for c in call.languages if c == word.lower()), None)

    async def _open_draft(self, ctx: Context, desk: SlotDesk, *, changing: bool = False,
                          ) -> tuple[Draft, SlotCall, Scene] | list[Reply]:
        """The request in progress with its call, or the reply when there is none or its call has
        closed (the draft is then dropped)."""
        t = ctx.t
        draft = self._draft(ctx)
        if draft is None:
            return self._say(p(t._("You have no request in progress. Send {command} to start one.")
                               .format(command="slot")), buttons=[[Button(t._("Speaking slots"), "slot")]])
        try:
            call = await desk.call(draft.meeting_id, draft.call_id)
        except NotFound:
            self._drop(ctx)
            return self._say(p(t._("That call for speaking-slot requests no longer exists.")))
        scene = await self._scene(ctx, call)
        if not call.is_open(self.clock()):
            self._drop(ctx)
            return self._closed(ctx, scene, changing=changing and bool(draft.editing))
        return draft, call, scene

    async def _answer(self, ctx: Context, desk: SlotDesk, step: str, words: list[str]) -> list[Reply]:
        found = await self._open_draft(ctx, desk)
        if isinstance(found, list):
            return found
        draft, call, scene = found
        t = ctx.t
        value = " ".join(" ".join(words).split())
        if not value:  # "slot rank": ask that question (again)
            self._keep(ctx, draft)
            return self._question(ctx, draft, scene, step)
        if step in TEXT_FIELDS:
            limit = FIELD_LIMITS[step]
            if len(value) > limit:
                problem = p(t._("That is too long: at most {n} characters.").format(n=limit))
                return self._question(ctx, draft, scene, step, before=[problem])
            if step == "delegation" and call.one_per_delegation:
                taken = await self._delegation_taken(desk, call, value, draft.editing)
                if taken:
                    problem = p(t._("{delegation} already has a speaker in {call} (one speaker per delegation).")
                                .format(delegation=value, call=call.title))
                    self._keep(ctx, draft)
                    return self._question(ctx, draft, scene, step, before=[problem])
            draft.values[step] = value
        else:
            chosen = self._choice(step, value, call)
            if chosen is None:
                problem = p(t._("{value} is not one of the choices.").format(value=value[:60]))
                self._keep(ctx, draft)
                return self._question(ctx, draft, scene, step, before=[problem])
            draft.values[step] = chosen
        self._keep(ctx, draft)
        return self._next(ctx, draft, scene)

    async def _delegation_taken(self, desk: SlotDesk, call: SlotCall, delegation: str, editing: str) -> bool:
        """Told at once rather than after the last question; `submit` checks it again."""
        return any(r.open and r.ref != editing and _same_delegation(r.form.delegation, delegation)
                   for r in await desk.store.requests(call.meeting_id, call.id))

    def _summary(self, ctx: Context, draft: Draft, scene: Scene, *, before: Sequence[Block] = ()) -> list[Reply]:
        t, call, form = ctx.t, scene.call, _form(draft)
        rows: list[list[Part]] = [
            [b(t._("Name:")), " ", form.name],
            [b(t._("Title or function:")), " ", form.title],
            [b(t._("Delegation:")), " ", form.delegation],
            [b(t._("Stakeholder group:")), " ", t._(STAKEHOLDER_LABELS[form.stakeholder])],
            [b(t._("Rank:")), " ", t._(RANK_LABELS[form.rank])],
            [b(t._("Session:")), " ", *scene.session_parts(form.session)],
            [b(t._("Mode:")), " ", t._(MODE_LABELS[form.mode])],
            [b(t._("Language:")), " ", LANGUAGE_NAMES.get(form.language, form.language)],
        ]
        heading = (t._("Your changed request {ref} for {call}:").format(ref=draft.editing, call=call.title)
                   if draft.editing else t._("Your request for {call}:").format(call=call.title))
        blocks = [*before, p(b(heading)), ul(rows),
                  p(t._("To correct the name, title or delegation, send it again, e.g. {example}.")
                    .format(example="slot delegation Kenya"))]
        if draft.editing:
            blocks.append(p(i(t._("A changed request goes back to the secretariat for review."))))
        send = t._("Save the changes") if draft.editing else t._("Send the request")
        corrections = [Button(t._("Change the stakeholder group"), "slot stakeholder"),
                       Button(t._("Change the rank"), "slot rank")]
        more: list[Button] = []
        if len(call.sessions) > 1:
            more.append(Button(t._("Change the session"), "slot session"))
        if len(call.modes) > 1:
            more.append(Button(t._("Change the mode"), "slot mode"))
        if len(call.languages) > 1:
            more.append(Button(t._("Change the language"), "slot language"))
        return self._say(*blocks, buttons=[[Button(send, "slot send"), Button(t._("Cancel"), "slot cancel")],
                                           corrections, more])

    # ---------------------------------------------------------------- slot send | cancel

    async def _send(self, ctx: Context, desk: SlotDesk) -> list[Reply]:
        found = await self._open_draft(ctx, desk, changing=True)
        if isinstance(found, list):
            return found
        draft, call, scene = found
        t = ctx.t
        if any(s not in draft.values for s in self._steps(call)):
            return self._next(ctx, draft, scene)
        form = _form(draft)
        requester = self._requester(ctx)
        try:
            if draft.editing:
                request = await desk.change(draft.editing, form, requester)
            else:
                request = await desk.submit(call.meeting_id, call.id, form, requester, notify=str(ctx.incoming.chat))
        except QueueRefused as exc:
            if exc.code == "deadline":
                self._drop(ctx)
                return self._closed(ctx, scene, changing=bool(draft.editing))
            buttons = [[Button(t._("My requests"), "slot mine")]]
            if exc.code == "delegation":
                draft.values.pop("delegation", None)
                self._keep(ctx, draft)
                return self._question(ctx, draft, scene, "delegation",
                                      before=[p(t._("Refused: {reason}.").format(reason=exc.reason.rstrip(".")))])
            return self._say(p(t._("Refused: {reason}.").format(reason=exc.reason.rstrip("."))), buttons=buttons)
        except InvalidInput as exc:
            # The secretariat changed the call's rules meanwhile: ask again what no longer fits.
            for problem in exc.problems:
                draft.values.pop(problem.where.rsplit(".", 1)[-1], None)
            self._keep(ctx, draft)
            notes = [p(t._("Please answer again: {problem}.").format(problem=str(x).rstrip("."))) for x in exc.problems]
            return self._next(ctx, draft, scene, before=notes)
        except NotFound:
            self._drop(ctx)
            return self._say(p(t._("You have no speaking-slot request {ref}.").format(ref=draft.editing)))
        except ConcurrentChange:
            return self._say(p(t._("Your request changed meanwhile; look at it again with {command}.")
                               .format(command="slot mine")), buttons=[[Button(t._("My requests"), "slot mine")]])
        self._drop(ctx)
        return self._acknowledge(ctx, scene, request, changed=bool(draft.editing))

    def _acknowledge(self, ctx: Context, scene: Scene, request: SlotRequest, *, changed: bool) -> list[Reply]:
        t = ctx.t
        url = slot_feed_url(self.public_url, request.feed_token)
        webcal = "webcal://" + url.split("://", 1)[1]
        done = (t._("Your request {ref} is changed.") if changed else t._("Your request is received: {ref}."))
        return self._say(
            p("✅ ", b(done.format(ref=request.ref))),
            p(t._("The secretariat reviews the requests in order of protocol precedence after the deadline, "
                  "{deadline}. Keep your reference {ref}; send {mine} to see its status.")
              .format(deadline=scene.viewer.moment(scene.call.deadline), ref=request.ref, mine="slot mine")),
            p(t._("Your personal calendar link shows your slot once it is approved:")),
            p(link(url)),
            p(link(webcal, t._("Open in your calendar app"))),
            buttons=[[Button(t._("My requests"), "slot mine"),
                      Button(t._("Withdraw"), f"slot withdraw {request.ref}")]],
        )

    def _cancel(self, ctx: Context) -> list[Reply]:
        t = ctx.t
        if self._draft(ctx) is None:
            return self._say(p(t._("You have no request in progress. Send {command} to start one.")
                               .format(command="slot")))
        self._drop(ctx)
        return self._say(p(t._("Your unfinished request is discarded; nothing was sent.")),
                         buttons=[[Button(t._("Speaking slots"), "slot")]])

    # ---------------------------------------------------------------- slot mine | withdraw | change

    async def _mine(self, ctx: Context, desk: SlotDesk) -> list[Reply]:
        t = ctx.t
        requests = await desk.store.requests_of(self._requester(ctx))
        if not requests:
            return self._say(p(t._("You have no speaking-slot requests. Send {command} to request one.")
                               .format(command="slot")), buttons=[[Button(t._("Speaking slots"), "slot")]])
        now = self.clock()
        scenes: dict[tuple[MeetingId, str], Scene | None] = {}
        rows: list[list[Part]] = []
        buttons: list[list[Button]] = []
        shown = requests[-MAX_LISTED:]
        for r in shown:
            key = (r.meeting_id, r.call_id)
            if key not in scenes:
                call = await desk.store.get_call(r.meeting_id, r.call_id)
                scenes[key] = await self._scene(ctx, call) if call is not None else None
            scene = scenes[key]
            title = scene.call.title if scene is not None else r.call_id
            row: list[Part] = [code(r.ref), " · ", b(title), " · ", t._(STATUS_LABELS[r.status])]
            if scene is not None and r.status is SlotStatus.APPROVED and r.slot_start is not None:
                sid = r.approved_session or r.form.session
                row += [" — ", t._("number {n} in {session}, {time}, {minutes} minutes").format(
                    n=r.order, session=scene.session_title(sid), time=scene.viewer.moment(r.slot_start),
                    minutes=r.slot_minutes)]
            elif scene is not None:
                row += [" — ", scene.session_title(r.form.session)]
            if r.reason and r.status in (SlotStatus.REJECTED, SlotStatus.WAITLISTED):
                row += [" (", r.reason, ")"]
            if r.feed_token:
                row += [" · ", link(slot_feed_url(self.public_url, r.feed_token), t._("calendar"))]
            rows.append(row)
            if r.open and scene is not None and scene.call.is_open(now):
                buttons.append([Button(t._("Change {ref}").format(ref=r.ref), f"slot change {r.ref}"),
                                Button(t._("Withdraw {ref}").format(ref=r.ref), f"slot withdraw {r.ref}")])
        blocks: list[Block] = [p(b(t._("Your speaking-slot requests"))), ul(rows)]
        if len(requests) > len(shown):
            blocks.append(p(i(t._("Only the latest {n} are shown.").format(n=len(shown)))))
        return self._say(*blocks, buttons=buttons)

    async def _own(self, ctx: Context, desk: SlotDesk, words: list[str],
                   command: str) -> tuple[SlotCall, SlotRequest, Scene] | list[Reply]:
        t = ctx.t
        if not words:
            return self._say(p(t._("Send {usage} with the reference of your request.")
                               .format(usage=f"slot {command} REF")),
                             buttons=[[Button(t._("My requests"), "slot mine")]])
        ref = words[0].upper()[:64]
        try:
            call, request = await desk.mine(ref, self._requester(ctx))
        except NotFound:
            return self._say(p(t._("You have no speaking-slot request {ref}.").format(ref=ref)),
                             buttons=[[Button(t._("My requests"), "slot mine")]])
        scene = await self._scene(ctx, call)
        return call, request, scene

    async def _withdraw(self, ctx: Context, desk: SlotDesk, words: list[str]) -> list[Reply]:
        t = ctx.t
        found = await self._own(ctx, desk, words, "withdraw")
        if isinstance(found, list):
            return found
        call, request, scene = found
        if not call.is_open(self.clock()):
            return self._closed(ctx, scene, changing=True)
        try:
            withdrawn = await desk.withdraw(request.ref, self._requester(ctx))
        except QueueRefused as exc:
            if exc.code == "deadline":
                return self._closed(ctx, scene, changing=True)
            return self._say(p(t._("Refused: {reason}.").format(reason=exc.reason.rstrip("."))))
        except ConcurrentChange:
            return self._say(p(t._("Your request changed meanwhile; look at it again with {command}.")
                               .format(command="slot mine")), buttons=[[Button(t._("My requests"), "slot mine")]])
        draft = self._draft(ctx)
        if draft is not None and draft.editing == request.ref:
            self._drop(ctx)
        return self._say(p(t._("Your request {ref} for {call} is withdrawn.")
                           .format(ref=withdrawn.ref, call=call.title)),
                         buttons=[[Button(t._("Request a slot again"), f"slot {call.id}")]])

    async def _change(self, ctx: Context, desk: SlotDesk, words: list[str]) -> list[Reply]:
        t = ctx.t
        found = await self._own(ctx, desk, words, "change")
        if isinstance(found, list):
            return found
        call, request, scene = found
        if not call.is_open(self.clock()):
            return self._closed(ctx, scene, changing=True)
        if not request.open:
            return self._say(p(t._("Your request {ref} is {status}: it can no longer be changed.")
                               .format(ref=request.ref, status=t._(STATUS_LABELS[request.status]))))
        form = request.form
        values: dict[str, object] = {"name": form.name, "title": form.title, "delegation": form.delegation,
                                     "stakeholder": form.stakeholder, "rank": form.rank}
        # Answers the call's rules no longer allow are asked again.
        if form.session in call.sessions:
            values["session"] = form.session
        if form.mode in call.modes:
            values["mode"] = form.mode
        if form.language in call.languages:
            values["language"] = form.language
        draft = Draft(call.meeting_id, call.id, self.clock(), {**self._defaults(call), **values}, editing=request.ref)
        self._keep(ctx, draft)
        return self._next(ctx, draft, scene)
