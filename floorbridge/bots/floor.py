"""The live list of speakers in chat: raising a hand (`floor`), withdrawing, seeing the list and
one's place (`speakers`), the chair's actions (`chair …`), and the notices a speaker gets on their
own platform: "you are next", "you have the floor", 30 seconds left, time is up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from floorbridge.core.agenda import Session
from floorbridge.core.chats import ChatProfile, ChatRef, Platform
from floorbridge.core.errors import ConcurrentChange, NotFound
from floorbridge.core.ids import SessionId
from floorbridge.core.meeting import Meeting
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.ports import FloorDesk
from floorbridge.core.richtext import Block, Button, Part, b, code, i, link, message, p, ul
from floorbridge.core.speakers import (
    Actor,
    Channel,
    CloseList,
    Command,
    EndSpeech,
    FloorNotice,
    Move,
    Next,
    Participant,
    PauseSpeech,
    QueueRefused,
    ReaddLast,
    Remove,
    ReopenList,
    RequestFloor,
    ResumeSpeech,
    SetBudget,
    SetTime,
    Speaker,
    SpeakerList,
    SpeakerState,
    SpeechType,
    StartSpeech,
    Withdraw,
)
from floorbridge.core.versions import AgendaVersion

from .events import Reply
from .i18n import Translator, translator

if TYPE_CHECKING:
    from .conversation import Context

SPEECH_WORDS = {
    "order": SpeechType.POINT_OF_ORDER, "point": SpeechType.POINT_OF_ORDER,
    "reply": SpeechType.RIGHT_OF_REPLY, "question": SpeechType.INTERPOSED_QUESTION,
    "answer": SpeechType.ANSWER, "contribution": SpeechType.CONTRIBUTION,
}
MAX_SHOWN = 40


def N_(text: str) -> str:
    return text


SPEECH_LABELS = {
    SpeechType.CONTRIBUTION: N_("contribution"),
    SpeechType.POINT_OF_ORDER: N_("point of order"),
    SpeechType.RIGHT_OF_REPLY: N_("right of reply"),
    SpeechType.INTERPOSED_QUESTION: N_("interposed question"),
    SpeechType.ANSWER: N_("answer"),
}


def clock_text(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    whole = int(abs(seconds) + 0.999) if seconds > 0 else int(abs(seconds))
    return f"{sign}{whole // 60}:{whole % 60:02d}"


def speaker_parts(t: Translator, s: Speaker) -> list[Part]:
    who = s.participant
    parts: list[Part] = [b(who.name)]
    if who.delegation and who.delegation != who.name:
        parts += [" (", who.delegation, ")"]
    parts += [" · ", t._("remote") if who.remote else t._("in the room")]
    if s.speech_type is not SpeechType.CONTRIBUTION:
        parts += [" · ", i(t._(SPEECH_LABELS[s.speech_type]))]
    return parts


def list_blocks(t: Translator, session: Session, lst: SpeakerList, now: datetime, *, me: str = "") -> list[Block]:
    """The list as a delegate or the chair sees it in chat."""
    blocks: list[Block] = [p(b(t._("Speakers: {session}").format(session=session.title)), " ", code(session.id))]
    current = lst.current_speaker()
    if current is not None:
        state = (t._("paused") if current.state is SpeakerState.PAUSED
                 else t._("{time} left").format(time=clock_text(current.remaining_seconds(now))))
        blocks.append(p(t._("Has the floor:"), " ", *speaker_parts(t, current), " · ", state))
    waiting = lst.waiting()
    if waiting:
        rows: list[list[Part]] = []
        for n, s in enumerate(waiting[:MAX_SHOWN], start=1):
            row: list[Part] = [f"{n}. ", *speaker_parts(t, s), " ", code(f"#{s.id}")]
            if me and s.participant.key == me:
                row += [" ← ", b(t._("you"))]
            rows.append(row)
        blocks.append(ul(rows))
        if len(waiting) > MAX_SHOWN:
            more = len(waiting) - MAX_SHOWN
            blocks.append(p(i(t.n_("… and {n} more speaker", "… and {n} more speakers", more).format(n=more))))
    else:
        blocks.append(p(t._("Nobody is waiting to speak.")))
    if lst.closed:
        blocks.append(p(i(t._("The list is closed: only points of order can be added."))))
    return blocks


# ------------------------------------------------------------------------------------ notices


def floor_notices(meeting: Meeting, session: Session, notices: Sequence[FloorNotice],
                  profiles: Mapping[ChatRef, ChatProfile], version: int) -> list[OutgoingMessage]:
    """Outbox messages for a speaker's notices, in the language of the chat they asked from."""
    out = []
    for notice in notices:
        s = notice.speaker
        chat = chat_of(s.participant.notify)
        if chat is None or notice.kind == "queued":
            continue
        profile = profiles.get(chat)
        t = translator(profile.language if profile else "en")
        name = b(s.participant.name)
        blocks: list[Block]
        if notice.kind == "up_next":
            blocks = [p("⏭ ", name, ": ", t._("you are next to speak in {session}.").format(session=session.title))]
            remote_url = session.remote_url or meeting.remote.url
            if s.participant.remote and remote_url:
                blocks.append(p(t._("Join the remote participation link now and wait for the chair:"), " ",
                                link(remote_url, remote_url)))
            elif not s.participant.remote:
                blocks.append(p(t._("Please be ready at your microphone.")))
        elif notice.kind == "floor":
            blocks = [p("🎙 ", name, ": ", b(t._("you have the floor.")), " ",
                        t._("Your time: {time}.").format(time=clock_text(s.allotted_seconds)))]
        elif notice.kind == "warning":
            blocks = [p("⏳ ", name, ": ", t._("30 seconds left."))]
        elif notice.kind == "time_up":
            blocks = [p("⏹ ", name, ": ", b(t._("your time is up.")), " ", t._("Please conclude."))]
        else:  # removed
            blocks = [p(name, ": ", t._("the chair removed you from the list of speakers of {session}.")
                        .format(session=session.title))]
        moment = s.started_at.isoformat() if s.started_at else str(version)
        out.append(OutgoingMessage(
            chat, message(*blocks), meeting_id=meeting.id,
            dedup_key=f"floor:{meeting.id}:{session.id}:{s.id}:{notice.kind}:{moment}",
            cause=f"floor {notice.kind} {session.id}",
        ))
    return out


