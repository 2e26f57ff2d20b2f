"""The live list of speakers: order by speech type and receipt, one open request each, moderator
actions, optimistic concurrency, the timer and delegation budgets."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from floorbridge.core.errors import ConcurrentChange
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.speakers import (
    Actor,
    Channel,
    CloseList,
    EndSpeech,
    Move,
    Next,
    NotAllowed,
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
    SpeakerList,
    SpeakerState,
    SpeechType,
    Withdraw,
    delegation_ledger,
)

T0 = datetime(2025, 7, 9, 9, 0, tzinfo=UTC)
CHAIR = Actor("telegram:1", "Chair", Channel.TELEGRAM, moderator=True)


def person(n: int, delegation: str = "", channel: Channel = Channel.WEB) -> Participant:
    return Participant(f"web:{n}", f"Delegate {n}", delegation or f"Country {n}", channel)


def me(p: Participant) -> Actor:
    return Actor(p.key, p.name, p.channel)


def ask(lst: SpeakerList, p: Participant, kind: SpeechType = SpeechType.CONTRIBUTION, at: int = 0) -> int:
    outcome = lst.apply(RequestFloor(p, kind, T0 + timedelta(seconds=at), receipt=at), me(p), T0)
    assert outcome.speaker is not None
    return outcome.speaker.id


def names(lst: SpeakerList) -> list[str]:
    return [s.participant.name for s in lst.waiting()]


def fresh() -> SpeakerList:
    return SpeakerList(MeetingId("wsis-2025"), SessionId("hl-1"))


def test_order_follows_speech_type_then_receipt_time() -> None:
    lst = fresh()
    ask(lst, person(1), at=1)
    ask(lst, person(2), SpeechType.RIGHT_OF_REPLY, at=2)
    ask(lst, person(3), at=3)
    ask(lst, person(4), SpeechType.POINT_OF_ORDER, at=4)
    ask(lst, person(5), SpeechType.INTERPOSED_QUESTION, at=5)
    # a request that arrived earlier but is applied later still takes its receipt place
    ask(lst, person(6), at=0)
    assert names(lst) == ["Delegate 4", "Delegate 5", "Delegate 6", "Delegate 1", "Delegate 3", "Delegate 2"]
    assert lst.version == 6


def test_thousands_of_mixed_requests_keep_band_and_receipt_order_and_one_request_each() -> None:
    rng = random.Random(4)
    lst = fresh()
    kinds = list(SpeechType)
    asked: dict[str, int] = {}
    for n in range(3000):
        who = person(rng.randrange(1200))  # many ask twice: the second is refused while the first is open
        if rng.random() < 0.05 and lst.open_request_of(who.key) is not None:
            lst.apply(Withdraw(who.key), me(who), T0)
            del asked[who.key]
            continue
        if rng.random() < 0.01 and lst.order:
            lst.apply(Next(), CHAIR, T0)  # the list changes under the requests: the index must follow
            asked = {s.participant.key: s.id for s in lst.waiting()}
            continue
        kind = rng.choice(kinds)
        if who.key in asked or (lst.current_speaker() and lst.current_speaker().participant.key == who.key):  # type: ignore[union-attr]
            with pytest.raises(QueueRefused, match="already have an open request"):
                lst.apply(RequestFloor(who, kind, T0 + timedelta(seconds=n // 3), receipt=n), me(who), T0)
            continue
        outcome = lst.apply(RequestFloor(who, kind, T0 + timedelta(seconds=n // 3), receipt=n), me(who), T0)
        assert outcome.speaker is not None
        asked[who.key] = outcome.speaker.id
        assert outcome.notices[0].position == lst.position_of(outcome.speaker.id)
    band = {SpeechType.POINT_OF_ORDER: 0, SpeechType.INTERPOSED_QUESTION: 1, SpeechType.ANSWER: 1,
            SpeechType.CONTRIBUTION: 2, SpeechType.RIGHT_OF_REPLY: 3}
    waiting = lst.waiting()
    assert len(waiting) > 500
    assert waiting == sorted(waiting, key=lambda s: (band[s.speech_type], s.requested_at, s.receipt))
    assert len({s.participant.key for s in waiting}) == len(waiting)


def test_requests_stored_late_take_their_receipt_place_even_after_the_chair_reordered() -> None:
    """Requests reach the list out of receipt order (a chat's is stored after later web ones), and
    the chair moves and re-adds speakers by hand: each request still goes after the last waiting
    speaker who comes first by band and receipt, as a scan of the whole list would put it."""
    rng = random.Random(11)
    band = {SpeechType.POINT_OF_ORDER: 0, SpeechType.INTERPOSED_QUESTION: 1, SpeechType.ANSWER: 1,
            SpeechType.CONTRIBUTION: 2, SpeechType.RIGHT_OF_REPLY: 3}

    def by_scan(lst: SpeakerList, kind: SpeechType, at: datetime, receipt: int) -> int:
        key = (band[kind], at, receipt)
        ranks = [(band[s.speech_type], s.requested_at, s.receipt) for s in lst.waiting()]
        return max((i + 1 for i, r in enumerate(ranks) if r <= key), default=0) + 1

    lst = fresh()
    for n in range(1500):
        if n % 300 == 299:  # the chair reorders: the list is no longer in receipt order
            for _ in range(5):
                lst.apply(Move(rng.choice(lst.order), rng.randrange(1, len(lst.order) + 1)), CHAIR, T0)
        if n == 900:
            lst.apply(Next(), CHAIR, T0)
            lst.apply(EndSpeech(), CHAIR, T0)
            lst.apply(ReaddLast(), CHAIR, T0)
        kind = rng.choice([SpeechType.CONTRIBUTION] * 6 + list(SpeechType))
        at = T0 + timedelta(milliseconds=n * 10 - rng.randrange(3000))  # up to 3 s late
        expected = by_scan(lst, kind, at, n)
        who = person(10_000 + n)
        outcome = lst.apply(RequestFloor(who, kind, at, receipt=n), me(who), T0)
        assert outcome.notices[0].position == expected
        assert lst.snapshot().order == lst.order
    contributions = [s for s in lst.waiting()[300:] if s.speech_type is SpeechType.CONTRIBUTION]
    assert len(contributions) > 500


def test_one_open_request_per_participant_and_withdraw() -> None:
    lst = fresh()
    p = person(1)
    ask(lst, p)
    with pytest.raises(QueueRefused, match=r"already have an open request.*number 1"):
        ask(lst, p)
    lst.apply(Withdraw(p.key), me(p), T0)
    assert lst.waiting() == []
    ask(lst, p)  # may ask again after withdrawing
    with pytest.raises(NotAllowed):
        lst.apply(Withdraw(p.key), me(person(2)), T0)


def test_only_moderators_act_and_delegates_only_for_themselves() -> None:
    lst = fresh()
    ask(lst, person(1))
    for command in (Next(), CloseList(), Move(1, 1), Remove(1), SetTime(60), SetBudget("X", 60)):
        with pytest.raises(NotAllowed):
            lst.apply(command, me(person(2)), T0)
    with pytest.raises(NotAllowed):
        lst.apply(RequestFloor(person(3)), me(person(2)), T0)
    # the chair adds an in-room speaker
    room = Participant("room:fr", "France", "France", Channel.ROOM, remote=False)
    lst.apply(RequestFloor(room), CHAIR, T0)
    assert names(lst) == ["Delegate 1", "France"]


def test_next_gives_the_floor_and_tells_who_is_next() -> None:
    lst = fresh()
    ask(lst, person(1), at=1)
    ask(lst, person(2), at=2)
    out = lst.apply(Next(), CHAIR, T0)
    kinds = [(n.kind, n.speaker.participant.name) for n in out.notices]
    assert ("floor", "Delegate 1") in kinds and ("up_next", "Delegate 2") in kinds
    assert lst.current_speaker() is not None and lst.current_speaker().state is SpeakerState.SPEAKING  # type: ignore[union-attr]
    out = lst.apply(Next(), CHAIR, T0 + timedelta(seconds=100))
    assert lst.speakers[1].state is SpeakerState.DONE and lst.speakers[1].spoken_seconds(T0) == 100
    assert [n.kind for n in out.notices] == ["floor"]
    lst.apply(EndSpeech(), CHAIR, T0 + timedelta(seconds=150))
    with pytest.raises(QueueRefused, match="nobody is waiting"):
        lst.apply(Next(), CHAIR, T0)


def test_pause_and_resume_stop_the_clock() -> None:
    lst = fresh()
    ask(lst, person(1))
    lst.apply(SetTime(120), CHAIR, T0)
    lst.apply(Next(), CHAIR, T0)
    lst.apply(PauseSpeech(), CHAIR, T0 + timedelta(seconds=30))
    speaker = lst.current_speaker()
    assert speaker is not None and speaker.spoken_seconds(T0 + timedelta(seconds=90)) == 30
    lst.apply(ResumeSpeech(), CHAIR, T0 + timedelta(seconds=90))
    speaker = lst.current_speaker()
    assert speaker is not None and speaker.remaining_seconds(T0 + timedelta(seconds=100)) == 80


def test_timer_warns_at_30_seconds_and_says_time_is_up_once() -> None:
    lst = fresh()
    ask(lst, person(1))
    lst.apply(SetTime(60), CHAIR, T0)
    lst.apply(Next(), CHAIR, T0)
    sent: set[tuple[int, str]] = set()
    assert lst.timer_notices(T0 + timedelta(seconds=20), sent) == []
    assert [n.kind for n in lst.timer_notices(T0 + timedelta(seconds=31), sent)] == ["warning"]
    assert lst.timer_notices(T0 + timedelta(seconds=40), sent) == []
    assert [n.kind for n in lst.timer_notices(T0 + timedelta(seconds=61), sent)] == ["time_up"]
    assert lst.timer_notices(T0 + timedelta(seconds=70), sent) == []


def test_move_remove_close_reopen_readd_last() -> None:
    lst = fresh()
    for n in (1, 2, 3):
        ask(lst, person(n), at=n)
    lst.apply(Move(3, 1), CHAIR, T0)
    assert names(lst) == ["Delegate 3", "Delegate 1", "Delegate 2"]
    out = lst.apply(Remove(1), CHAIR, T0)
    assert [n.kind for n in out.notices] == ["removed"]
    lst.apply(CloseList(), CHAIR, T0)
    with pytest.raises(QueueRefused, match="closed"):
        ask(lst, person(4))
    ask(lst, person(5), SpeechType.POINT_OF_ORDER)  # a point of order can be raised at any time
    lst.apply(ReopenList(), CHAIR, T0)
    ask(lst, person(4), at=9)
    assert names(lst) == ["Delegate 5", "Delegate 3", "Delegate 2", "Delegate 4"]
    lst.apply(Next(), CHAIR, T0)
    lst.apply(EndSpeech(), CHAIR, T0 + timedelta(seconds=5))
    lst.apply(ReaddLast(), CHAIR, T0 + timedelta(seconds=6))
    assert names(lst)[0] == "Delegate 5"
    with pytest.raises(QueueRefused, match="position must be between 1 and 4"):
        lst.apply(Move(3, 9), CHAIR, T0)


def test_two_moderators_at_once_make_one_change() -> None:
    lst = fresh()
    ask(lst, person(1))
    ask(lst, person(2))
    seen = lst.version
    lst.apply(Next(), CHAIR, T0, expected_version=seen)
    other = Actor("matrix:@vice:hs", "Vice-chair", Channel.MATRIX, moderator=True)
    with pytest.raises(ConcurrentChange, match="changed"):
        lst.apply(Next(), other, T0, expected_version=seen)
    assert lst.current_speaker() is not None and lst.current_speaker().participant.name == "Delegate 1"  # type: ignore[union-attr]
    assert lst.version == seen + 1


def test_delegation_budget_limits_the_allotted_time() -> None:
    lst = fresh()
    a, b = person(1, "Ruritania"), person(2, "Ruritania")
    ask(lst, a, at=1)
    ask(lst, b, at=2)
    lst.apply(SetBudget("Ruritania", 200), CHAIR, T0)
    lst.apply(Next(), CHAIR, T0)
    assert lst.speakers[1].allotted_seconds == 180
    lst.apply(Next(), CHAIR, T0 + timedelta(seconds=190))
    assert lst.speakers[2].allotted_seconds == 10
    ask(lst, a, at=3)
    lst.apply(EndSpeech(), CHAIR, T0 + timedelta(seconds=200))
    with pytest.raises(QueueRefused, match="Ruritania has used its speaking-time budget of 200 s"):
        lst.apply(Next(), CHAIR, T0 + timedelta(seconds=201))
    assert names(lst) == ["Delegate 1"]  # refused without losing the request
    ledger = delegation_ledger([lst], T0 + timedelta(seconds=300))
    assert ledger["Ruritania"] == {"seconds": 200.0, "speeches": 2}


def test_a_refused_command_changes_nothing() -> None:
    lst = fresh()
    ask(lst, person(1))
    before = (lst.version, list(lst.order), dict(lst.speakers))
    with pytest.raises(QueueRefused):
        lst.apply(ResumeSpeech(), CHAIR, T0)
    assert (lst.version, list(lst.order), dict(lst.speakers)) == before
