"""The live list of speakers of one session, as in OpenSlides: speech types, one open request per
participant, moderator actions, the speaking timer and per-delegation time budgets.

`SpeakerList.apply` is the only way to change a list: it checks who may do what, applies one
command and returns what happened (for notices and the audit trail). Every accepted command
raises `version` by one; a command that names the version it was decided on is refused when the
list has moved on since (two moderators pressing "next" at once make exactly one change).
The receipt time is stamped by the server when a request arrives, whatever the platform, and
decides the order within a speech type.
"""

from __future__ import annotations

import bisect
import enum
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from .errors import ConcurrentChange, FloorbridgeError
from .ids import MeetingId, SessionId

WARNING_SECONDS = 30
MIN_SECONDS, MAX_SECONDS = 10, 4 * 3600


class Channel(enum.StrEnum):
    """Where a speaker asked from; `room` is a request the chair took in the room."""

    ROOM = "room"
    WEB = "web"
    TELEGRAM = "telegram"
    DISCORD = "discord"
    MATRIX = "matrix"


class SpeechType(enum.StrEnum):
    CONTRIBUTION = "contribution"
    POINT_OF_ORDER = "point_of_order"  # goes to the front
    RIGHT_OF_REPLY = "right_of_reply"  # after the list
    INTERPOSED_QUESTION = "interposed_question"  # right after the current speech
    ANSWER = "answer"  # the answer to an interposed question, right after it


_BAND = {
    SpeechType.POINT_OF_ORDER: 0,
    SpeechType.INTERPOSED_QUESTION: 1,
    SpeechType.ANSWER: 1,
    SpeechType.CONTRIBUTION: 2,
    SpeechType.RIGHT_OF_REPLY: 3,
}


class SpeakerState(enum.StrEnum):
    WAITING = "waiting"
    SPEAKING = "speaking"
    PAUSED = "paused"
    DONE = "done"
    WITHDRAWN = "withdrawn"
    REMOVED = "removed"


OPEN_STATES = frozenset({SpeakerState.WAITING, SpeakerState.SPEAKING, SpeakerState.PAUSED})


class QueueRefused(FloorbridgeError):
    """A request or action the rules do not allow; the message says why, for the person who asked."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class NotAllowed(QueueRefused):
    """The actor may not do this (only moderators act on the queue; delegates on their own requests)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "forbidden")


@dataclass(frozen=True)
class Participant:
    """Who asks for the floor. `key` identifies a person across requests ("telegram:42",
    "web:<id>", "room:<name>"); `notify` is the chat where their notices go ("" = none)."""

    key: str
    name: str
    delegation: str = ""
    channel: Channel = Channel.WEB
    remote: bool = True
    notify: str = ""


@dataclass(frozen=True)
class Actor:
    """Who acts, for permission checks and the audit trail."""

    key: str
    name: str
    channel: Channel
    moderator: bool = False


@dataclass(frozen=True)
class Speaker:
    id: int
    participant: Participant
    speech_type: SpeechType
    requested_at: datetime
    receipt: int  # server receipt sequence: ties of `requested_at` keep arrival order
    state: SpeakerState = SpeakerState.WAITING
    started_at: datetime | None = None
    ended_at: datetime | None = None
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    allotted_seconds: int = 0

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def spoken_seconds(self, now: datetime) -> float:
        if self.started_at is None:
            return 0.0
        until = self.ended_at or self.paused_at or now
        return max(0.0, (until - self.started_at).total_seconds() - self.paused_seconds)

    def remaining_seconds(self, now: datetime) -> float:
        return self.allotted_seconds - self.spoken_seconds(now)


# ------------------------------------------------------------------------------------ commands


@dataclass(frozen=True)
class RequestFloor:
    participant: Participant
    speech_type: SpeechType = SpeechType.CONTRIBUTION
    requested_at: datetime | None = None  # receipt time; the list's `now` when None
    receipt: int = 0


@dataclass(frozen=True)
class Withdraw:
    participant_key: str


@dataclass(frozen=True)
class Next:
    """End the current speech (if any) and give the floor to the first in the list."""


@dataclass(frozen=True)
class StartSpeech:
    speaker_id: int


@dataclass(frozen=True)
class EndSpeech:
    pass


@dataclass(frozen=True)
class PauseSpeech:
    pass


@dataclass(frozen=True)
class ResumeSpeech:
    pass


@dataclass(frozen=True)
class Move:
    speaker_id: int
    position: int  # 1-based place in the waiting list


@dataclass(frozen=True)
class Remove:
    speaker_id: int


