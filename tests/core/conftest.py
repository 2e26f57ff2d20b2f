from __future__ import annotations

from datetime import date, datetime, time

import pytest

from floorbridge.core.agenda import Session
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.meeting import Meeting


@pytest.fixture
def meeting() -> Meeting:
    return Meeting(
        id=MeetingId("fg-test"),
        title="Focus Group test meeting",
        organiser="ITU",
        timezone="Europe/Zurich",
        start_date=date(2025, 10, 24),
        end_date=date(2025, 10, 27),
    )


def make_session(meeting: Meeting, sid: str, day: int, start: str, end: str, **kw: object) -> Session:
    d = date(2025, 10, day)
    h1, m1 = map(int, start.split(":"))
    h2, m2 = map(int, end.split(":"))
    return Session(
        id=SessionId(sid),
        title=str(kw.pop("title", f"Session {sid}")),
        start=meeting.localize(d, time(h1, m1)),
        end=meeting.localize(d, time(h2, m2)),
        **kw,  # type: ignore[arg-type]
    )


NOW1 = datetime.fromisoformat("2025-09-01T10:00:00+00:00")
NOW2 = datetime.fromisoformat("2025-09-02T10:00:00+00:00")
NOW3 = datetime.fromisoformat("2025-09-03T10:00:00+00:00")
