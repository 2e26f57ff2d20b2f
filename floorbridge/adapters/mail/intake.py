"""MailIntake: every way mail comes in (SMTP, LMTP, IMAP, an mbox import, the signed HTTP endpoint)
ends here. A message is read, judged by its meeting's rules, its deadlines found, and stored with
its relay (or its moderators' notice) in one transaction; only then does the receiver acknowledge
it. What a rule refuses is stored too, in the quarantine, with the reason.

It is also the moderators' desk (core.ports.MailDesk): release from quarantine, approve or decline
a relay, accept, correct or reject a found deadline. Accepted deadlines become the meeting's
deadlines: added to its working copy and published, so the deadlines feed, its alarms and the chat
reminders follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from floorbridge.bots.announcements import as_deadline, relay_messages, waiting_notice
from floorbridge.core.announcements import (
    DeadlineState,
    DkimPolicy,
    DkimResult,
    FoundDeadline,
    MailDeadline,
    MailRules,
    MailStatus,
    ParsedMail,
    RelayMode,
    RelayState,
    StoredMail,
    judge,
)
from floorbridge.core.chats import ChatProfile, ChatRef, Subscription
from floorbridge.core.deadline import DeadlineKind
from floorbridge.core.deadline_finder import find_deadlines
from floorbridge.core.errors import ConcurrentChange, InvalidInput, NotFound, NothingToPublish, Problem
from floorbridge.core.ids import DeadlineId, MeetingId
from floorbridge.core.meeting import Meeting
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.ports import AgendaStore

from ..settings import Settings
from ..settings.model import MeetingMailSettings
from ..storage.chats import SqlChatStore
from ..storage.mail import NewMail, SqlMailStore
from .dkim_check import DnsFunc, verify_dkim
from .parse import MalformedMail, parse_mail

log = logging.getLogger("floorbridge.mail")

CHANNELS = ("smtp", "lmtp", "imap", "import", "http")
Publisher = Callable[[MeetingId, str], Awaitable[object]]


@dataclass(frozen=True)
class Receipt:
    id: int
    status: MailStatus
    reason: str
    new: bool  # False: an identical copy of an earlier message, counted, not stored again


def rules_from(settings: MeetingMailSettings) -> MailRules:
    return MailRules(
        lists={entry.list_id: RelayMode(entry.mode) for entry in settings.lists},
        default_mode=RelayMode(settings.mode),
        senders=settings.senders,
        dkim=DkimPolicy(settings.dkim),
        auto_accept=settings.auto_accept_confidence,
    )


_NOT_CHECKED = DkimResult("off")


@dataclass
class _Judged:
    """A message read and judged, not yet stored."""

    raw: bytes
    sha256: str
    status: MailStatus
    reason: str = ""
    parsed: ParsedMail | None = None
    dkim: DkimResult = _NOT_CHECKED
    mode: RelayMode = RelayMode.MODERATED
    deadlines: tuple[MailDeadline, ...] = ()


class MailIntake:
    def __init__(
        self,
        store: SqlMailStore,
        chats: SqlChatStore,
        agenda: AgendaStore,
        settings: Settings,
        *,
        publish: Publisher,
        moderator_chats: Mapping[MeetingId, Sequence[ChatRef]],
        on_enqueued: Callable[[], None] = lambda: None,
        dnsfunc: DnsFunc | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self._chats = chats
        self._agenda = agenda
        self._settings = settings
        self._publish = publish
        self._moderator_chats = moderator_chats
        self._on_enqueued = on_enqueued
        self._dnsfunc = dnsfunc
        self._clock = clock
        self.max_bytes = settings.mail.max_bytes
        self._publishing = asyncio.Lock()
        self.received: Counter[tuple[str, str]] = Counter()  # (channel, status) of new messages, for /metrics

    # ---------------------------------------------------------------- receiving

    def rules(self, meeting_id: MeetingId) -> MailRules:
        return rules_from(self._settings.mail.rules(meeting_id))

    async def meeting(self, meeting_id: str) -> Meeting | None:
        try:
            return await self._agenda.get_meeting(MeetingId(meeting_id))
        except NotFound:
            return None

    async def receive(self, raw: bytes, *, channel: str, meeting_id: MeetingId) -> Receipt:
        """Store one message (archive or quarantine); returns once it is durably stored."""
        return (await self.receive_batch([raw], channel=channel, meeting_id=meeting_id))[0]

    async def receive_batch(self, raws: Sequence[bytes], *, channel: str, meeting_id: MeetingId,
                            relay: bool = True, notify: bool = True) -> list[Receipt]:
        """Store `raws` in one transaction. `relay=False` (an archive import) archives without
        relaying; `notify=False` sends moderators no notice per message."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown mail channel {channel!r}")
        meeting = await self._agenda.get_meeting(meeting_id)
        rules = self.rules(meeting_id)
        today = self._clock().astimezone(meeting.tz).date()
        judged = [await self._judge(raw, rules, today) for raw in raws]
        subscribers = await self._chats.subscribers(meeting_id) if relay else []
        staff_chats = self._moderator_chats.get(meeting_id, ()) if notify else ()
        mails = [self._new_mail(meeting, j, channel, subscribers, staff_chats, relay) for j in judged]
        added = await self.store.add_batch(mails)
        self._on_enqueued()
        receipts = [Receipt(a.id, a.status, a.reason, a.new) for a in added]
        accepted = [(a.id, j) for a, j in zip(added, judged, strict=True)
                    if a.new and a.status is not MailStatus.QUARANTINED
                    and any(d.state is DeadlineState.ACCEPTED for d in j.deadlines)]
        if accepted:
            await self._publish_deadlines(meeting, [(i, j.parsed, j.deadlines) for i, j in accepted if j.parsed])
        for r in receipts:
            self.received[(channel, r.status.value if r.new else "copy")] += 1
            if r.new:
                log.info("mail received", extra={"meeting": meeting_id, "mail": r.id, "channel": channel,
                                                 "status": r.status.value, "reason": r.reason})
        return receipts

    async def _judge(self, raw: bytes, rules: MailRules, today: date) -> _Judged:
        sha = hashlib.sha256(raw).hexdigest()
        if len(raw) > self.max_bytes:
            return _Judged(raw, sha, MailStatus.QUARANTINED,
                           f"too large: over the cap of {self.max_bytes} bytes ({len(raw)} bytes read)")
        try:
            parsed = parse_mail(raw, max_bytes=self.max_bytes)
        except MalformedMail as exc:
            return _Judged(raw, sha, MailStatus.QUARANTINED, f"unreadable: {exc.reason}")
        dkim = (_NOT_CHECKED if rules.dkim is DkimPolicy.OFF
                else await verify_dkim(raw, parsed.sender_address, self._dnsfunc))
        verdict = judge(parsed, rules, dkim)
        if not verdict.accepted:
            return _Judged(raw, sha, MailStatus.QUARANTINED, verdict.reason, parsed, dkim)
        return _Judged(raw, sha, MailStatus.ACCEPTED, "", parsed, dkim, verdict.mode,
                       self._deadlines(parsed, sha, rules, today))

    def _deadlines(self, parsed: ParsedMail, sha: str, rules: MailRules, today: date) -> tuple[MailDeadline, ...]:
        sent = parsed.date.date() if parsed.date is not None else today
        found = find_deadlines(parsed.text, subject=parsed.subject, sent=sent)
        out = []
        for n, f in enumerate(found, start=1):
            auto = rules.auto_accept is not None and f.confidence >= rules.auto_accept and f.due >= today
            out.append(MailDeadline(f"mail-{sha[:12]}-{n}", f, DeadlineState.ACCEPTED if auto else
                                    DeadlineState.PROPOSED, "auto" if auto else ""))
        return tuple(out)

    def _new_mail(self, meeting: Meeting, j: _Judged, channel: str,
                  subscribers: Sequence[tuple[Subscription, ChatProfile]], staff_chats: Sequence[ChatRef],
                  relay: bool) -> NewMail:
        if j.status is MailStatus.QUARANTINED or not relay:
            state = RelayState.NONE
        else:
            state = RelayState.RELAYED if j.mode is RelayMode.AUTOMATIC else RelayState.WAITING

        def messages(mail_id: int, status: MailStatus, reason: str) -> list[OutgoingMessage]:
            stored = self._as_stored(meeting.id, mail_id, channel, j, status, reason,
                                     state if status is not MailStatus.QUARANTINED else RelayState.NONE)
            out: list[OutgoingMessage] = []
            if stored.relay is RelayState.RELAYED:
                out += relay_messages(meeting, stored, self.archive_url(meeting.id, mail_id), subscribers)
            out += waiting_notice(meeting, stored, staff_chats)
            return out

        return NewMail(meeting.id, channel, j.raw, j.sha256, j.status, j.reason, j.parsed, j.dkim.shown, state,
                       j.deadlines, "auto" if any(d.decided_by == "auto" for d in j.deadlines) else "",
                       messages)

    def _as_stored(self, meeting_id: MeetingId, mail_id: int, channel: str, j: _Judged, status: MailStatus,
                   reason: str, relay: RelayState) -> StoredMail:
        p = j.parsed
        return StoredMail(mail_id, meeting_id, status, reason, self._clock(), channel, p, len(j.raw),
                          message_id=p.message_id if p else "", subject=p.subject if p else "",
                          sender=p.sender if p else "", dkim=j.dkim.shown, relay=relay,
                          deadlines=j.deadlines if status is not MailStatus.QUARANTINED else ())

    # ---------------------------------------------------------------- the moderators' desk

    def archive_url(self, meeting_id: MeetingId, mail_id: int) -> str:
        return f"{self._settings.server.public_url}/meetings/{meeting_id}/announcements/{mail_id}"

    async def get(self, meeting_id: MeetingId, mail_id: int) -> StoredMail:
        mail = await self.store.get(mail_id)
        if mail.meeting_id != meeting_id:
            raise NotFound(f"{meeting_id} has no received message #{mail_id}")
        return mail

    async def waiting(self, meeting_id: MeetingId) -> list[StoredMail]:
        meeting = await self._agenda.get_meeting(meeting_id)
        return await self.store.waiting(meeting_id, self._clock().astimezone(meeting.tz).date())

    async def release(self, meeting_id: MeetingId, mail_id: int, by: str) -> StoredMail:
        """Archive a quarantined message despite the rule that refused it; its deadlines are found
        and it is relayed as its list's mode says (a moderator releasing it has looked at it)."""
        mail = await self.get(meeting_id, mail_id)
        if mail.status is not MailStatus.QUARANTINED:
            raise InvalidInput([Problem(f"#{mail_id}", "is not in the quarantine")], source="mail")
        meeting = await self._agenda.get_meeting(meeting_id)
        raw = await self.store.raw(mail_id)
        try:
            parsed = parse_mail(raw, max_bytes=max(self.max_bytes, len(raw)))
        except MalformedMail as exc:
            raise InvalidInput([Problem(f"#{mail_id}", f"cannot be read ({exc.reason}); it stays in the "
                                                       "quarantine")], source="mail") from None
        rules = self.rules(meeting_id)
        today = self._clock().astimezone(meeting.tz).date()
        deadlines = self._deadlines(parsed, hashlib.sha256(raw).hexdigest(), rules, today)
        # A list the allowlist refused is relayed as the meeting's default: a moderator approves it.
        mode = rules.mode_for(parsed.list_id) or rules.default_mode
        relay = RelayState.RELAYED if mode is RelayMode.AUTOMATIC else RelayState.WAITING
        after = replace(mail, status=MailStatus.RELEASED, reason=f"released from quarantine ({mail.reason})",
                        parsed=parsed, subject=parsed.subject, sender=parsed.sender, relay=relay,
                        deadlines=deadlines)
        messages = await self._relay_if(meeting, after)
        done = await self.store.decide(mail, after, by=by, messages=messages)
        self._on_enqueued()
        await self._publish_accepted(meeting, done)
        return done

    async def relay(self, meeting_id: MeetingId, mail_id: int, by: str) -> StoredMail:
        mail = await self._awaiting_approval(meeting_id, mail_id)
        meeting = await self._agenda.get_meeting(meeting_id)
        after = replace(mail, relay=RelayState.RELAYED)
        done = await self.store.decide(mail, after, by=by, messages=await self._relay_if(meeting, after))
        self._on_enqueued()
        return done

    async def decline(self, meeting_id: MeetingId, mail_id: int, by: str) -> StoredMail:
        mail = await self._awaiting_approval(meeting_id, mail_id)
        return await self.store.decide(mail, replace(mail, relay=RelayState.DECLINED), by=by)

    async def _awaiting_approval(self, meeting_id: MeetingId, mail_id: int) -> StoredMail:
        mail = await self.get(meeting_id, mail_id)
        if mail.relay is not RelayState.WAITING:
            raise InvalidInput([Problem(f"#{mail_id}", f"does not wait for approval (it is {mail.relay.value})")],
                               source="mail")
        return mail

    async def decide_deadline(self, meeting_id: MeetingId, mail_id: int, deadline_id: str, *, accept: bool,
                              by: str, kind: DeadlineKind | None = None, due: date | None = None) -> StoredMail:
        mail = await self.get(meeting_id, mail_id)
        if mail.status is MailStatus.QUARANTINED:
            raise InvalidInput([Problem(f"#{mail_id}", "is in the quarantine: release it first")], source="mail")
        target = next((d for d in mail.deadlines if d.id == deadline_id), None)
        if target is None:
            raise NotFound(f"message #{mail_id} has no deadline {deadline_id}")
        found: FoundDeadline = target.found
        if kind is not None or due is not None:
            found = replace(found, kind=kind or found.kind, due=due or found.due, confidence=1.0)
        state = DeadlineState.ACCEPTED if accept else DeadlineState.REJECTED
        changed = replace(target, found=found, state=state, decided_by=by)
        after = replace(mail, deadlines=tuple(changed if d.id == deadline_id else d for d in mail.deadlines))
        done = await self.store.decide(mail, after, by=by)
        meeting = await self._agenda.get_meeting(meeting_id)
        if accept or target.state is DeadlineState.ACCEPTED:
            await self._publish_deadlines(meeting, [(mail_id, done.parsed, done.deadlines)] if done.parsed else [])
        return done

    async def reconcile(self) -> int:
        """Publish the accepted deadlines a crash left out of the meetings' published deadlines
        (stored with their message, the process died before the publish). Returns how many."""
        missing = 0
        for meeting in await self._agenda.list_meetings():
            latest = await self._agenda.latest_version(meeting.id)
            published = {d.id for d in latest.deadlines} if latest is not None else set()
            letters = []
            for mail in await self.store.with_accepted_deadlines(meeting.id):
                left_out = [d for d in mail.deadlines if d.state is DeadlineState.ACCEPTED and d.id not in published]
                if left_out:
                    missing += len(left_out)
                    letters.append((mail.id, mail.parsed, mail.deadlines))
            if letters:
                await self._publish_deadlines(meeting, letters)
        return missing

    async def _relay_if(self, meeting: Meeting, mail: StoredMail) -> list[OutgoingMessage]:
        if mail.relay is not RelayState.RELAYED:
            return []
        subscribers = await self._chats.subscribers(meeting.id)
        return relay_messages(meeting, mail, self.archive_url(meeting.id, mail.id), subscribers)

    async def _publish_accepted(self, meeting: Meeting, mail: StoredMail) -> None:
        if mail.parsed is not None and any(d.state is DeadlineState.ACCEPTED for d in mail.deadlines):
            await self._publish_deadlines(meeting, [(mail.id, mail.parsed, mail.deadlines)])

    async def _publish_deadlines(
        self, meeting: Meeting, letters: Sequence[tuple[int, ParsedMail | None, Sequence[MailDeadline]]]
    ) -> None:
        """Put the letters' accepted deadlines into the meeting's deadlines (and take out the ones
        now rejected), then publish the next version. One at a time in this process; a publish by
        another process in between makes this one read the working copy again and retry."""
        async with self._publishing:
            for _attempt in range(5):
                try:
                    await self._publish_once(meeting, letters)
                    return
                except ConcurrentChange:
                    continue
            log.warning("deadlines from mail: other publishes kept coming first; they are in the working copy",
                        extra={"meeting": meeting.id})

    async def _publish_once(
        self, meeting: Meeting, letters: Sequence[tuple[int, ParsedMail | None, Sequence[MailDeadline]]]
    ) -> None:
        working = await self._agenda.working_copy(meeting.id)
        by_id = {d.id: d for d in working.deadlines}
        subjects = []
        for mail_id, parsed, deadlines in letters:
            subject = parsed.subject if parsed is not None else f"#{mail_id}"
            subjects.append(subject)
            for md in deadlines:
                if md.state is DeadlineState.ACCEPTED:
                    by_id[DeadlineId(md.id)] = as_deadline(md, subject, self.archive_url(meeting.id, mail_id))
                else:
                    by_id.pop(DeadlineId(md.id), None)
        await self._agenda.replace_working_copy(meeting.id, working.sessions, list(by_id.values()))
        comment = "deadlines from the announcement " + "; ".join(f"“{s[:80]}”" for s in subjects[:3])
        if len(subjects) > 3:
            comment += f" and {len(subjects) - 3} more"
        with contextlib.suppress(NothingToPublish):
            await self._publish(meeting.id, comment)