@dataclass(frozen=True)
class CloseList:
    pass


@dataclass(frozen=True)
class ReopenList:
    pass


@dataclass(frozen=True)
class ReaddLast:
    """Put the last speaker back at the top of the list (they were cut off, or asked to finish)."""


@dataclass(frozen=True)
class SetTime:
    seconds: int  # per speaker, from now on and for the running speech


@dataclass(frozen=True)
class SetBudget:
    delegation: str
    seconds: int | None  # None removes the budget


Command = (
    RequestFloor | Withdraw | Next | StartSpeech | EndSpeech | PauseSpeech | ResumeSpeech | Move | Remove
    | CloseList | ReopenList | ReaddLast | SetTime | SetBudget
)

MODERATOR_COMMANDS = (Next, StartSpeech, EndSpeech, PauseSpeech, ResumeSpeech, Move, Remove, CloseList,
                      ReopenList, ReaddLast, SetTime, SetBudget)

ACTION_NAMES: dict[type, str] = {
    RequestFloor: "request", Withdraw: "withdraw", Next: "next", StartSpeech: "start", EndSpeech: "end",
    PauseSpeech: "pause", ResumeSpeech: "resume", Move: "move", Remove: "remove", CloseList: "close",
    ReopenList: "reopen", ReaddLast: "readd_last", SetTime: "set_time", SetBudget: "set_budget",
}


# ------------------------------------------------------------------------------------ outcomes

NoticeType = Literal["queued", "up_next", "floor", "warning", "time_up", "removed"]


@dataclass(frozen=True)
class FloorNotice:
    """Something to tell one speaker on their own platform."""

    kind: NoticeType
    speaker: Speaker
    position: int = 0


@dataclass(frozen=True)
class AuditEntry:
    version: int
    at: datetime
    actor: Actor
    action: str
    detail: Mapping[str, object]


@dataclass(frozen=True)
class Outcome:
    version: int
    changed: tuple[Speaker, ...]  # speakers added or changed by the command, as they are now
    notices: tuple[FloorNotice, ...]
    audit: AuditEntry
    speaker: Speaker | None = None  # the request's speaker, for acknowledgements


# ------------------------------------------------------------------------------------ the list


