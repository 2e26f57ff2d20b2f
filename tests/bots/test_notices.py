"""What the bots push: one message per subscriber per publish with the changes that concern them,
the pinned schedule of groups, and deadline reminders that are never sent twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from floorbridge.bots.notices import due_reminders, reminder_moments, version_announcements
from floorbridge.core.chats import ChatProfile, ChatRef, NoticeKind, Platform, Subscription
from floorbridge.core.outbox import OutboxKind
from tests.chat.conftest import moved_agenda

from .conftest import WSIS, World

OFFSETS = (timedelta(days=7), timedelta(days=1), timedelta(hours=2))


def sub(chat: str, *tracks: str, kinds: frozenset[NoticeKind] = frozenset(NoticeKind), group: bool = False,
        lang: str = "en", tz: str = "") -> tuple[Subscription, ChatProfile]:
    ref = ChatRef(Platform.TELEGRAM, chat)
    return Subscription(ref, WSIS, frozenset(tracks), kinds), ChatProfile(ref, is_group=group, language=lang,
                                                                          timezone=tz)


async def test_each_subscriber_gets_one_message_with_the_changes_of_their_tracks(world: World, tmp_path: Path) -> None:
    await world.publish(moved_agenda(tmp_path, cancel_workshop=True))
    meeting = await world.store.get_meeting(WSIS)
    version = await world.store.latest_version(WSIS)
    assert version is not None and version.number == 2
    subscribers = [
        sub("1"),
        sub("2", "high-level-segment", tz="America/New_York"),
        sub("3", "regulators-roundtable"),
        sub("4", kinds=frozenset({NoticeKind.DEADLINES})),
        sub("-5", group=True),
    ]
    out = version_announcements(meeting, version, subscribers, today=version.published_at.date())
    sends = {m.chat.chat_id: m.message.plain() for m in out if m.kind is OutboxKind.SEND}
    assert set(sends) == {"1", "2", "-5"}  # 3 follows another track, 4 wants deadlines only
    assert "Moved: High-level segment: opening" in sends["1"] and "Cancelled: Thematic workshop" in sends["1"]
    assert "Cancelled" not in sends["2"]  # the workshop is not in the high-level segment
    assert "09:00–10:30" in sends["2"] and "09:30–10:30" in sends["2"]
    assert "(9 Jul 2025 03:30–04:30 your time)" in sends["2"]  # New York, UTC-4 in July
    pins = [m for m in out if m.kind is OutboxKind.PIN_TODAY]
    assert [m.chat.chat_id for m in pins] == ["-5"]
    keys = [m.dedup_key for m in out]
    assert len(set(keys)) == len(keys)
    # enqueuing the same announcements again (a retried publish) stores nothing new
    assert await world.chats.enqueue(out) == len(out)
    assert await world.chats.enqueue(out) == 0


async def test_reminders_fire_once_at_the_latest_offset_passed(world: World) -> None:
    meeting = await world.store.get_meeting(WSIS)
    version = await world.store.latest_version(WSIS)
    assert version is not None
    speaking = next(d for d in version.deadlines if d.id == "speaking-slot-request")
    moments = dict(reminder_moments(meeting, speaking, OFFSETS))
    # a whole-day deadline (30 April): reminders at 09:00 Geneva, 7 days and 1 day before, and on the day
    assert moments[timedelta(days=7)] == datetime(2025, 4, 23, 7, 0, tzinfo=UTC)
    assert moments[timedelta(days=1)] == datetime(2025, 4, 29, 7, 0, tzinfo=UTC)
    assert moments[timedelta(hours=2)] == datetime(2025, 4, 30, 7, 0, tzinfo=UTC)
    subscribers = [sub("1"), sub("2", kinds=frozenset({NoticeKind.AGENDA}))]
    assert due_reminders(meeting, version, subscribers, OFFSETS, datetime(2025, 4, 22, 12, tzinfo=UTC)) == []
    late_start = due_reminders(meeting, version, subscribers, OFFSETS, datetime(2025, 4, 29, 8, tzinfo=UTC))
    # both April-30 deadlines, once each, for the one chat that wants reminders: the 1-day reminder only
    assert sorted(m.cause for m in late_start) == ["reminder ai-governance-day-confirmation P1D",
                                                   "reminder speaking-slot-request P1D"]
    assert {m.chat.chat_id for m in late_start} == {"1"}
    assert "in 1 day" in late_start[0].message.plain()
    assert await world.chats.enqueue(late_start) == 2
    again = due_reminders(meeting, version, subscribers, OFFSETS, datetime(2025, 4, 29, 8, 1, tzinfo=UTC))
    assert await world.chats.enqueue(again) == 0
    assert due_reminders(meeting, version, subscribers, OFFSETS, datetime(2025, 5, 1, 0, tzinfo=UTC)) == []
