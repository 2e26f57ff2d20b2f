"""The sample meetings shipped in config/meetings/ must import cleanly on a fresh install."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest

from floorbridge.adapters.sources import load_agenda
from floorbridge.core.agenda import Session, SessionStatus
from floorbridge.core.deadline import DeadlineKind

from .conftest import REPO

MEETINGS = REPO / "config" / "meetings"


@pytest.mark.parametrize("name", ["wsis-2025", "fg-dlt-1"])
def test_demo_meeting_loads_without_problems_or_clashes(name: str) -> None:
    result = load_agenda(MEETINGS / f"{name}.yaml", None)
    assert result.meeting is not None and result.meeting.id == name
    assert result.warnings == ()
    assert result.sessions
    assert result.deadlines


def test_wsis_2025() -> None:
    result = load_agenda(MEETINGS / "wsis-2025.yaml", None)
    meeting = result.meeting
    assert meeting is not None
    assert (meeting.start_date, meeting.end_date, meeting.timezone) == (
        date(2025, 7, 7),
        date(2025, 7, 11),
        "Europe/Zurich",
    )
    assert meeting.venue == "Palexpo"
    assert set(meeting.languages) == {"ar", "zh", "en", "fr", "ru", "es"}
    assert "wsis-info@itu.int" in [c.email for c in meeting.practical.contacts]
    assert 20 <= len(result.sessions) <= 30
    assert any(s.status is SessionStatus.TENTATIVE for s in result.sessions)
    by_id: dict[str, Session] = {s.id: s for s in result.sessions}
    assert by_id["regulators-roundtable"].start == datetime(2025, 7, 8, 12, 0, tzinfo=UTC)  # Tuesday 14:00 CEST
    high_level_days = {meeting.local(s.start).date() for s in result.sessions if s.track == "High-Level Segment"}
    assert high_level_days == {date(2025, 7, 9), date(2025, 7, 10), date(2025, 7, 11)}
    assert {meeting.local(s.start).date() for s in result.sessions if s.track == "AI Governance Day"} == {
        date(2025, 7, 10)
    }
    assert result.deadlines is not None
    (slot,) = [d for d in result.deadlines if d.kind is DeadlineKind.SPEAKING_SLOT]
    assert slot.due == date(2025, 4, 30)


def test_fg_dlt_1() -> None:
    result = load_agenda(MEETINGS / "fg-dlt-1.yaml", None)
    meeting = result.meeting
    assert meeting is not None
    assert (meeting.start_date, meeting.end_date) == (date(2017, 10, 17), date(2017, 10, 19))
    assert (meeting.practical.wifi_ssid, meeting.practical.wifi_password) == ("ITUwifi", "itu@GVA1211")
    assert meeting.languages == ("en",)
    opening = next(s for s in result.sessions if s.id == "d1-opening")
    assert opening.start == datetime(2017, 10, 17, 7, 30, tzinfo=UTC)  # 09:30 in Geneva
    assert Counter(meeting.local(s.start).date() for s in result.sessions) == {
        date(2017, 10, 17): 5,
        date(2017, 10, 18): 4,
        date(2017, 10, 19): 5,
    }
    assert result.deadlines is not None
    assert {(d.kind, d.due) for d in result.deadlines} == {
        (DeadlineKind.VISA_SUPPORT, date(2017, 9, 17)),
        (DeadlineKind.REGISTRATION, date(2017, 10, 10)),
        (DeadlineKind.CONTRIBUTIONS, date(2017, 10, 10)),
    }
