"""`run.py import-mail MEETING PATH`: a list's archive (mbox file or Maildir directory) into the
meeting's archive, streaming.

The standard library's `mailbox.mbox` first builds a table of contents of the whole file and
reads messages through it; this reader splits the file as it goes (a "From " line after a blank
line, or at the start, begins a message; ">From " quoting of mboxrd and mboxo is undone), so memory
holds one batch of messages, whatever the file's size. Maildir directories go through
`mailbox.Maildir`, which reads one file per message anyway.

Messages are stored in batches, one transaction each; imported letters are archived (or
quarantined) but not relayed: an old archive must not flood the chats. Deadlines found in them are
proposed as for any letter (and accepted automatically above the configured confidence, when they
have not passed).
"""

from __future__ import annotations

import asyncio
import mailbox
import re
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from floorbridge.core.announcements import MailStatus
from floorbridge.core.errors import InvalidInput, Problem
from floorbridge.core.ids import MeetingId

from .intake import MailIntake

BATCH = 200
_QUOTED_FROM = re.compile(rb"^>+From ")


@dataclass
class ImportReport:
    messages: int = 0
    archived: int = 0
    quarantined: int = 0
    copies: int = 0  # identical to a message already stored
    reasons: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        out = [f"{self.messages} message(s): {self.archived} archived, {self.quarantined} quarantined, "
               f"{self.copies} already received"]
        out += [f"  quarantined {n}×: {reason}" for reason, n in self.reasons.most_common(10)]
        return out


def _unquote(line: bytes) -> bytes:
    return line[1:] if _QUOTED_FROM.match(line) else line


def mbox_messages(path: Path) -> Iterator[bytes]:
    """The raw messages of an mbox file, one at a time, without its "From " separator lines."""
    with path.open("rb") as f:
        current: list[bytes] = []
        started = False
        previous_blank = True
        for line in f:
            if line.startswith(b"From ") and previous_blank:
                if started and current:
                    yield _finish(current)
                current = []
                started = True
                previous_blank = False
                continue
            if not started:
                if line.strip():
                    raise InvalidInput([Problem(str(path), "is not an mbox file: it does not start with a "
                                                           "'From ' line")], source=str(path))
                continue
            current.append(_unquote(line))
            previous_blank = line in (b"\n", b"\r\n")
        if started and current:
            yield _finish(current)


def _finish(lines: list[bytes]) -> bytes:
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]  # the blank line before the next "From "
    return b"".join(lines)


def maildir_messages(path: Path) -> Iterator[bytes]:
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.iterkeys()):
        yield box.get_bytes(key)


def messages_in(path: Path) -> Iterator[bytes]:
    if path.is_dir():
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise InvalidInput([Problem(str(path), "is a directory but not a Maildir (no cur/ and new/)")],
                               source=str(path))
        return maildir_messages(path)
    if not path.exists():
        raise InvalidInput([Problem(str(path), "no such file or directory")], source=str(path))
    return mbox_messages(path)


async def import_mail(intake: MailIntake, meeting_id: MeetingId, path: Path, *, batch: int = BATCH) -> ImportReport:
    if await intake.meeting(meeting_id) is None:
        raise InvalidInput([Problem("meeting", f"there is no meeting {meeting_id!r}")], source=str(path))
    report = ImportReport()
    pending: list[bytes] = []
    # One batch is written (in SQLite's or asyncpg's time) while the next is read and judged.
    writing: asyncio.Task[None] | None = None
    for raw in messages_in(path):
        pending.append(raw)
        if len(pending) >= batch:
            writing = await _next(writing, _store(intake, meeting_id, pending, report))
            pending = []
    if pending:
        writing = await _next(writing, _store(intake, meeting_id, pending, report))
    if writing is not None:
        await writing
    return report


async def _next(previous: asyncio.Task[None] | None, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Start `work` once `previous` is done (its receipts are counted in order); at most two
    batches are in memory."""
    task = asyncio.create_task(work)
    if previous is not None:
        await previous
    await asyncio.sleep(0)  # let the new batch start judging before the reader goes on
    return task


async def _store(intake: MailIntake, meeting_id: MeetingId, raws: list[bytes], report: ImportReport) -> None:
    receipts = await intake.receive_batch(raws, channel="import", meeting_id=meeting_id, relay=False, notify=False)
    for r in receipts:
        report.messages += 1
        if not r.new:
            report.copies += 1
        elif r.status is MailStatus.QUARANTINED:
            report.quarantined += 1
            report.reasons[r.reason.split(":", 1)[0]] += 1
        else:
            report.archived += 1
