from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from floorbridge.adapters.storage import SqlAgendaStore, create_engine, open_store
from floorbridge.core.agenda import Session, SessionStatus
from floorbridge.core.changes import ChangeKind
from floorbridge.core.errors import ConcurrentChange, InvalidInput, NotFound
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.ports import VersionSummary
from floorbridge.core.versions import AgendaVersion, publish

from .conftest import MEETING, at, feeds_for, geneva_meeting, in_utc, sample_deadlines, sample_sessions

# Publication times given in Geneva time: they must come back equal (and in UTC).
T1 = MEETING.localize(date(2025, 9, 15), time(17, 0))
T2 = MEETING.localize(date(2025, 10, 1), time(9, 15))


async def publish_next(store: SqlAgendaStore, meeting_id: MeetingId, now: datetime, comment: str) -> AgendaVersion:
    """What the publish use case does: working copy + latest version -> next version, stored with its feeds."""
    wc = await store.working_copy(meeting_id)
    version = publish(
        meeting_id, await store.latest_version(meeting_id), wc.sessions, wc.deadlines, now=now, comment=comment
    )
    await store.save_version(version, feeds_for(version))
    return version


def second_draft() -> list[Session]:
    _opening, wg_data, wg_clin = sample_sessions()
    return [
        # opening dropped: published as cancelled
        replace(wg_data, start=at(6, 11), end=at(6, 13)),  # moved: SEQUENCE grows
        # renamed and re-tracked, not rescheduled: same SEQUENCE
        replace(wg_clin, title="WG Clinical evaluation (joint)", track="WG Evaluation"),
        Session(SessionId("closing"), "Closing plenary", at(8, 16), at(8, 17), track="Plenary", room="Popov"),
    ]


@pytest.fixture
async def meeting(store: SqlAgendaStore) -> MeetingId:
    await store.replace_working_copy(MEETING.id, sample_sessions(), sample_deadlines(), meeting=MEETING)
    return MEETING.id


async def test_nothing_published_yet(store: SqlAgendaStore, meeting: MeetingId) -> None:
    assert await store.latest_version(meeting) is None
    assert await store.list_versions(meeting) == []
    assert await store.rendered_feeds(meeting) == {}
    assert await store.latest_version_numbers() == {}


async def test_a_saved_version_loads_back_equal(store: SqlAgendaStore, meeting: MeetingId) -> None:
    v1 = await publish_next(store, meeting, T1, "First agenda")
    loaded = await store.get_version(meeting, 1)
    assert loaded == v1
    assert loaded == await store.latest_version(meeting)
    assert in_utc(loaded.published_at)
    assert all(in_utc(p.session.start) and in_utc(p.last_modified) for p in loaded.sessions)
    assert [type(d.due) for d in loaded.deadlines] == [date, datetime]
    assert loaded.changes.of_kind(ChangeKind.ADDED) and loaded.changes.to_version == 1
    assert loaded.changes.from_version is None


async def test_publishing_a_changed_working_copy_makes_version_2(store: SqlAgendaStore, meeting: MeetingId) -> None:
    await publish_next(store, meeting, T1, "First agenda")
    moved_deadline = replace(sample_deadlines()[1], due=MEETING.localize(date(2025, 9, 30), time(12, 0)))
    await store.replace_working_copy(meeting, second_draft(), [sample_deadlines()[0], moved_deadline])
    v2 = await publish_next(store, meeting, T2, "Sessions moved")

    loaded = await store.get_version(meeting, 2)
    assert loaded == v2
    published = {p.session.id: p for p in loaded.sessions}
    assert (published[SessionId("opening")].session.status, published[SessionId("opening")].sequence) == (
        SessionStatus.CANCELLED,
        1,
    )
    assert published[SessionId("wg-data-1")].sequence == 1
    assert published[SessionId("wg-data-1")].last_modified == T2
    assert published[SessionId("wg-clin-1")].sequence == 0
    assert published[SessionId("wg-clin-1")].session.title == "WG Clinical evaluation (joint)"
    assert published[SessionId("closing")].sequence == 0
    kinds = {(c.kind, c.subject) for c in loaded.changes}
    assert {
        (ChangeKind.CANCELLED, "opening"),
        (ChangeKind.MOVED_TIME, "wg-data-1"),
        (ChangeKind.RENAMED, "wg-clin-1"),
        (ChangeKind.ADDED, "closing"),
        (ChangeKind.DEADLINE_MOVED, "contributions"),
    } <= kinds
    assert loaded.changes.from_version == 1
    # Version 1 is still there, unchanged.
    assert (await store.get_version(meeting, 1)).session("opening") is not None
    assert (await store.get_version(meeting, 1)).session("closing") is None


