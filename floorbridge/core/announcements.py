"""Announcements: the circular letters a secretariat sends to a mailing list, as floorbridge keeps
them once parsed, with the deadlines found in them."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from .deadline import DeadlineKind
from .ids import MeetingId


@dataclass(frozen=True)
class Attachment:
    """Listed by name and size; never relayed."""

    filename: str
    content_type: str
    size: int  # bytes, decoded


@dataclass(frozen=True)
class ParsedMail:
    """One message as the parser understood it (RFC 822 in, plain text out)."""

    message_id: str  # without the angle brackets; "" when the message has none
    subject: str
    sender: str  # as shown: "Name <address>" or the address
    sender_address: str  # the addr-spec, lower case
    list_id: str  # the List-Id's identifier (inside < >), lower case; "" when absent
    date: datetime | None  # aware, from the Date header
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    text: str = ""  # the body as plain text, list footer and quoted reply removed
    first_paragraph: str = ""
    attachments: tuple[Attachment, ...] = ()
    # What the parser had to repair (a lying charset, an undecodable part), for moderators.
    repairs: tuple[str, ...] = ()

    @property
    def thread_root(self) -> str:
        """The first message of the thread this one belongs to (itself when it starts one)."""
        return self.references[0] if self.references else (self.in_reply_to or self.message_id)


@dataclass(frozen=True)
class FoundDeadline:
    """A date found in an announcement and what it is for, with how sure the finder is (0–1)."""

    kind: DeadlineKind
    due: date
    confidence: float
    excerpt: str  # the sentence it was found in, shortened
    language: str = ""  # en, fr, es, ru


class MailStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # stored in the archive; relayed (automatic) or waiting (moderated)
    QUARANTINED = "quarantined"  # refused by a rule or unreadable; kept for moderators to review
    RELEASED = "released"  # taken out of quarantine by a moderator


class RelayMode(enum.StrEnum):
    MODERATED = "moderated"  # a moderator approves each announcement before it is relayed
    AUTOMATIC = "automatic"


class DkimPolicy(enum.StrEnum):
    OFF = "off"  # not checked
    RECORD = "record"  # checked and shown to moderators; list servers that rewrite mail break signatures
    REQUIRE = "require"  # a valid signature aligned with the From domain, or the quarantine


class RelayState(enum.StrEnum):
    NONE = "none"  # not relayed (quarantined)
    WAITING = "waiting"  # moderated: waits for a moderator
    RELAYED = "relayed"
    DECLINED = "declined"  # a moderator chose not to relay it (it stays in the archive)


class DeadlineState(enum.StrEnum):
    PROPOSED = "proposed"  # found, waits for a moderator
    ACCEPTED = "accepted"  # in the meeting's deadlines (feed, reminders)
    REJECTED = "rejected"


@dataclass(frozen=True)
class MailDeadline:
    """A found deadline with what became of it; `id` is the meeting deadline it is published as."""

    id: str
    found: FoundDeadline
    state: DeadlineState = DeadlineState.PROPOSED
    decided_by: str = ""  # "auto" when accepted above the configured confidence


@dataclass(frozen=True)
class DkimResult:
    status: str  # pass, fail, none (no signature), off (not checked), error (no key, DNS down)
    domain: str = ""  # the d= of the signature that decided it
    detail: str = ""

    @property
    def shown(self) -> str:
        return f"{self.status} ({self.domain})" if self.domain else self.status


@dataclass(frozen=True)
class MailRules:
    """A meeting's acceptance rules (from the configuration's mail.meetings section)."""

    lists: Mapping[str, RelayMode] = field(default_factory=dict)  # List-Id -> mode; empty: any list
    default_mode: RelayMode = RelayMode.MODERATED
    senders: tuple[str, ...] = ()  # addresses or "@domain"; empty: anybody
    dkim: DkimPolicy = DkimPolicy.RECORD
    auto_accept: float | None = None

    def mode_for(self, list_id: str) -> RelayMode | None:
        """How mail of `list_id` is relayed; None when the List-Id allowlist refuses it."""
        if not self.lists:
            return self.default_mode
        return self.lists.get(list_id)


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str = ""
    mode: RelayMode = RelayMode.MODERATED


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def aligned(signing_domain: str, from_address: str) -> bool:
    """DMARC's relaxed alignment: the signing domain is the From domain or one of its parents."""
    d, f = signing_domain.lower().rstrip("."), _domain_of(from_address)
    return bool(d) and (f == d or f.endswith("." + d))


def sender_allowed(address: str, senders: tuple[str, ...]) -> bool:
    if not senders:
        return True
    address = address.lower()
    domain = _domain_of(address)
    for rule in senders:
        if rule.startswith("@"):
            if domain == rule[1:] or domain.endswith("." + rule[1:]):
                return True
        elif rule == address:
            return True
    return False


def judge(parsed: ParsedMail, rules: MailRules, dkim: DkimResult) -> Verdict:
    """Whether a readable message is accepted as one of the meeting's announcements, and why not."""
    mode = rules.mode_for(parsed.list_id)
    if mode is None:
        shown = f"List-Id {parsed.list_id!r}" if parsed.list_id else "no List-Id header"
        return Verdict(False, f"{shown} is not one of the meeting's lists ({', '.join(sorted(rules.lists))})")
    if not parsed.sender_address:
        return Verdict(False, "no sender address in From")
    if not sender_allowed(parsed.sender_address, rules.senders):
        return Verdict(False, f"sender {parsed.sender_address} is not on the meeting's sender allowlist")
    if rules.dkim is DkimPolicy.REQUIRE:
        if dkim.status != "pass":
            return Verdict(False, f"DKIM required: {dkim.shown}{': ' + dkim.detail if dkim.detail else ''}")
        if not aligned(dkim.domain, parsed.sender_address):
            return Verdict(False, f"DKIM required: the signature is by {dkim.domain}, not the sender's domain "
                                  f"{_domain_of(parsed.sender_address)}")
    return Verdict(True, mode=mode)


@dataclass(frozen=True)
class StoredMail:
    """A received message as kept: in the archive (accepted, released) or in the quarantine."""

    id: int
    meeting_id: MeetingId | None
    status: MailStatus
    reason: str  # why it was quarantined ("" when accepted)
    received_at: datetime
    channel: str  # smtp, lmtp, imap, import, http
    parsed: ParsedMail | None  # None when the message could not be parsed at all
    size: int
    message_id: str = ""
    subject: str = ""
    sender: str = ""
    dkim: str = ""
    relay: RelayState = RelayState.NONE
    deadlines: tuple[MailDeadline, ...] = ()
    copies: int = 1  # identical copies received (a list server retrying after a lost reply)
    decided_by: str = ""

    @property
    def archived(self) -> bool:
        return self.status is not MailStatus.QUARANTINED
