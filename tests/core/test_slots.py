"""Speaking-slot requests: the segment's rules, protocol precedence, the secretariat's review."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from floorbridge.core.errors import InvalidInput
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.slots import (
    Mode,
    ProtocolRank,
    SlotCall,
    SlotForm,
    SlotRequest,
    SlotStatus,
    Stakeholder,
    change_allowed,
    check_submission,
    draft_order,
    parse_choice,
    review,
    rolling_list,
)
from floorbridge.core.speakers import QueueRefused

DEADLINE = datetime(2025, 4, 30, 21, 59, tzinfo=UTC)
CALL = SlotCall(MeetingId("wsis-2025"), "high-level", "High-level segment", DEADLINE,
                (SessionId("hl-1"), SessionId("hl-2")), minutes=3, modes=frozenset({Mode.IN_ROOM, Mode.REMOTE}),
                languages=("en", "fr", "ru"))


def form(delegation: str = "Ruritania", rank: ProtocolRank = ProtocolRank.MINISTER, **kw: object) -> SlotForm:
    base = SlotForm("A. Person", "Minister of ICT", delegation, Stakeholder.GOVERNMENT, rank, SessionId("hl-1"),
                    Mode.REMOTE, "en")
    return replace(base, **kw)  # type: ignore[arg-type]


def request(ref: str, f: SlotForm, minute: int, requester: str = "") -> SlotRequest:
    return SlotRequest(ref, CALL.id, CALL.meeting_id, requester or f"web:{ref}", f,
                       DEADLINE - timedelta(days=10, minutes=-minute))


def test_every_broken_rule_is_named() -> None:
    bad = form(name=" ", session=SessionId("closing"), language="de")
    with pytest.raises(InvalidInput) as err:
        check_submission(CALL, bad, "web:1", DEADLINE - timedelta(days=1), [])
    text = str(err.value)
    assert "name: is required" in text and "session: 'closing' is not open" in text and "language: 'de'" in text


def test_deadline_duplicates_and_one_speaker_per_delegation() -> None:
    with pytest.raises(QueueRefused, match="deadline"):
        check_submission(CALL, form(), "web:1", DEADLINE + timedelta(seconds=1), [])
    first = request("R1", form(), 0, "web:1")
    with pytest.raises(QueueRefused, match="already have a request \\(R1\\)"):
        check_submission(CALL, form("Elbonia"), "web:1", DEADLINE, [first])
    with pytest.raises(QueueRefused, match="one speaker per delegation"):
        check_submission(CALL, form(" ruritania "), "web:2", DEADLINE, [first])
    check_submission(CALL, form("Elbonia"), "web:2", DEADLINE, [first])
    check_submission(CALL, form(), "web:1", DEADLINE, [first], replacing="R1")  # a change of one's own request
    withdrawn = replace(first, status=SlotStatus.WITHDRAWN)
    check_submission(CALL, form(), "web:2", DEADLINE, [withdrawn])


def test_draft_order_by_protocol_precedence_then_receipt() -> None:
    reqs = [
        request("A", form("A", ProtocolRank.AMBASSADOR_OR_HEAD_OF_DELEGATION), 1),
        request("B", form("B", ProtocolRank.MINISTER), 5),
        request("C", form("C", ProtocolRank.HEAD_OF_STATE_OR_GOVERNMENT), 9),
        request("D", form("D", ProtocolRank.MINISTER), 2),
        request("E", form("E", ProtocolRank.OTHER), 0),
    ]
    assert [r.ref for r in draft_order(reqs)] == ["C", "D", "B", "A", "E"]


def test_review_and_rolling_list() -> None:
    now = DEADLINE + timedelta(days=1)
    a = request("A", form("A"), 1)
    b = request("B", form("B"), 2)
    with pytest.raises(QueueRefused, match="needs a reason"):
        review(a, SlotStatus.REJECTED, now)
    with pytest.raises(QueueRefused, match="needs the session"):
        review(a, SlotStatus.APPROVED, now)
    start = datetime(2025, 7, 9, 7, 0, tzinfo=UTC)
    a2 = review(a, SlotStatus.APPROVED, now, session=SessionId("hl-1"), order=2, start=start, minutes=3)
    b2 = review(b, SlotStatus.APPROVED, now, session=SessionId("hl-1"), order=1, start=start, minutes=3)
    c = review(request("C", form("C"), 3), SlotStatus.REJECTED, now, reason="not a member state")
    assert [r.ref for r in rolling_list([a2, b2, c], SessionId("hl-1"))] == ["B", "A"]
    assert c.reason == "not a member state"
    with pytest.raises(QueueRefused, match="deadline"):
        change_allowed(a2, a2.requester, CALL, now)
    with pytest.raises(QueueRefused, match="not your request"):
        change_allowed(a2, "web:someone", CALL, DEADLINE)


def test_choices_from_form_text() -> None:
    assert parse_choice(ProtocolRank, "minister", "rank") is ProtocolRank.MINISTER
    assert parse_choice(Stakeholder, "civil_society", "stakeholder") is Stakeholder.CIVIL_SOCIETY
    with pytest.raises(InvalidInput, match="rank: 'king' is not one of: head_of_state_or_government"):
        parse_choice(ProtocolRank, "king", "rank")
