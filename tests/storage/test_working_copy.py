from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from floorbridge.adapters.storage import SqlAgendaStore
from floorbridge.core.deadline import Deadline, DeadlineKind
from floorbridge.core.errors import InvalidInput, NotFound
from floorbridge.core.ids import DeadlineId, MeetingId, SessionId

from .conftest import MEETING, Clock, at, geneva_meeting, in_utc, sample_deadlines, sample_sessions


async def test_a_meeting_without_a_working_copy_has_an_empty_one(store: SqlAgendaStore) -> None:
    await store.upsert_meeting(MEETING)
    wc = await store.working_copy(MEETING.id)
    assert (wc.sessions, wc.deadlines, wc.updated_at) == ((), (), None)


async def test_replace_stores_sessions_in_order_and_times_in_utc(store: SqlAgendaStore, clock: Clock) -> None:
    await store.upsert_meeting(MEETING)
    sessions = list(reversed(sample_sessions()))  # not chronological: the given order is kept
    await store.replace_working_copy(MEETING.id, sessions, sample_deadlines())
    wc = await store.working_copy(MEETING.id)
    assert wc.sessions == tuple(sessions)
    assert wc.deadlines == tuple(sample_deadlines())
    assert wc.updated_at == clock.now
    assert wc.updated_at is not None and in_utc(wc.updated_at)
    for s in wc.sessions:
        assert in_utc(s.start) and in_utc(s.end)
    # 09:30 in Geneva in October (CEST) is 07:30 UTC.
    opening = next(s for s in wc.sessions if s.id == "opening")
    assert opening.start.replace(tzinfo=None) == datetime(2025, 10, 6, 7, 30)


async def test_deadlines_with_date_and_datetime_due_keep_their_kind(store: SqlAgendaStore) -> None:
    await store.upsert_meeting(MEETING)
    await store.replace_working_copy(MEETING.id, [], sample_deadlines())
    by_id = {d.id: d for d in (await store.working_copy(MEETING.id)).deadlines}
    assert by_id[DeadlineId("registration")].all_day
    assert type(by_id[DeadlineId("registration")].due) is not datetime
    contributions = by_id[DeadlineId("contributions")].due
    assert isinstance(contributions, datetime) and in_utc(contributions)
    assert contributions == at(6, 0) - timedelta(days=6, minutes=1)  # 29 Sep 23:59 in Geneva


async def test_replace_without_deadlines_keeps_the_stored_ones(store: SqlAgendaStore, clock: Clock) -> None:
    await store.upsert_meeting(MEETING)
    await store.replace_working_copy(MEETING.id, sample_sessions(), sample_deadlines())
    clock.now += timedelta(hours=1)
    await store.replace_working_copy(MEETING.id, sample_sessions()[:1], None)
    wc = await store.working_copy(MEETING.id)
    assert [s.id for s in wc.sessions] == ["opening"]
    assert wc.deadlines == tuple(sample_deadlines())
    assert wc.updated_at == clock.now

    await store.replace_working_copy(MEETING.id, [], [])
    wc = await store.working_copy(MEETING.id)
    assert (wc.sessions, wc.deadlines) == ((), ())


async def test_replace_can_store_the_meeting_with_it(store: SqlAgendaStore) -> None:
    await store.replace_working_copy(MEETING.id, sample_sessions(), sample_deadlines(), meeting=MEETING)
    assert await store.get_meeting(MEETING.id) == MEETING
    renamed = geneva_meeting(title="FG-AI4H, 12th meeting (hybrid)")
    await store.replace_working_copy(MEETING.id, sample_sessions(), None, meeting=renamed)
    assert (await store.get_meeting(MEETING.id)).title == "FG-AI4H, 12th meeting (hybrid)"


async def test_a_failed_replace_leaves_everything_as_it_was(store: SqlAgendaStore, clock: Clock) -> None:
    await store.replace_working_copy(MEETING.id, sample_sessions(), sample_deadlines(), meeting=MEETING)
    before = await store.working_copy(MEETING.id)
    clock.now += timedelta(hours=1)
    twice = [*sample_deadlines(), Deadline(DeadlineId("registration"), DeadlineKind.OTHER, "Again", at(6, 9))]
    # The meeting and the sessions are written before the deadlines fail: all of it must roll back.
    with pytest.raises(InvalidInput) as caught:
        await store.replace_working_copy(
            MEETING.id, sample_sessions()[:1], twice, meeting=geneva_meeting(title="Half-written title")
        )
    assert [(p.where, p.what) for p in caught.value.problems] == [("deadline registration", "id is used twice")]
    assert await store.working_copy(MEETING.id) == before
    assert await store.get_meeting(MEETING.id) == MEETING


async def test_duplicate_session_ids_are_named(store: SqlAgendaStore) -> None:
    await store.upsert_meeting(MEETING)
    sessions = sample_sessions()
    with pytest.raises(InvalidInput) as caught:
        await store.replace_working_copy(MEETING.id, [*sessions, replace(sessions[1], title="Copy")], None)
    assert [p.where for p in caught.value.problems] == ["session wg-data-1"]
    assert (await store.working_copy(MEETING.id)).sessions == ()


async def test_naive_times_are_refused_with_every_culprit_named(store: SqlAgendaStore) -> None:
    await store.upsert_meeting(MEETING)
    naive = replace(sample_sessions()[0], start=datetime(2025, 10, 6, 9, 30), end=datetime(2025, 10, 6, 10))
    with pytest.raises(InvalidInput) as caught:
        await store.replace_working_copy(MEETING.id, [naive], None)
    assert [p.where for p in caught.value.problems] == ["session opening.start", "session opening.end"]
    assert all("has no timezone" in p.what for p in caught.value.problems)


async def test_replace_for_an_unknown_meeting_is_not_found(store: SqlAgendaStore) -> None:
    with pytest.raises(NotFound, match="'ghost'"):
        await store.replace_working_copy(MeetingId("ghost"), sample_sessions(), None)


async def test_the_meeting_given_must_be_the_one_replaced(store: SqlAgendaStore) -> None:
    with pytest.raises(InvalidInput) as caught:
        await store.replace_working_copy(MeetingId("other"), [], None, meeting=MEETING)
    assert caught.value.problems[0].where == "meeting.id"
    with pytest.raises(NotFound):
        await store.get_meeting(MEETING.id)


async def test_working_copies_of_two_meetings_are_separate(store: SqlAgendaStore) -> None:
    other = geneva_meeting(id=MeetingId("wsis-20"))
    await store.replace_working_copy(MEETING.id, sample_sessions(), sample_deadlines(), meeting=MEETING)
    await store.replace_working_copy(other.id, sample_sessions()[:1], [], meeting=other)
    assert len((await store.working_copy(MEETING.id)).sessions) == 3
    assert [s.id for s in (await store.working_copy(other.id)).sessions] == [SessionId("opening")]
    assert (await store.working_copy(other.id)).updated_at == datetime(2025, 9, 1, 8, tzinfo=UTC)
