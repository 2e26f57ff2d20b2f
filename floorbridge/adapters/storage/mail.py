"""SqlMailStore: the announcements archive and the quarantine, on SQLite or PostgreSQL.

A message is stored with the chat messages that relay it in one transaction, so a crash never
leaves an announcement relayed but not archived, or archived and silently not relayed. Batches
(an mbox import) go through one transaction per batch.

Duplicates: an archived message's `dedup_key` ("meeting:message-id") is unique in the table. An
identical copy of a stored message (same bytes) only counts as one more copy; a different message
with an archived Message-ID goes to the quarantine with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from floorbridge.core.announcements import DeadlineState, MailDeadline, MailStatus, ParsedMail, RelayState, StoredMail
from floorbridge.core.codec import (
    mail_deadline_from_dict,
    mail_deadline_to_dict,
    parsed_mail_from_dict,
    parsed_mail_to_dict,
)
from floorbridge.core.errors import ConcurrentChange, NotFound
from floorbridge.core.ids import MeetingId
from floorbridge.core.outbox import OutgoingMessage

from .engine import reading, run_write
from .outbox import insert_outbox_rows
from .statements import utc_now
from .tables import mail_messages

_LIST_COLUMNS = [c for c in mail_messages.c if c.name != "raw"]


@dataclass(frozen=True)
class NewMail:
    """A received message, judged: archived when `status` is not quarantined."""

    meeting_id: MeetingId | None
    channel: str
    raw: bytes
    sha256: str
    status: MailStatus
    reason: str = ""
    parsed: ParsedMail | None = None
    dkim: str = ""
    relay: RelayState = RelayState.NONE
    deadlines: tuple[MailDeadline, ...] = ()
    decided_by: str = ""
    # The chat messages for the stored row (its id, final status and reason: a duplicate
    # Message-ID turns an accepted message into a quarantined one), written in the same
    # transaction; not called for an identical copy.
    messages: Callable[[int, MailStatus, str], Sequence[OutgoingMessage]] | None = None


@dataclass(frozen=True)
class Added:
    id: int
    status: MailStatus
    reason: str
    new: bool  # False: an identical copy of message `id`, counted and not stored again


def dedup_key(meeting_id: MeetingId | None, message_id: str) -> str | None:
    if meeting_id is None or not message_id:
        return None
    key = f"{meeting_id}:{message_id}"
    return key if len(key) <= 255 else None


class SqlMailStore:
    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def add(self, mail: NewMail) -> Added:
        return (await self.add_batch([mail]))[0]

    async def add_batch(self, mails: Sequence[NewMail]) -> list[Added]:
        """Store `mails` in one transaction, in order; see the module's note on duplicates."""
        if not mails:
            return []
        return await run_write(self._engine, _add_all, list(mails), self._clock())

    async def get(self, mail_id: int) -> StoredMail:
        async with reading(self._engine) as conn:
            row = (await conn.execute(select(*_LIST_COLUMNS).where(mail_messages.c.id == mail_id))).first()
        if row is None:
            raise NotFound(f"no received message #{mail_id}")
        return _stored(row)

    async def raw(self, mail_id: int) -> bytes:
        async with reading(self._engine) as conn:
            value = (await conn.execute(select(mail_messages.c.raw).where(mail_messages.c.id == mail_id))).scalar()
        if value is None:
            raise NotFound(f"no received message #{mail_id}")
        return bytes(value)

    async def listing(self, meeting_id: MeetingId, *, archived: bool, limit: int = 50,
                      before: int | None = None) -> list[StoredMail]:
        """The meeting's archive (accepted and released) or quarantine, newest first."""
        statuses = [MailStatus.ACCEPTED.value, MailStatus.RELEASED.value] if archived else [
            MailStatus.QUARANTINED.value]
        query = (select(*_LIST_COLUMNS)
                 .where(mail_messages.c.meeting_id == meeting_id, mail_messages.c.status.in_(statuses))
                 .order_by(mail_messages.c.id.desc()).limit(limit))
        if before is not None:
            query = query.where(mail_messages.c.id < before)
        async with reading(self._engine) as conn:
            return [_stored(r) for r in (await conn.execute(query)).all()]

    async def waiting(self, meeting_id: MeetingId, today: date) -> list[StoredMail]:
        """What moderators have to look at: the quarantine, relays to approve, deadlines to confirm
        that have not passed by `today`."""
        c = mail_messages.c
        query = (select(*_LIST_COLUMNS).where(c.meeting_id == meeting_id, c.review_until >= today).order_by(c.id))
        async with reading(self._engine) as conn:
            return [_stored(r) for r in (await conn.execute(query)).all()]

    async def decide(self, before: StoredMail, after: StoredMail, *, by: str,
                     messages: Sequence[OutgoingMessage] = ()) -> StoredMail:
        """Replace `before` with `after` (status, reason, relay, deadlines, parsed) and write
        `messages`, if nobody changed the message since `before` was read (ConcurrentChange)."""
        return await run_write(self._engine, _decide, before, after, by, list(messages), self._clock())

    async def with_accepted_deadlines(self, meeting_id: MeetingId) -> list[StoredMail]:
        """The meeting's archived messages that have accepted deadlines."""
        c = mail_messages.c
        query = select(*_LIST_COLUMNS).where(c.meeting_id == meeting_id, c.accepted_deadlines).order_by(c.id)
        async with reading(self._engine) as conn:
            return [_stored(r) for r in (await conn.execute(query)).all()]

    async def count(self) -> int:
        async with reading(self._engine) as conn:
            return int((await conn.execute(select(func.count()).select_from(mail_messages))).scalar() or 0)