async def test_list_versions_summarises_each_version_in_order(store: SqlAgendaStore, meeting: MeetingId) -> None:
    v1 = await publish_next(store, meeting, T1, "First agenda")
    await store.replace_working_copy(meeting, second_draft(), None)
    v2 = await publish_next(store, meeting, T2, "Sessions moved")
    summaries = await store.list_versions(meeting)
    assert summaries == [
        VersionSummary(1, T1, "First agenda", len(v1.changes)),
        VersionSummary(2, T2, "Sessions moved", len(v2.changes)),
    ]
    assert all(in_utc(s.published_at) for s in summaries)
    assert summaries[1].change_count >= 4


async def test_rendered_feeds_are_those_of_the_latest_version(store: SqlAgendaStore, meeting: MeetingId) -> None:
    v1 = await publish_next(store, meeting, T1, "First agenda")
    assert await store.rendered_feeds(meeting) == feeds_for(v1)
    await store.replace_working_copy(meeting, second_draft(), None)
    v2 = await publish_next(store, meeting, T2, "Sessions moved")

    feeds = await store.rendered_feeds(meeting)
    assert feeds == feeds_for(v2)
    assert "tracks/wg-clinical" in feeds_for(v1) and "tracks/wg-clinical" not in feeds
    assert all(b"X-VERSION:2" in f.body for f in feeds.values())
    assert all(in_utc(f.last_modified) for f in feeds.values())
    assert feeds["all"].content_type == "text/calendar; charset=utf-8"


async def test_latest_version_numbers_is_one_query_over_all_meetings(store: SqlAgendaStore, meeting: MeetingId) -> None:
    other = geneva_meeting(id=MeetingId("wsis-20"), title="WSIS+20")
    await store.replace_working_copy(other.id, sample_sessions(), [], meeting=other)
    await store.upsert_meeting(geneva_meeting(id=MeetingId("unpublished")))
    await publish_next(store, meeting, T1, "v1")
    await publish_next(store, other.id, T1, "v1")
    await store.replace_working_copy(other.id, second_draft(), None)
    await publish_next(store, other.id, T2, "v2")

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "ROLLBACK", "COMMIT", "SELECT PG_", ";")):
            statements.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        numbers = await store.latest_version_numbers()
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert numbers == {"fg-ai4h-12": 1, "wsis-20": 2}
    assert len(statements) == 1, statements


async def test_a_taken_version_number_raises_and_changes_nothing(store: SqlAgendaStore, meeting: MeetingId) -> None:
    v1 = await publish_next(store, meeting, T1, "First agenda")
    rival = replace(v1, comment="Rival", published_at=T2, sessions=v1.sessions[:1])
    with pytest.raises(ConcurrentChange, match="version 1"):
        await store.save_version(rival, feeds_for(rival))
    assert await store.latest_version(meeting) == v1
    assert await store.rendered_feeds(meeting) == feeds_for(v1)
    assert await store.list_versions(meeting) == [VersionSummary(1, T1, "First agenda", len(v1.changes))]


async def test_two_publishers_racing_for_one_number_exactly_one_wins(store_url: str, meeting: MeetingId) -> None:
    # Two processes (two stores, two engines) publish version 1 at the same moment.
    first = await open_store(store_url)
    second = await open_store(store_url, migrate=False)
    try:
        wc = await first.working_copy(meeting)
        a = publish(meeting, None, wc.sessions, wc.deadlines, now=T1, comment="from A")
        b = publish(meeting, None, wc.sessions[:2], wc.deadlines, now=T1 + timedelta(seconds=1), comment="from B")
        outcomes = await asyncio.gather(
            first.save_version(a, feeds_for(a)), second.save_version(b, feeds_for(b)), return_exceptions=True
        )
    finally:
        await first.close()
        await second.close()
    assert sorted(type(o).__name__ for o in outcomes) == ["ConcurrentChange", "NoneType"]
    winner = a if outcomes[0] is None else b
    async with await open_store(store_url) as check:
        assert await check.latest_version(meeting) == winner
        assert await check.rendered_feeds(meeting) == feeds_for(winner)
        assert await check.latest_version_numbers() == {meeting: 1}


