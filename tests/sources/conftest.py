from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from floorbridge.core.errors import InvalidInput
from floorbridge.core.ids import MeetingId
from floorbridge.core.meeting import Meeting

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]


def geneva(meeting_id: str, start: date, end: date) -> Meeting:
    return Meeting(
        id=MeetingId(meeting_id),
        title=f"Meeting {meeting_id}",
        organiser="ITU",
        timezone="Europe/Zurich",
        start_date=start,
        end_date=end,
        city="Geneva",
    )


@pytest.fixture
def wsis() -> Meeting:
    return geneva("wsis-2025", date(2025, 7, 7), date(2025, 7, 11))


@pytest.fixture
def fg_dlt() -> Meeting:
    return geneva("fg-dlt-1", date(2017, 10, 17), date(2017, 10, 19))


@pytest.fixture
def autumn() -> Meeting:
    """A two-week meeting across the end of summer time in Geneva (Sunday 26 October 2025)."""
    return geneva("itu-t-sg17", date(2025, 10, 20), date(2025, 10, 31))


Write = Callable[[str, str | bytes], Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


def lines_of(error: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    """The problems as a delegate reads them: 'file:line: what'."""
    return [str(p) for p in error.value.problems]


def one_problem_matching(error: pytest.ExceptionInfo[InvalidInput], *fragments: str) -> str:
    found = [line for line in lines_of(error) if all(f in line for f in fragments)]
    assert len(found) == 1, f"expected one problem with {fragments}, got:\n" + "\n".join(lines_of(error))
    return found[0]
