"""What several test packages need alike: a clock moved by hand, and a store holding the WSIS demo
meeting with its agenda imported and published."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from floorbridge.adapters.sources import load_agenda
from floorbridge.adapters.storage import SqlAgendaStore
from floorbridge.calendar.feeds import render_feeds
from floorbridge.core import usecases
from floorbridge.core.ids import MeetingId

ROOT = Path(__file__).resolve().parents[1]
WSIS = MeetingId("wsis-2025")
WSIS_AGENDA = ROOT / "config/meetings/wsis-2025.yaml"


class Clock:
    """A clock the test sets and moves by hand (the speaking timer, deadlines, expiries)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0, **delta: float) -> None:
        self.now += timedelta(seconds=seconds, **delta)


async def publish_wsis(store: SqlAgendaStore, *, now: datetime, base_url: str = "") -> None:
    """Import the WSIS demo agenda into `store` and publish it as its first version."""
    imported = load_agenda(WSIS_AGENDA, None)
    await usecases.import_agenda(store, WSIS, defined_meeting=imported.meeting, sessions=imported.sessions,
                                 deadlines=imported.deadlines, source=str(WSIS_AGENDA))
    await usecases.publish_agenda(store, WSIS, lambda m, v: render_feeds(m, v, base_url=base_url), now=now)
