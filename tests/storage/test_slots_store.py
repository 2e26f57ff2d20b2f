"""SqlSlotStore on SQLite and PostgreSQL: calls and requests come back equal, a request and its
messages are written together, and a request only changes from the `updated_at` its editor read."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from floorbridge.adapters.storage import SqlAgendaStore, SqlOutbox, SqlSlotStore, create_engine
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.errors import ConcurrentChange, NotFound
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.ports import SlotStore
from floorbridge.core.richtext import message, p
from floorbridge.core.slots import (
    Mode,
    ProtocolRank,
    SlotCall,
    SlotForm,
    SlotRequest,
    SlotStatus,
    Stakeholder,
    review,
)

from .conftest import MEETING, Clock, geneva_meeting, in_utc

NEW_YORK = timezone(timedelta(hours=-4))
RECEIVED = datetime(2025, 4, 2, 9, 15, 30, 654321, tzinfo=NEW_YORK)
HLS = SlotCall(
    MEETING.id,
    "hls",
    "High-level segment: statements",
    datetime(2025, 4, 30, 23, 59, tzinfo=NEW_YORK),
    (SessionId("opening"), SessionId("wg-data-1")),
    minutes=4,
    one_per_delegation=True,
    modes=frozenset({Mode.IN_ROOM}),
    languages=("en", "fr", "ar"),
)
SIDE = SlotCall(MEETING.id, "side-events", "Side events", datetime(2025, 4, 15, tzinfo=NEW_YORK),
                (SessionId("wg-clin-1"),))


def form(**changes: object) -> SlotForm:
    base: dict[str, object] = {
        "name": "H.E. Ms. Ama Mensah",
        "title": "Minister of Communications and Digitalisation",
        "delegation": "Ghana",
        "stakeholder": Stakeholder.GOVERNMENT,
        "rank": ProtocolRank.MINISTER,
        "session": SessionId("opening"),
        "mode": Mode.IN_ROOM,
        "language": "fr",
    }
    base.update(changes)
    return SlotForm(**base)  # type: ignore[arg-type]


def slot_request(ref: str, minutes_later: int = 0, **changes: object) -> SlotRequest:
    at = RECEIVED + timedelta(minutes=minutes_later)
    base: dict[str, object] = {
        "ref": ref,
        "call_id": HLS.id,
        "meeting_id": MEETING.id,
        "requester": "telegram:42",
        "form": form(),
        "received_at": at,
        "updated_at": at,
        "notify": "telegram:42",
        "feed_token": f"token-{ref}",
    }
    base.update(changes)
    return SlotRequest(**base)  # type: ignore[arg-type]


def note(text: str, key: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(ChatRef(Platform.TELEGRAM, "42"), message(p(text)), meeting_id=MEETING.id, dedup_key=key)


@pytest.fixture
async def slots(store: SqlAgendaStore, clock: Clock) -> SqlSlotStore:
    await store.upsert_meeting(MEETING)
    s = SqlSlotStore(store.engine, clock=clock)
    as_port: SlotStore = s  # mypy checks SqlSlotStore against the Protocol here
    assert as_port is s
    await s.save_call(HLS)
    return s


async def outbox_keys(store: SqlAgendaStore) -> list[str | None]:
    return [item.outgoing.dedup_key for item, _, _ in await SqlOutbox(store.engine).rows()]


async def test_a_call_comes_back_equal_and_can_be_replaced(slots: SqlSlotStore) -> None:
    assert await slots.get_call(MEETING.id, "hls") == HLS
    loaded = await slots.get_call(MEETING.id, "hls")
    assert loaded is not None and in_utc(loaded.deadline)
    moved = replace(HLS, deadline=HLS.deadline + timedelta(days=7), modes=frozenset(Mode), languages=("zh",),
                    one_per_delegation=False, minutes=3, title="Statements (extended)")
    await slots.save_call(moved)
    assert await slots.get_call(MEETING.id, "hls") == moved
    assert await slots.get_call(MEETING.id, "nope") is None


async def test_calls_are_those_of_the_meeting_earliest_deadline_first(
    store: SqlAgendaStore, slots: SqlSlotStore
) -> None:
    other = geneva_meeting(id=MeetingId("wsis-20"))
    await store.upsert_meeting(other)
    await slots.save_call(SIDE)
    await slots.save_call(replace(HLS, meeting_id=other.id))
    assert await slots.calls(MEETING.id) == [SIDE, HLS]
    assert await slots.calls(other.id) == [replace(HLS, meeting_id=other.id)]
    assert await slots.get_call(other.id, SIDE.id) is None


async def test_a_request_comes_back_equal_with_its_messages_enqueued(
    store: SqlAgendaStore, slots: SqlSlotStore
) -> None:
    request = slot_request("HLS-ABC234")
    await slots.add_request(request, [note("received HLS-ABC234", "ack-HLS-ABC234")])
    loaded = await slots.get_request("HLS-ABC234")
    assert loaded == request
    assert loaded is not None and in_utc(loaded.received_at) and loaded.form.rank is ProtocolRank.MINISTER
    assert await outbox_keys(store) == ["ack-HLS-ABC234"]
    assert await slots.get_request("HLS-NOPE") is None


async def test_an_approved_request_keeps_every_field(slots: SqlSlotStore) -> None:
    approved = review(slot_request("HLS-APPR01"), SlotStatus.APPROVED, RECEIVED + timedelta(days=3),
                      session=SessionId("wg-data-1"), order=7, start=datetime(2025, 7, 8, 10, 24, tzinfo=NEW_YORK),
                      minutes=4)
    approved = replace(approved, form=form(stakeholder=Stakeholder.CIVIL_SOCIETY, rank=ProtocolRank.OTHER,
                                           mode=Mode.REMOTE, delegation="Access Now"), notify="")
    await slots.add_request(approved, [])
    assert await slots.get_request(approved.ref) == approved
    waitlisted = review(approved, SlotStatus.WAITLISTED, RECEIVED + timedelta(days=4), reason="time is full")
    await slots.update_request(waitlisted, approved.updated_at, [])
    assert await slots.get_request(approved.ref) == waitlisted


async def test_a_taken_ref_is_refused_and_its_messages_are_not_enqueued(
    store: SqlAgendaStore, slots: SqlSlotStore
) -> None:
    await slots.add_request(slot_request("HLS-SAME01"), [note("first", "first")])
    with pytest.raises(ConcurrentChange, match="HLS-SAME01"):
        await slots.add_request(slot_request("HLS-SAME01", 5, requester="web:7", feed_token="other"),
                                [note("second", "second")])
    assert await slots.get_request("HLS-SAME01") == slot_request("HLS-SAME01")
    assert await outbox_keys(store) == ["first"]


async def test_a_request_for_an_unknown_call_is_not_found(slots: SqlSlotStore) -> None:
    with pytest.raises(NotFound, match="'no-call'"):
        await slots.add_request(slot_request("X-1", call_id="no-call"), [])
    assert await slots.requests(MEETING.id) == []


async def test_an_update_from_the_updated_at_read_replaces_the_request(
    store: SqlAgendaStore, slots: SqlSlotStore
) -> None:
    request = slot_request("HLS-UPD001")
    await slots.add_request(request, [])
    changed = replace(request, form=form(language="ar", session=SessionId("wg-data-1")),
                      updated_at=RECEIVED + timedelta(hours=2))
    await slots.update_request(changed, request.updated_at, [note("changed", "changed-1")])
    assert await slots.get_request(request.ref) == changed
    assert await outbox_keys(store) == ["changed-1"]


async def test_a_stale_update_raises_and_changes_nothing(store: SqlAgendaStore, slots: SqlSlotStore) -> None:
    request = slot_request("HLS-STALE1")
    await slots.add_request(request, [])
    first = replace(request, status=SlotStatus.WITHDRAWN, updated_at=RECEIVED + timedelta(hours=1))
    await slots.update_request(first, request.updated_at, [])
    second = replace(request, reason="late edit", updated_at=RECEIVED + timedelta(hours=2))
    with pytest.raises(ConcurrentChange, match="HLS-STALE1"):
        await slots.update_request(second, request.updated_at, [note("should not go", "nope")])
    with pytest.raises(ConcurrentChange):
        await slots.update_request(second, None, [])
    assert await slots.get_request(request.ref) == first
    assert await outbox_keys(store) == []


async def test_a_request_never_updated_is_updated_from_none(slots: SqlSlotStore) -> None:
    request = slot_request("HLS-NONE01", updated_at=None)
    await slots.add_request(request, [])
    with pytest.raises(ConcurrentChange):
        await slots.update_request(replace(request, reason="x"), RECEIVED, [])
    done = replace(request, status=SlotStatus.REJECTED, reason="not a delegate", updated_at=RECEIVED)
    await slots.update_request(done, None, [])
    assert await slots.get_request(request.ref) == done


async def test_updating_an_unknown_request_is_not_found(slots: SqlSlotStore) -> None:
    with pytest.raises(NotFound, match="HLS-GHOST1"):
        await slots.update_request(slot_request("HLS-GHOST1"), RECEIVED, [])


async def test_two_editors_of_one_request_make_exactly_one_change(
    store: SqlAgendaStore, store_url: str, slots: SqlSlotStore
) -> None:
    request = slot_request("HLS-RACE01")
    await slots.add_request(request, [])
    other_engine = create_engine(store_url)
    try:
        editors = [slots, SqlSlotStore(other_engine)]
        edits = [replace(request, reason=f"edit {i}", updated_at=RECEIVED + timedelta(minutes=i + 1))
                 for i in range(2)]
        results = await asyncio.gather(
            *(e.update_request(edit, request.updated_at, [note(f"edit {i}", f"edit-{i}")])
              for i, (e, edit) in enumerate(zip(editors, edits, strict=True))),
            return_exceptions=True,
        )
    finally:
        await other_engine.dispose()
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1 and all(isinstance(r, ConcurrentChange) for r in results if r is not None), results
    assert await slots.get_request(request.ref) == edits[winners[0]]
    assert await outbox_keys(store) == [f"edit-{winners[0]}"]


async def test_requests_are_listed_by_meeting_call_and_requester_in_order_of_receipt(
    store: SqlAgendaStore, slots: SqlSlotStore
) -> None:
    other = geneva_meeting(id=MeetingId("wsis-20"))
    await store.upsert_meeting(other)
    await slots.save_call(SIDE)
    await slots.save_call(replace(HLS, meeting_id=other.id))
    late = slot_request("HLS-LATE01", 30, requester="web:1")
    early = slot_request("HLS-EARLY1", 0, requester="telegram:42")
    side = slot_request("SIDE-00001", 10, call_id=SIDE.id, requester="web:1")
    elsewhere = slot_request("HLS-ELSE01", 5, meeting_id=other.id, requester="web:1")
    for r in (late, side, elsewhere, early):
        await slots.add_request(r, [])
    assert await slots.requests(MEETING.id) == [early, side, late]
    assert await slots.requests(MEETING.id, HLS.id) == [early, late]
    assert await slots.requests(MEETING.id, SIDE.id) == [side]
    assert await slots.requests(other.id) == [elsewhere]
    assert await slots.requests(MEETING.id, "nope") == []
    assert await slots.requests_of("web:1") == [elsewhere, side, late]
    assert await slots.requests_of("telegram:42") == [early]
    assert await slots.requests_of("nobody") == []


async def test_a_request_is_found_by_its_feed_token_and_never_by_an_empty_one(slots: SqlSlotStore) -> None:
    with_token = slot_request("HLS-TOKEN1")
    # Requests without a feed token may be many: the empty token is stored as NULL, not as a duplicate.
    tokenless = [slot_request(f"HLS-NOTOK{n}", n, requester=f"web:{n}", feed_token="") for n in range(2)]
    for r in (with_token, *tokenless):
        await slots.add_request(r, [])
    assert await slots.request_by_feed_token("token-HLS-TOKEN1") == with_token
    assert await slots.request_by_feed_token("") is None
    assert await slots.request_by_feed_token("unknown") is None
    assert [await slots.get_request(r.ref) for r in tokenless] == tokenless