async def test_a_version_failing_half_way_leaves_nothing_behind(store: SqlAgendaStore, meeting: MeetingId) -> None:
    v1 = await publish_next(store, meeting, T1, "First agenda")
    wc = await store.working_copy(meeting)
    v2 = publish(meeting, v1, [*second_draft()], wc.deadlines, now=T2)
    # The version row and its sessions are written before the duplicate deadline fails.
    broken = replace(v2, deadlines=(*v2.deadlines, v2.deadlines[0]))
    with pytest.raises(InvalidInput) as caught:
        await store.save_version(broken, feeds_for(broken))
    assert [p.where for p in caught.value.problems] == [f"deadline {v2.deadlines[0].id}"]
    assert await store.latest_version(meeting) == v1
    assert await store.rendered_feeds(meeting) == feeds_for(v1)
    assert await store.latest_version_numbers() == {meeting: 1}
    # Version 2 can still be published afterwards.
    await store.save_version(v2, feeds_for(v2))
    assert await store.latest_version(meeting) == v2


async def test_feeds_must_be_filed_under_their_own_key(store: SqlAgendaStore, meeting: MeetingId) -> None:
    wc = await store.working_copy(meeting)
    v1 = publish(meeting, None, wc.sessions, wc.deadlines, now=T1)
    feeds = feeds_for(v1)
    with pytest.raises(InvalidInput, match="holds the feed keyed 'deadlines'"):
        await store.save_version(v1, {**feeds, "all": feeds["deadlines"]})
    assert await store.latest_version(meeting) is None


async def test_missing_versions_and_meetings_are_not_found(store: SqlAgendaStore, meeting: MeetingId) -> None:
    await publish_next(store, meeting, T1, "v1")
    with pytest.raises(NotFound, match="'fg-ai4h-12' has no version 7"):
        await store.get_version(meeting, 7)
    with pytest.raises(NotFound, match="'ghost' does not exist"):
        await store.get_version(MeetingId("ghost"), 1)
    assert await store.latest_version(MeetingId("ghost")) is None
    assert await store.rendered_feeds(MeetingId("ghost")) == {}


async def test_saving_a_version_of_an_unknown_meeting_is_not_found(store: SqlAgendaStore) -> None:
    ghost = MeetingId("ghost")
    version = publish(ghost, None, sample_sessions(), [], now=datetime(2025, 9, 1, tzinfo=UTC))
    with pytest.raises(NotFound, match="'ghost'"):
        await store.save_version(version, feeds_for(version))
    assert await store.latest_version_numbers() == {}


async def test_an_expired_copy_is_answered_at_once_and_refreshed_behind(
    store: SqlAgendaStore, store_url: str, meeting: MeetingId
) -> None:
    """The web process reads the latest version for every floor request: once its copy is older
    than cache_seconds it still answers at once, with no query on the caller's way (a burst must not
    queue behind one), and the copy is brought up to date in the background."""
    v1 = await publish_next(store, meeting, T1, "First agenda")
    reader = SqlAgendaStore(create_engine(store_url), cache_seconds=0.1)  # another process
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    try:
        assert await reader.latest_version(meeting) == v1
        assert (await reader.get_meeting(meeting)).id == meeting
        await store.replace_working_copy(meeting, second_draft(), sample_deadlines())
        v2 = await publish_next(store, meeting, T2, "Second agenda")
        await asyncio.sleep(0.15)  # the reader's copy has expired
        event.listen(reader.engine.sync_engine, "before_cursor_execute", count)
        assert await reader.latest_version(meeting) == v1  # at once: the copy it has
        assert (await reader.get_meeting(meeting)).id == meeting
        assert statements == []
        for _ in range(500):  # polled: the refresh is the reader's own business
            if await reader.latest_version(meeting) == v2:
                break
            await asyncio.sleep(0.01)
        assert await reader.latest_version(meeting) == v2
        assert statements  # it was read behind the callers' backs
    finally:
        await reader.close()
