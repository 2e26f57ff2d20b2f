"""The project's error tree. Every error says what is wrong and where."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with some input: `where` is a file:line, a field path or an id."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what


class FloorbridgeError(Exception):
    """Base of every error the project raises on purpose."""


class NotFound(FloorbridgeError):
    """A meeting, session, version or feed that does not exist."""


class InvalidInput(FloorbridgeError):
    """Input that cannot be accepted; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem], source: str = "") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.source = source
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}{len(self.problems)} problem(s)\n{lines}")


class NothingToPublish(FloorbridgeError):
    """The working copy equals the last published version."""


class ConcurrentChange(FloorbridgeError):
    """Someone else changed the same thing first (optimistic concurrency)."""