@dataclass
class SpeakerList:
    meeting_id: MeetingId
    session_id: SessionId
    version: int = 0
    closed: bool = False
    seconds_per_speaker: int = 180
    budgets: dict[str, int] = field(default_factory=dict)  # delegation -> seconds for this list
    speakers: dict[int, Speaker] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)  # waiting speakers, first to speak first
    current: int | None = None  # speaking or paused
    last: int | None = None  # the last speech that ended
    next_id: int = 1
    # participant key -> speaker id of their open request (waiting or speaking). Built on demand,
    # kept up to date by requests (thousands arrive at once) and dropped by every other command.
    _open: dict[str, int] | None = field(default=None, init=False, compare=False, repr=False)
    # Whether `order` is sorted by (band, receipt time, receipt sequence), as requests alone keep it;
    # a moderator's move or re-add may break it. None: not known, found out at the next request.
    _sorted: bool | None = field(default=None, init=False, compare=False, repr=False)

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> SpeakerList:
        """An independent copy: the containers are copied, the (immutable) speakers shared."""
        copied = replace(self, budgets=dict(self.budgets), speakers=dict(self.speakers), order=list(self.order))
        copied._open = dict(self._open) if self._open is not None else None
        copied._sorted = self._sorted
        return copied

    def waiting(self) -> list[Speaker]:
        return [self.speakers[i] for i in self.order]

    def position_of(self, speaker_id: int) -> int:
        """1-based place in the waiting list, 0 when not waiting."""
        try:
            return self.order.index(speaker_id) + 1
        except ValueError:
            return 0

    def open_request_of(self, participant_key: str) -> Speaker | None:
        if self._open is None:
            self._open = {self.speakers[sid].participant.key: sid for sid in reversed(self.order)}
            if self.current is not None:
                self._open.setdefault(self.speakers[self.current].participant.key, self.current)
        sid = self._open.get(participant_key)
        return self.speakers[sid] if sid is not None else None

    def current_speaker(self) -> Speaker | None:
        return self.speakers[self.current] if self.current is not None else None

    def finished(self) -> list[Speaker]:
        done = [s for s in self.speakers.values() if s.state is SpeakerState.DONE]
        return sorted(done, key=lambda s: (s.started_at or s.requested_at, s.id))

    def used_seconds(self, delegation: str, now: datetime) -> float:
        return sum(s.spoken_seconds(now) for s in self.speakers.values()
                   if s.participant.delegation == delegation and s.started_at is not None)

    # ------------------------------------------------------------------ changing

    def apply(self, command: Command, actor: Actor, now: datetime, expected_version: int | None = None) -> Outcome:
        """Apply one command or raise (`QueueRefused`, `ConcurrentChange`) leaving the list as it was."""
        if expected_version is not None and expected_version != self.version:
            raise ConcurrentChange(
                f"the list of speakers changed (now version {self.version}, you acted on {expected_version}); "
                "look again and repeat if still needed")
        if isinstance(command, MODERATOR_COMMANDS) and not actor.moderator:
            raise NotAllowed("only the meeting's moderators can do this")
        changed: dict[int, Speaker] = {}
        notices: list[FloorNotice] = []
        first_before = self.order[0] if self.order else None
        detail: dict[str, object] = {}
        handler = getattr(self, f"_do_{ACTION_NAMES[type(command)]}")
        if not isinstance(command, RequestFloor):
            self._open = None
        speaker: Speaker | None = handler(command, actor, now, changed, notices, detail)
        first_after = self.order[0] if self.order else None
        if first_after is not None and first_after != first_before:
            notices.append(FloorNotice("up_next", self.speakers[first_after], 1))
        self.version += 1
        action = ACTION_NAMES[type(command)]
        audit = AuditEntry(self.version, now, actor, action, detail)
        return Outcome(self.version, tuple(changed.values()), tuple(notices), audit, speaker)

    def _put(self, speaker: Speaker, changed: dict[int, Speaker]) -> Speaker:
        self.speakers[speaker.id] = speaker
        changed[speaker.id] = speaker
        return speaker

    def _waiting_speaker(self, speaker_id: int) -> Speaker:
        if speaker_id not in self.order:
            state = self.speakers[speaker_id].state if speaker_id in self.speakers else None
            raise QueueRefused(f"speaker {speaker_id} is not waiting in this list"
                               + (f" (they are {state})" if state else ""), "not_waiting")
        return self.speakers[speaker_id]

    def _rank(self, speaker_id: int) -> tuple[int, datetime, int]:
        s = self.speakers[speaker_id]
        return _BAND[s.speech_type], s.requested_at, s.receipt

    def _insert_index(self, new: Speaker) -> int:
        """After the last waiting speaker who comes first by band and receipt. While the list is in
        that order (nobody moved by hand) a binary search finds the place: a request that reached
        the server early but is stored late (a chat's, under load) lands among thousands."""
        key = (_BAND[new.speech_type], new.requested_at, new.receipt)
        if self._sorted is None:
            ranks = [self._rank(i) for i in self.order]
            self._sorted = all(a <= b for a, b in itertools.pairwise(ranks))
        if self._sorted:
            return bisect.bisect_right(self.order, key, key=self._rank)
        for index in range(len(self.order) - 1, -1, -1):
            if self._rank(self.order[index]) <= key:
                return index + 1
        return 0

    def _do_request(self, c: RequestFloor, actor: Actor, now: datetime, changed: dict[int, Speaker],
                    notices: list[FloorNotice], detail: dict[str, object]) -> Speaker:
        p = c.participant
        if not actor.moderator and p.key != actor.key:
            raise NotAllowed("delegates can only ask for the floor for themselves")
        if not p.name.strip():
            raise QueueRefused("a speaker needs a name", "invalid")
        if self.closed and c.speech_type is not SpeechType.POINT_OF_ORDER:
            raise QueueRefused("the list of speakers is closed", "closed")
        existing = self.open_request_of(p.key)
        if existing is not None:
            where = (f"you are number {self.position_of(existing.id)} in the list"
                     if existing.state is SpeakerState.WAITING else "you have the floor")
            raise QueueRefused(f"you already have an open request ({where})", "duplicate")
        speaker = Speaker(self.next_id, p, c.speech_type, c.requested_at or now, c.receipt)
        self.next_id += 1
        index = self._insert_index(speaker)
        self.order.insert(index, speaker.id)
        self._put(speaker, changed)
        if self._open is not None:
            self._open[p.key] = speaker.id
        position = index + 1
        notices.append(FloorNotice("queued", speaker, position))
        detail.update(speaker=speaker.id, participant=p.key, speech_type=str(c.speech_type), position=position)
        return speaker

    def _do_withdraw(self, c: Withdraw, actor: Actor, now: datetime, changed: dict[int, Speaker],
                     notices: list[FloorNotice], detail: dict[str, object]) -> Speaker:
        if not actor.moderator and c.participant_key != actor.key:
            raise NotAllowed("delegates can only withdraw their own request")
        for sid in self.order:
            if self.speakers[sid].participant.key == c.participant_key:
                self.order.remove(sid)
                detail.update(speaker=sid)
                return self._put(replace(self.speakers[sid], state=SpeakerState.WITHDRAWN, ended_at=now), changed)
        raise QueueRefused("there is no waiting request to withdraw", "not_waiting")

    def _end_current(self, now: datetime, changed: dict[int, Speaker], detail: dict[str, object]) -> None:
        if self.current is None:
            return
        s = self.speakers[self.current]
        paused = s.paused_seconds + ((now - s.paused_at).total_seconds() if s.paused_at else 0.0)
        self._put(replace(s, state=SpeakerState.DONE, ended_at=now, paused_at=None, paused_seconds=paused), changed)
        detail["ended"] = s.id
        self.last, self.current = s.id, None

    def _start(self, speaker: Speaker, now: datetime, changed: dict[int, Speaker],
               notices: list[FloorNotice], detail: dict[str, object]) -> Speaker:
        allotted = self.seconds_per_speaker
        delegation = speaker.participant.delegation
        if delegation and delegation in self.budgets:
            left = self.budgets[delegation] - self.used_seconds(delegation, now)
            if left <= 0:
                raise QueueRefused(f"{delegation} has used its speaking-time budget of "
                                   f"{self.budgets[delegation]} s in this session", "budget")
            allotted = min(allotted, int(left))
        self._end_current(now, changed, detail)
        self.order.remove(speaker.id)
        started = self._put(replace(speaker, state=SpeakerState.SPEAKING, started_at=now, allotted_seconds=allotted),
                            changed)
        self.current = speaker.id
        notices.append(FloorNotice("floor", started))
        detail.update(started=speaker.id, allotted=allotted)
        return started

    def _do_next(self, c: Next, actor: Actor, now: datetime, changed: dict[int, Speaker],
                 notices: list[FloorNotice], detail: dict[str, object]) -> Speaker | None:
        if not self.order:
            if self.current is None:
                raise QueueRefused("nobody is waiting in the list of speakers", "empty")
            self._end_current(now, changed, detail)
            return None
        return self._start(self.speakers[self.order[0]], now, changed, notices, detail)

    def _do_start(self, c: StartSpeech, actor: Actor, now: datetime, changed: dict[int, Speaker],
                  notices: list[FloorNotice], detail: dict[str, object]) -> Speaker:
        return self._start(self._waiting_speaker(c.speaker_id), now, changed, notices, detail)

    def _running(self) -> Speaker:
        if self.current is None:
            raise QueueRefused("nobody has the floor", "no_speech")
        return self.speakers[self.current]

    def _do_end(self, c: EndSpeech, actor: Actor, now: datetime, changed: dict[int, Speaker],
                notices: list[FloorNotice], detail: dict[str, object]) -> None:
        self._running()
        self._end_current(now, changed, detail)

    def _do_pause(self, c: PauseSpeech, actor: Actor, now: datetime, changed: dict[int, Speaker],
                  notices: list[FloorNotice], detail: dict[str, object]) -> Speaker:
        s = self._running()
        if s.state is SpeakerState.PAUSED:
            raise QueueRefused("the speech is already paused", "paused")
        detail.update(speaker=s.id)
        return self._put(replace(s, state=SpeakerState.PAUSED, paused_at=now), changed)

    def _do_resume(self, c: ResumeSpeech, actor: Actor, now: datetime, changed: dict[int, Speaker],
                   notices: list[FloorNotice], detail: dict[str, object]) -> Speaker:
        s = self._running()
        if s.state is not SpeakerState.PAUSED or s.paused_at is None:
            raise QueueRefused("the speech is not paused", "not_paused")
        detail.update(speaker=s.id)
        paused = s.paused_seconds + (now - s.paused_at).total_seconds()
        return self._put(replace(s, state=SpeakerState.SPEAKING, paused_at=None, paused_seconds=paused), changed)

    def _do_move(self, c: Move, actor: Actor, now: datetime, changed: dict[int, Speaker],
                 notices: list[FloorNotice], detail: dict[str, object]) -> Speaker:
        s = self._waiting_speaker(c.speaker_id)
        if not 1 <= c.position <= len(self.order):
            raise QueueRefused(f"position must be between 1 and {len(self.order)}", "invalid")
        self.order.remove(s.id)
        self.order.insert(c.position - 1, s.id)
        self._sorted = None
        changed[s.id] = s
        detail.update(speaker=s.id, position=c.position)
        return s

    def _do_remove(self, c: Remove, actor: Actor, now: datetime, changed: dict[int, Speaker],
                   notices: list[FloorNotice], detail: dict[str, object]) -> Speaker:
        s = self._waiting_speaker(c.speaker_id)
        self.order.remove(s.id)
        detail.update(speaker=s.id)
        removed = self._put(replace(s, state=SpeakerState.REMOVED, ended_at=now), changed)
        notices.append(FloorNotice("removed", removed))
        return removed

    def _do_close(self, c: CloseList, actor: Actor, now: datetime, changed: dict[int, Speaker],
                  notices: list[FloorNotice], detail: dict[str, object]) -> None:
        if self.closed:
            raise QueueRefused("the list of speakers is already closed", "closed")
        self.closed = True

    def _do_reopen(self, c: ReopenList, actor: Actor, now: datetime, changed: dict[int, Speaker],
                   notices: list[FloorNotice], detail: dict[str, object]) -> None:
        if not self.closed:
            raise QueueRefused("the list of speakers is open", "open")
        self.closed = False

    def _do_readd_last(self, c: ReaddLast, actor: Actor, now: datetime, changed: dict[int, Speaker],
                       notices: list[FloorNotice], detail: dict[str, object]) -> Speaker:
        if self.last is None:
            raise QueueRefused("nobody has spoken yet in this session", "no_speech")
        last = self.speakers[self.last]
        if self.open_request_of(last.participant.key) is not None:
            raise QueueRefused(f"{last.participant.name} is already in the list", "duplicate")
        again = Speaker(self.next_id, last.participant, last.speech_type, now, 0)
        self.next_id += 1
        self.order.insert(0, again.id)
        self._sorted = None
        detail.update(speaker=again.id, readded=last.id)
        return self._put(again, changed)

    def _do_set_time(self, c: SetTime, actor: Actor, now: datetime, changed: dict[int, Speaker],
                     notices: list[FloorNotice], detail: dict[str, object]) -> None:
        if not MIN_SECONDS <= c.seconds <= MAX_SECONDS:
            raise QueueRefused(f"time per speaker must be between {MIN_SECONDS} and {MAX_SECONDS} seconds",
                               "invalid")
        self.seconds_per_speaker = c.seconds
        if self.current is not None:
            self._put(replace(self.speakers[self.current], allotted_seconds=c.seconds), changed)
        detail.update(seconds=c.seconds)

    def _do_set_budget(self, c: SetBudget, actor: Actor, now: datetime, changed: dict[int, Speaker],
                       notices: list[FloorNotice], detail: dict[str, object]) -> None:
        name = c.delegation.strip()
        if not name:
            raise QueueRefused("a budget needs a delegation", "invalid")
        if c.seconds is None:
            self.budgets.pop(name, None)
        elif not 0 < c.seconds <= 24 * 3600:
            raise QueueRefused("a budget must be between 1 second and 24 hours", "invalid")
        else:
            self.budgets[name] = c.seconds
        detail.update(delegation=name, seconds=c.seconds)

    # ------------------------------------------------------------------ the timer

    def timer_notices(self, now: datetime, already: set[tuple[int, str]]) -> list[FloorNotice]:
        """The 30-second warning and "time is up" for the running speech, each once (`already`
        holds (speaker id, kind) pairs sent before and is updated)."""
        s = self.current_speaker()
        if s is None or s.state is not SpeakerState.SPEAKING:
            return []
        remaining = s.remaining_seconds(now)
        out = []
        for kind, threshold in (("warning", WARNING_SECONDS), ("time_up", 0)):
            if remaining <= threshold and (s.id, kind) not in already:
                if kind == "warning" and s.allotted_seconds <= WARNING_SECONDS:
                    continue
                if kind == "warning" and remaining <= 0:
                    already.add((s.id, kind))  # past the warning already: only "time is up"
                    continue
                already.add((s.id, kind))
                out.append(FloorNotice(kind, s))  # type: ignore[arg-type]
        return out


def delegation_ledger(lists: list[SpeakerList], now: datetime) -> dict[str, dict[str, float]]:
    """Speaking time per delegation across lists: seconds spoken and number of speeches."""
    ledger: dict[str, dict[str, float]] = {}
    for lst in lists:
        for s in lst.speakers.values():
            if s.started_at is None:
                continue
            row = ledger.setdefault(s.participant.delegation or "(none)", {"seconds": 0.0, "speeches": 0})
            row["seconds"] += s.spoken_seconds(now)
            row["speeches"] += 1
    return dict(sorted(ledger.items()))
