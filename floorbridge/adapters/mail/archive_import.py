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

import mailbox
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from floorbridge.core.announcements import MailStatus
from floorbridge.core.errors import InvalidInput, Problem
from floorbridge.core.ids import MeetingId

from .intake import MailIntake

BATCH = 200


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


_BLOCK = 1 << 20
_SEPARATOR = re.compile(rb"\n\r?\nFrom ")  # a "From " line after a blank line starts the next message
_FROM_LINE = 1024  # room for the "From " line above a message's own bytes
_OVERLAP = 16  # longer than a separator
_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)


def _message(data: bytes) -> bytes:
    """One message between separators: the "From " line dropped, ">From " unquoted (mboxrd and
    mboxo alike), the blank line that ends it in the file removed."""
    newline = data.find(b"\n")
    body = data[newline + 1 :] if newline >= 0 else b""
    return _QUOTED.sub(rb"\1", body) if b">" in body else body


def mbox_messages(path: Path, max_bytes: int | None = None) -> Iterator[bytes]:
    """The raw messages of an mbox file, one at a time, reading it in blocks. With `max_bytes`, a
    message longer than that is not held whole: only its start comes (enough to be refused as too
    large) while its end is looked for."""
    keep = max_bytes + _FROM_LINE if max_bytes is not None else None
    with path.open("rb") as f:
        buf = f.read(_BLOCK)
        if buf.lstrip()[:5] != b"From " and buf.strip():
            raise InvalidInput([Problem(str(path), "is not an mbox file: it does not start with a "
                                                   "'From ' line")], source=str(path))
        buf = buf.lstrip(b"\r\n")
        start = 0
        head: bytes | None = None  # the start of a message too long to hold, until its end is found
        while True:
            m = _SEPARATOR.search(buf, start + 1 if head is None else 0)
            if m is not None:
                yield _message(head if head is not None else buf[start : m.start() + 1])
                head = None
                start = m.end() - 5  # at the next "From "
                continue
            more = f.read(_BLOCK)
            if not more:
                break
            if keep is not None and head is None and len(buf) - start > keep:
                head = buf[start : start + keep]
            # `buf` was searched: what is kept of it is the current message (or, past the cap, only
            # its last bytes, for a separator that straddles the two blocks).
            buf = (buf[-_OVERLAP:] if head is not None else buf[start:]) + more
            start = 0
        rest = head if head is not None else buf[start:]
        if rest.strip():
            for blank in (b"\r\n", b"\n"):  # the blank line mbox writers put after the last message
                if rest.endswith(blank + blank) or rest.endswith(b"\n" + blank):
                    rest = rest[: -len(blank)]
                    break
            yield _message(rest)


def maildir_messages(path: Path) -> Iterator[bytes]:
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.iterkeys()):
        yield box.get_bytes(key)


def messages_in(path: Path, max_bytes: int | None = None) -> Iterator[bytes]:
    if path.is_dir():
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise InvalidInput([Problem(str(path), "is a directory but not a Maildir (no cur/ and new/)")],
                               source=str(path))
        return maildir_messages(path)
    if not path.exists():
        raise InvalidInput([Problem(str(path), "no such file or directory")], source=str(path))
    return mbox_messages(path, max_bytes)


async def import_mail(intake: MailIntake, meeting_id: MeetingId, path: Path, *, batch: int = BATCH) -> ImportReport:
    if await intake.meeting(meeting_id) is None:
        raise InvalidInput([Problem("meeting", f"there is no meeting {meeting_id!r}")], source=str(path))
    report = ImportReport()
    pending: list[bytes] = []
    for raw in messages_in(path, intake.max_bytes):
        pending.append(raw)
        if len(pending) >= batch:
            await _store(intake, meeting_id, pending, report)
            pending = []
    if pending:
        await _store(intake, meeting_id, pending, report)
    return report


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
