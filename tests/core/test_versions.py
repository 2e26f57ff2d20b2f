from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from floorbridge.core.agenda import Document, SessionStatus
from floorbridge.core.changes import ChangeKind, TimeSpan
from floorbridge.core.codec import version_from_dict, version_to_dict
from floorbridge.core.deadline import Deadline, DeadlineKind
from floorbridge.core.errors import NothingToPublish
from floorbridge.core.ids import DeadlineId
from floorbridge.core.meeting import Meeting
from floorbridge.core.versions import publish

from .conftest import NOW1, NOW2, NOW3, make_session


@pytest.fixture
def v1_sessions(meeting: Meeting) -> list:
    return [
        make_session(meeting, "open", 24, "09:30", "10:00", room="Popov", track="Plenary"),
        make_session(meeting, "wg1", 24, "10:00", "12:30", room="Popov", track="WG1",
                     documents=(Document("C-1", "https://example.org/c1"),)),
        make_session(meeting, "wg2", 24, "14:30", "17:30", room="K", track="WG2"),
        make_session(meeting, "close", 27, "16:00", "17:30", room="Popov", track="Plenary"),
    ]


def test_first_version_adds_everything(meeting: Meeting, v1_sessions: list) -> None:
    v1 = publish(meeting.id, None, v1_sessions, [], now=NOW1, comment="first")
    assert v1.number == 1
    assert [c.kind for c in v1.changes] == [ChangeKind.ADDED] * 4
    assert {p.sequence for p in v1.sessions} == {0}
    assert v1.changes.from_version is None and v1.changes.to_version == 1


def test_changelog_lists_every_kind_of_change_with_old_and_new(meeting: Meeting, v1_sessions: list) -> None:
    deadline = Deadline(DeadlineId("reg"), DeadlineKind.REGISTRATION, "Registration", date(2025, 10, 10))
    v1 = publish(meeting.id, None, v1_sessions, [deadline], now=NOW1)
    opening, wg1, wg2, _closing = v1_sessions
    moved = make_session(meeting, "wg2", 25, "09:30", "12:30", room="K", track="WG2")
    working = [
        replace(opening, title="Opening and welcome"),
        replace(wg1, room="Room C", description="Now in C",
                documents=(Document("C-2", "https://example.org/c2"),)),
        moved,
        make_session(meeting, "wg3", 25, "14:30", "17:30", room="K", track="WG3"),
        # the closing plenary is dropped from the working copy
    ]
    v2 = publish(meeting.id, v1, working, [replace(deadline, due=date(2025, 10, 12))], now=NOW2, comment="moves")
    kinds = {(c.kind, c.subject) for c in v2.changes}
    assert kinds == {
        (ChangeKind.RENAMED, "open"),
        (ChangeKind.MOVED_ROOM, "wg1"),
        (ChangeKind.REDESCRIBED, "wg1"),
        (ChangeKind.DOCUMENT_ADDED, "wg1"),
        (ChangeKind.DOCUMENT_WITHDRAWN, "wg1"),
        (ChangeKind.MOVED_TIME, "wg2"),
        (ChangeKind.ADDED, "wg3"),
        (ChangeKind.CANCELLED, "close"),
        (ChangeKind.DEADLINE_MOVED, "reg"),
    }
    by = {(c.kind, c.subject): c for c in v2.changes}
    assert by[(ChangeKind.RENAMED, "open")].old == "Session open"
    assert by[(ChangeKind.RENAMED, "open")].new == "Opening and welcome"
    assert by[(ChangeKind.MOVED_ROOM, "wg1")].old == "Popov" and by[(ChangeKind.MOVED_ROOM, "wg1")].new == "Room C"
    assert by[(ChangeKind.MOVED_TIME, "wg2")].old == TimeSpan(wg2.start, wg2.end)
    assert by[(ChangeKind.MOVED_TIME, "wg2")].new == TimeSpan(moved.start, moved.end)
    assert by[(ChangeKind.DOCUMENT_WITHDRAWN, "wg1")].old == Document("C-1", "https://example.org/c1")
    assert by[(ChangeKind.DEADLINE_MOVED, "reg")].new == date(2025, 10, 12)

    # the dropped session stays, cancelled, so calendars show the cancellation
    closing_v2 = v2.session("close")
    assert closing_v2 is not None and closing_v2.session.status is SessionStatus.CANCELLED
    # SEQUENCE grows for scheduling changes only; LAST-MODIFIED for any change
    seq = {p.session.id: p.sequence for p in v2.sessions}
    assert seq == {"open": 0, "wg1": 1, "wg2": 1, "wg3": 0, "close": 1}
    modified = {p.session.id: p.last_modified for p in v2.sessions}
    assert modified["open"] == NOW2 and modified["wg3"] == NOW2

    # subscribers of a track get only its changes (and deadline changes)
    wg2_only = v2.changes.for_tracks({"WG2"})
    assert {(c.kind, c.subject) for c in wg2_only} == {
        (ChangeKind.MOVED_TIME, "wg2"),
        (ChangeKind.DEADLINE_MOVED, "reg"),
    }


def test_unchanged_sessions_keep_sequence_and_modified_time(meeting: Meeting, v1_sessions: list) -> None:
    v1 = publish(meeting.id, None, v1_sessions, [], now=NOW1)
    v2 = publish(meeting.id, v1, [replace(v1_sessions[0], room="B"), *v1_sessions[1:]], [], now=NOW2)
    v3 = publish(meeting.id, v2, [replace(v1_sessions[0], room="B", status=SessionStatus.CANCELLED),
                                  *v1_sessions[1:]], [], now=NOW3)
    first = [v.session("open") for v in (v1, v2, v3)]
    assert [p.sequence for p in first if p] == [0, 1, 2]
    untouched = [v.session("wg1") for v in (v1, v2, v3)]
    assert {p.last_modified for p in untouched if p} == {NOW1}
    assert [c.kind for c in v3.changes] == [ChangeKind.CANCELLED]


def test_reinstating_a_cancelled_session(meeting: Meeting, v1_sessions: list) -> None:
    v1 = publish(meeting.id, None, v1_sessions, [], now=NOW1)
    v2 = publish(meeting.id, v1, v1_sessions[1:], [], now=NOW2)
    v3 = publish(meeting.id, v2, v1_sessions, [], now=NOW3)
    assert [(c.kind, c.subject) for c in v3.changes] == [(ChangeKind.REINSTATED, "open")]
    assert v3.session("open").sequence == 2  # type: ignore[union-attr]


def test_publishing_nothing_new_is_refused(meeting: Meeting, v1_sessions: list) -> None:
    v1 = publish(meeting.id, None, v1_sessions, [], now=NOW1)
    with pytest.raises(NothingToPublish, match="equals version 1"):
        publish(meeting.id, v1, v1_sessions, [], now=NOW2)


def test_versions_survive_a_json_round_trip(meeting: Meeting, v1_sessions: list) -> None:
    deadlines = [Deadline(DeadlineId("reg"), DeadlineKind.REGISTRATION, "Registration", date(2025, 10, 10)),
                 Deadline(DeadlineId("slot"), DeadlineKind.SPEAKING_SLOT, "Speaking slots", NOW1)]
    v1 = publish(meeting.id, None, v1_sessions, deadlines, now=NOW1)
    v2 = publish(meeting.id, v1, [replace(v1_sessions[1], chairs=("Mr D. Watrin",))], deadlines[:1], now=NOW2)
    assert version_from_dict(version_to_dict(v2)) == v2
