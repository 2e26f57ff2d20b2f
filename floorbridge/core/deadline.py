"""Deadlines a delegate must meet: registration, contributions, visa support, speaking slots."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from .ids import DeadlineId


class DeadlineKind(enum.StrEnum):
    REGISTRATION = "registration"
    CONTRIBUTIONS = "contributions"
    VISA_SUPPORT = "visa-support"
    SPEAKING_SLOT = "speaking-slot"
    OTHER = "other"


@dataclass(frozen=True)
class Deadline:
    """`due` is a local date (the whole day, in the meeting's timezone) or an aware date-time."""

    id: DeadlineId
    kind: DeadlineKind
    title: str
    due: date | datetime
    source: str = ""
    description: str = ""
    url: str = ""

    @property
    def all_day(self) -> bool:
        return not isinstance(self.due, datetime)