def chat_of(notify: str) -> ChatRef | None:
    platform, _, ident = notify.partition(":")
    try:
        return ChatRef(Platform(platform), ident) if ident else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------------ commands


class FloorCommands:
    """The `floor`, `withdraw`, `speakers` and `chair` commands; the conversation routes them here."""

    def __init__(self, desk: FloorDesk) -> None:
        self.desk = desk

    @staticmethod
    def _say(*blocks: Block, buttons: Sequence[Sequence[Button]] = ()) -> list[Reply]:
        return [Reply(message(*blocks, buttons=buttons))]

    def _pick_session(self, ctx: Context, version: AgendaVersion, now: datetime,
                      command: str) -> tuple[Session | None, list[str], list[Reply]]:
        """The session named in the arguments, or the one running now; the remaining arguments."""
        t = ctx.t
        by_id = {ps.session.id: ps.session for ps in version.sessions}
        rest = []
        chosen: Session | None = None
        for word in ctx.args:
            if chosen is None and word in by_id:
                chosen = by_id[SessionId(word)]
            else:
                rest.append(word)
        if chosen is not None:
            return chosen, rest, []
        running = sorted((ps.session for ps in version.sessions
                          if not ps.session.cancelled and ps.session.start <= now < ps.session.end),
                         key=lambda s: s.start)
        if len(running) == 1:
            return running[0], rest, []
        if running:
            buttons = [[Button(s.title[:60], f"{command} {' '.join([*rest, s.id])}".strip())] for s in running[:8]]
            return None, rest, self._say(p(t._("Several sessions are running now. Which one?")), buttons=buttons)
        return None, rest, self._say(p(t._("No session is running now. Name one, e.g. {example}.")
                                       .format(example=f"{command} {version.sessions[0].session.id}"
                                               if version.sessions else command)))

    def _refused(self, t: Translator, exc: Exception) -> list[Reply]:
        if isinstance(exc, ConcurrentChange):
            return self._say(p(t._("The list changed while you acted, so nothing was done. "
                                   "Look at it again with {command} and repeat if still needed.")
                               .format(command="speakers")))
        reason = exc.reason if isinstance(exc, QueueRefused) else str(exc)
        return self._say(p(t._("Refused: {reason}.").format(reason=reason.rstrip("."))))

    async def floor(self, ctx: Context, meeting: Meeting, version: AgendaVersion, now: datetime) -> list[Reply]:
        t = ctx.t
        kind = SpeechType.CONTRIBUTION
        if ctx.args and ctx.args[0].lower() in SPEECH_WORDS:
            kind = SPEECH_WORDS[ctx.args.pop(0).lower()]
        session, rest, problem = self._pick_session(ctx, version, now, "floor")
        if session is None:
            return problem
        incoming = ctx.incoming
        name = incoming.user_name or str(incoming.user)
        participant = Participant(str(incoming.user), name, " ".join(rest)[:200], Channel(incoming.chat.platform),
                                  remote=True, notify=str(incoming.chat))
        actor = Actor(participant.key, name, participant.channel)
        try:
            command = RequestFloor(participant, kind, requested_at=incoming.received_at)
            outcome = await self.desk.request(meeting.id, session.id, command, actor)
        except (QueueRefused, ConcurrentChange, NotFound) as exc:
            return self._refused(t, exc)
        position = next((n.position for n in outcome.notices if n.kind == "queued"), 0)
        return self._say(
            p("✋ ", t._("You are on the list of speakers of {session}: number {n}.")
              .format(session=session.title, n=position)),
            p(t._("Type: {kind}. I will tell you here when you are next and when you have the floor.")
              .format(kind=t._(SPEECH_LABELS[kind]))),
            buttons=[[Button(t._("Withdraw"), f"withdraw {session.id}"),
                      Button(t._("See the list"), f"speakers {session.id}")]])

    async def withdraw(self, ctx: Context, meeting: Meeting, version: AgendaVersion, now: datetime) -> list[Reply]:
        session, _, problem = self._pick_session(ctx, version, now, "withdraw")
        if session is None:
            return problem
        key = str(ctx.incoming.user)
        actor = Actor(key, ctx.incoming.user_name or key, Channel(ctx.incoming.chat.platform))
        try:
            await self.desk.act(meeting.id, session.id, Withdraw(key), actor)
        except (QueueRefused, ConcurrentChange, NotFound) as exc:
            return self._refused(ctx.t, exc)
        return self._say(p(ctx.t._("Your request to speak in {session} is withdrawn.").format(session=session.title)))

    async def speakers(self, ctx: Context, meeting: Meeting, version: AgendaVersion, now: datetime) -> list[Reply]:
        session, _, problem = self._pick_session(ctx, version, now, "speakers")
        if session is None:
            return problem
        lst = await self.desk.view(meeting.id, session.id)
        me = str(ctx.incoming.user)
        blocks = list_blocks(ctx.t, session, lst, now, me=me)
        mine = lst.open_request_of(me)
        buttons = ([[Button(ctx.t._("Withdraw"), f"withdraw {session.id}")]] if mine and mine.state is
                   SpeakerState.WAITING else [[Button(ctx.t._("Ask for the floor"), f"floor {session.id}")]])
        return self._say(*blocks, buttons=buttons)

    async def chair(self, ctx: Context, meeting: Meeting, version: AgendaVersion, now: datetime,
                    moderator: bool) -> list[Reply]:
        t = ctx.t
        if not moderator:
            return self._say(p(t._("Only the moderators of {meeting} can do that.").format(meeting=meeting.id)))
        if not ctx.args:
            return self._say(p(t._("Chair commands: {list}.").format(list=", ".join(CHAIR_ACTIONS))))
        action = ctx.args.pop(0).lower()
        session, rest, problem = self._pick_session(ctx, version, now, f"chair {action}")
        if session is None:
            return problem
        try:
            command = self._chair_command(t, action, rest)
        except ValueError as exc:
            return self._say(p(str(exc)))
        key = str(ctx.incoming.user)
        actor = Actor(key, ctx.incoming.user_name or key, Channel(ctx.incoming.chat.platform), moderator=True)
        try:
            if isinstance(command, RequestFloor):
                await self.desk.request(meeting.id, session.id, command, actor)
            else:
                await self.desk.act(meeting.id, session.id, command, actor)
        except (QueueRefused, ConcurrentChange, NotFound) as exc:
            return self._refused(t, exc)
        lst = await self.desk.view(meeting.id, session.id)
        buttons = [[Button(t._("Next speaker"), f"chair next {session.id}"),
                    Button(t._("End speech"), f"chair end {session.id}")]]
        return self._say(p("✔ ", t._("Done.")), *list_blocks(t, session, lst, now), buttons=buttons)

    @staticmethod
    def _chair_command(t: Translator, action: str, rest: list[str]) -> Command:
        def number(index: int, what: str) -> int:
            try:
                return int(rest[index].lstrip("#"))
            except (IndexError, ValueError):
                raise ValueError(t._("{action} needs {what} (a number).").format(action=action, what=what)) from None

        simple: dict[str, Command] = {"next": Next(), "end": EndSpeech(), "pause": PauseSpeech(),
                                      "resume": ResumeSpeech(), "close": CloseList(), "reopen": ReopenList(),
                                      "readd": ReaddLast()}
        if action in simple:
            return simple[action]
        if action == "start":
            return StartSpeech(number(0, t._("the speaker's #number")))
        if action == "remove":
            return Remove(number(0, t._("the speaker's #number")))
        if action == "move":
            return Move(number(0, t._("the speaker's #number")), number(1, t._("the new position")))
        if action == "time":
            return SetTime(number(0, t._("the seconds per speaker")))
        if action == "budget":
            seconds = number(0, t._("the seconds"))
            delegation = " ".join(rest[1:])
            if not delegation:
                raise ValueError(t._("budget needs the seconds and then the delegation."))
            return SetBudget(delegation, seconds or None)
        if action == "add":
            text = " ".join(rest)
            name, _, delegation = (x.strip() for x in text.partition("/"))
            if not name:
                raise ValueError(t._("add needs the speaker's name, and optionally / and the delegation."))
            return RequestFloor(Participant(f"room:{name.casefold()}", name[:200], delegation[:200] or name[:200],
                                            Channel.ROOM, remote=False))
        raise ValueError(t._("Unknown chair command {action}. Chair commands: {list}.")
                         .format(action=action, list=", ".join(CHAIR_ACTIONS)))


CHAIR_ACTIONS = ("next", "start #N", "end", "pause", "resume", "move #N POSITION", "remove #N", "close", "reopen",
                 "readd", "time SECONDS", "budget SECONDS DELEGATION", "add NAME / DELEGATION")