def _add_all(conn: Connection, mails: list[NewMail], now: datetime) -> list[Added]:
    """The batch in a fixed number of statements: one look-up of its checksums, one of its
    Message-IDs, one multi-row insert (ids back in order), one update of copy counts."""
    c = mail_messages.c
    meeting_ids = {m.meeting_id for m in mails}
    stored_copies: dict[tuple[MeetingId | None, str], Any] = {}
    for start in range(0, len(mails), _CHUNK):
        chunk = mails[start : start + _CHUNK]
        for row in conn.execute(select(c.id, c.status, c.reason, c.sha256, c.meeting_id).where(
                c.sha256.in_({m.sha256 for m in chunk}))):
            if row.meeting_id in meeting_ids:
                stored_copies.setdefault((row.meeting_id, row.sha256), row)
    keys = {k for k in (_key_of(m) for m in mails) if k}
    taken: dict[str, int] = {}
    key_list = sorted(keys)
    for start in range(0, len(key_list), _CHUNK):
        query = select(c.id, c.dedup_key).where(c.dedup_key.in_(key_list[start : start + _CHUNK]))
        taken.update({row.dedup_key: row.id for row in conn.execute(query)})

    results: list[Added | int] = []  # an Added, or the index in `rows` of the new row it copies
    rows: list[dict[str, Any]] = []
    new_mails: list[tuple[NewMail, MailStatus, str]] = []
    in_batch: dict[tuple[MeetingId | None, str], int] = {}
    copies_of_stored: dict[int, int] = {}
    keys_in_batch: dict[str, int] = {}
    for mail in mails:
        same = stored_copies.get((mail.meeting_id, mail.sha256))
        if same is not None:
            copies_of_stored[same.id] = copies_of_stored.get(same.id, 0) + 1
            results.append(Added(same.id, MailStatus(same.status), same.reason, new=False))
            continue
        earlier = in_batch.get((mail.meeting_id, mail.sha256))
        if earlier is not None:
            rows[earlier]["copies"] += 1
            results.append(earlier)
            continue
        status, reason, relay = mail.status, mail.reason, mail.relay
        key = _key_of(mail)
        if key is not None and (key in taken or key in keys_in_batch):
            first = (f"message #{taken[key]} in the archive" if key in taken
                     else "an earlier message received with this one")
            status, key, relay = MailStatus.QUARANTINED, None, RelayState.NONE
            reason = (f"duplicate: {first} has the same Message-ID "
                      f"<{mail.parsed.message_id if mail.parsed else ''}> but different content")
        if key is not None:
            keys_in_batch[key] = len(rows)
        in_batch[(mail.meeting_id, mail.sha256)] = len(rows)
        results.append(len(rows))
        rows.append(_row(mail, status, reason, relay, key, now))
        new_mails.append((mail, status, reason))

    ids: list[int] = []
    if rows:
        inserted = conn.execute(mail_messages.insert().returning(c.id, sort_by_parameter_order=True), rows)
        ids = [r.id for r in inserted]
    if copies_of_stored:
        conn.execute(update(mail_messages).where(c.id == bindparam("row_id"))
                     .values(copies=c.copies + bindparam("more")),
                     [{"row_id": i, "more": n} for i, n in copies_of_stored.items()])
    messages: list[OutgoingMessage] = []
    for row_id, (mail, status, reason) in zip(ids, new_mails, strict=True):
        if mail.messages is not None:
            messages.extend(mail.messages(row_id, status, reason))
    if messages:
        insert_outbox_rows(conn, messages, now)
    out: list[Added] = []
    seen: set[int] = set()
    for r in results:
        if isinstance(r, Added):
            out.append(r)
            continue
        _mail, status, reason = new_mails[r]
        out.append(Added(ids[r], status, reason, new=ids[r] not in seen))
        seen.add(ids[r])
    return out


