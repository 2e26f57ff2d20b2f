from __future__ import annotations

from datetime import date

import pytest

from floorbridge.adapters.storage import SqlAgendaStore
from floorbridge.core.errors import NotFound
from floorbridge.core.ids import MeetingId

from .conftest import MEETING, geneva_meeting


async def test_a_stored_meeting_comes_back_equal(store: SqlAgendaStore) -> None:
    await store.upsert_meeting(MEETING)
    assert await store.get_meeting(MEETING.id) == MEETING


async def test_upsert_replaces_the_meeting(store: SqlAgendaStore) -> None:
    await store.upsert_meeting(MEETING)
    moved = geneva_meeting(venue="CICG", end_date=date(2025, 10, 9))
    await store.upsert_meeting(moved)
    assert await store.get_meeting(MEETING.id) == moved
    assert await store.list_meetings() == [moved]


async def test_meetings_are_listed_earliest_first(store: SqlAgendaStore) -> None:
    wsis = geneva_meeting(
        id=MeetingId("wsis-20"),
        title="WSIS+20 High-Level Event",
        start_date=date(2025, 7, 7),
        end_date=date(2025, 7, 11),
    )
    wipo = geneva_meeting(
        id=MeetingId("wipo-dialogue"),
        title="WIPO Conversation",
        start_date=date(2025, 11, 3),
        end_date=date(2025, 11, 4),
    )
    for m in (MEETING, wipo, wsis):
        await store.upsert_meeting(m)
    assert [m.id for m in await store.list_meetings()] == ["wsis-20", "fg-ai4h-12", "wipo-dialogue"]


async def test_an_unknown_meeting_is_not_found_and_named(store: SqlAgendaStore) -> None:
    with pytest.raises(NotFound, match="'no-such-meeting'"):
        await store.get_meeting(MeetingId("no-such-meeting"))
    assert await store.list_meetings() == []