_CHUNK = 400  # values per IN (...): under SQLite's bound-parameter limit


def _key_of(mail: NewMail) -> str | None:
    if mail.status is MailStatus.QUARANTINED or mail.parsed is None:
        return None
    return dedup_key(mail.meeting_id, mail.parsed.message_id)


def _row(mail: NewMail, status: MailStatus, reason: str, relay: RelayState, key: str | None,
         now: datetime) -> dict[str, Any]:
    parsed = mail.parsed
    return {
        "meeting_id": mail.meeting_id,
        "message_id": parsed.message_id if parsed is not None else "",
        "dedup_key": key,
        "status": status.value,
        "reason": reason,
        "channel": mail.channel,
        "received_at": now,
        "size": len(mail.raw),
        "sha256": mail.sha256,
        "raw": mail.raw,
        "parsed": parsed_mail_to_dict(parsed) if parsed is not None else None,
        "subject": parsed.subject if parsed is not None else "",
        "sender": parsed.sender if parsed is not None else "",
        "list_id": parsed.list_id if parsed is not None else "",
        "thread_root": parsed.thread_root if parsed is not None else "",
        "dkim": mail.dkim,
        "relay": relay.value,
        "deadlines": [mail_deadline_to_dict(d) for d in mail.deadlines] if status is not MailStatus.QUARANTINED
        else [],
        "copies": 1,
        "decided_by": mail.decided_by,
        "decided_at": now if mail.decided_by else None,
        **_review_columns(status, relay, mail.deadlines if status is not MailStatus.QUARANTINED else ()),
    }


def _decide(conn: Connection, before: StoredMail, after: StoredMail, by: str,
            messages: list[OutgoingMessage], now: datetime) -> StoredMail:
    c = mail_messages.c
    row = conn.execute(select(c.status, c.relay, c.deadlines, c.decided_at).where(c.id == before.id)).first()
    if row is None:
        raise NotFound(f"no received message #{before.id}")
    if (row.status != before.status.value or row.relay != before.relay.value
            or [mail_deadline_from_dict(d) for d in row.deadlines] != list(before.deadlines)):
        raise ConcurrentChange(f"message #{before.id} was changed by someone else meanwhile; look at it again")
    values: dict[str, Any] = {
        "status": after.status.value,
        "reason": after.reason,
        "relay": after.relay.value,
        "deadlines": [mail_deadline_to_dict(d) for d in after.deadlines],
        "decided_by": by,
        "decided_at": now,
        **_review_columns(after.status, after.relay, after.deadlines),
    }
    if after.parsed is not None and after.parsed != before.parsed:
        p = after.parsed
        values.update(parsed=parsed_mail_to_dict(p), subject=p.subject, sender=p.sender, list_id=p.list_id,
                      thread_root=p.thread_root, message_id=p.message_id)
    if after.status is not MailStatus.QUARANTINED and before.status is MailStatus.QUARANTINED:
        key = dedup_key(after.meeting_id, after.parsed.message_id if after.parsed else "")
        if key is not None:
            taken = conn.execute(select(c.id).where(c.dedup_key == key)).scalar()
            if taken is not None:
                raise ConcurrentChange(f"message #{taken} with the same Message-ID is already in the archive")
        values["dedup_key"] = key
    conn.execute(update(mail_messages).where(c.id == before.id).values(**values))
    if messages:
        insert_outbox_rows(conn, messages, now)
    return replace(after, decided_by=by)


_UNTIL_DONE = date.max


def _review_columns(status: MailStatus, relay: RelayState, deadlines: Sequence[MailDeadline]) -> dict[str, Any]:
    proposed = [d.found.due for d in deadlines if d.state is DeadlineState.PROPOSED]
    until = _UNTIL_DONE if status is MailStatus.QUARANTINED or relay is RelayState.WAITING else max(
        proposed, default=None)
    accepted = status is not MailStatus.QUARANTINED and any(d.state is DeadlineState.ACCEPTED for d in deadlines)
    return {"review_until": until, "accepted_deadlines": accepted}


def _stored(row: Any) -> StoredMail:
    return StoredMail(
        id=row.id,
        meeting_id=MeetingId(row.meeting_id) if row.meeting_id else None,
        status=MailStatus(row.status),
        reason=row.reason,
        received_at=row.received_at,
        channel=row.channel,
        parsed=parsed_mail_from_dict(row.parsed) if row.parsed is not None else None,
        size=row.size,
        message_id=row.message_id,
        subject=row.subject,
        sender=row.sender,
        dkim=row.dkim,
        relay=RelayState(row.relay),
        deadlines=tuple(mail_deadline_from_dict(d) for d in row.deadlines),
        copies=row.copies,
        decided_by=row.decided_by,
    )
