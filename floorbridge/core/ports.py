"""What the core needs from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from .agenda import Session
from .announcements import StoredMail
from .chats import ChatProfile, ChatRef, Subscription
from .console import ConsoleAccount, ConsoleSession
from .deadline import Deadline, DeadlineKind
from .ids import MeetingId, SessionId
from .meeting import Meeting
from .outbox import OutgoingMessage
from .slots import SlotCall, SlotForm, SlotRequest, SlotStatus
from .speakers import Actor, AuditEntry, Command, Outcome, RequestFloor, SpeakerList
from .versions import AgendaVersion


@dataclass(frozen=True)
class RenderedFeed:
    """Bytes rendered once per published version; served as they are, never re-rendered per request.

    `key` is the feed's path below its meeting: "all", "tracks/<slug>" or "deadlines".
    """

    key: str
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime
    content_type: str = "text/calendar; charset=utf-8"


@dataclass(frozen=True)
class VersionSummary:
    number: int
    published_at: datetime
    comment: str
    change_count: int


@dataclass(frozen=True)
class WorkingCopy:
    sessions: tuple[Session, ...]
    deadlines: tuple[Deadline, ...]
    updated_at: datetime | None


class AgendaStore(Protocol):
    async def upsert_meeting(self, meeting: Meeting) -> None: ...

    async def get_meeting(self, meeting_id: MeetingId) -> Meeting:
        """Raises NotFound."""
        ...

    async def list_meetings(self) -> list[Meeting]: ...

    async def replace_working_copy(
        self,
        meeting_id: MeetingId,
        sessions: Sequence[Session],
        deadlines: Sequence[Deadline] | None,
        meeting: Meeting | None = None,
    ) -> None:
        """Atomically replace the working sessions (and deadlines unless None; the meeting if given)."""
        ...

    async def working_copy(self, meeting_id: MeetingId) -> WorkingCopy: ...

    async def latest_version(self, meeting_id: MeetingId) -> AgendaVersion | None: ...

    async def get_version(self, meeting_id: MeetingId, number: int) -> AgendaVersion:
        """Raises NotFound."""
        ...

    async def list_versions(self, meeting_id: MeetingId) -> list[VersionSummary]: ...

    async def save_version(
        self,
        version: AgendaVersion,
        feeds: Mapping[str, RenderedFeed],
        outbox: Sequence[OutgoingMessage] = (),
    ) -> None:
        """Store a version, its rendered feeds and the messages announcing it in one transaction.

        Raises ConcurrentChange when that version number already exists (another publisher won).
        """
        ...

    async def rendered_feeds(self, meeting_id: MeetingId) -> dict[str, RenderedFeed]:
        """The feeds of the latest version ({} when nothing is published)."""
        ...

    async def latest_version_numbers(self) -> dict[MeetingId, int]:
        """Meeting id -> latest published version number: a cheap query for change polling."""
        ...


class ChatStore(Protocol):
    """What the conversation core and the announcers keep about chats."""

    async def get_profile(self, chat: ChatRef) -> ChatProfile | None: ...

    async def save_profile(self, profile: ChatProfile) -> None: ...

    async def profile_by_feed_token(self, token: str) -> ChatProfile | None: ...

    async def subscriptions_of(self, chat: ChatRef) -> list[Subscription]: ...

    async def save_subscription(self, subscription: Subscription) -> None: ...

    async def delete_subscription(self, chat: ChatRef, meeting_id: MeetingId) -> bool: ...

    async def subscribers(self, meeting_id: MeetingId) -> list[tuple[Subscription, ChatProfile]]:
        """Active subscriptions of a meeting with their chats' profiles."""
        ...

    async def enqueue(self, messages: Sequence[OutgoingMessage]) -> int:
        """Store messages in the outbox (rows whose dedup_key exists are skipped); returns how many were new."""
        ...


class SpeakerStore(Protocol):
    """Lists of speakers, their speakers and the audit trail of every change."""

    async def load_list(self, meeting_id: MeetingId, session_id: SessionId) -> SpeakerList | None:
        """The whole list (all speakers, the waiting order, budgets), or None if never used."""
        ...

    async def refresh(self, lst: SpeakerList) -> SpeakerList:
        """The list as stored now, read from the copy `lst` by what changed since its version."""
        ...

    async def lists_of(self, meeting_id: MeetingId) -> list[SpeakerList]: ...

    async def stored_version(self, meeting_id: MeetingId, session_id: SessionId) -> int | None:
        """The list's version as stored now (0 if never used); None when only one process can write
        lists (as on SQLite), whose copy in memory is then what is stored."""
        ...

    def exclusive(self, meeting_id: MeetingId, session_id: SessionId) -> AbstractAsyncContextManager[int | None]:
        """Other processes' commits of the list wait while inside; yields its stored version (None
        when only one process can write, as on SQLite)."""
        ...

    async def save_changes(self, lst: SpeakerList, base_version: int, audit: Sequence[AuditEntry],
                           changed_speaker_ids: Sequence[int], messages: Sequence[OutgoingMessage]) -> None:
        """In one transaction: move the stored list from `base_version` to `lst.version` (raise
        ConcurrentChange when the stored version is not `base_version`; base 0 creates it), write the
        changed speakers, append the audit entries and enqueue the messages (dedup keys honoured)."""
        ...

    async def audit_trail(self, meeting_id: MeetingId, session_id: SessionId) -> list[AuditEntry]: ...


class SlotStore(Protocol):
    """Segments open for speaking-slot requests and the requests filed for them."""

    async def save_call(self, call: SlotCall) -> None: ...

    async def get_call(self, meeting_id: MeetingId, call_id: str) -> SlotCall | None: ...

    async def calls(self, meeting_id: MeetingId) -> list[SlotCall]: ...

    async def add_request(self, request: SlotRequest, messages: Sequence[OutgoingMessage]) -> None: ...

    async def update_request(self, request: SlotRequest, expected_updated_at: datetime | None,
                             messages: Sequence[OutgoingMessage]) -> None:
        """Replace a request if nobody changed it since `expected_updated_at` (else ConcurrentChange)."""
        ...

    async def get_request(self, ref: str) -> SlotRequest | None: ...

    async def requests(self, meeting_id: MeetingId, call_id: str | None = None) -> list[SlotRequest]: ...

    async def request_by_feed_token(self, token: str) -> SlotRequest | None: ...

    async def requests_of(self, requester: str) -> list[SlotRequest]: ...


class ConsoleStore(Protocol):
    """Console accounts, signed-in sessions and one-time login links (all tokens as hashes)."""

    async def save_account(self, account: ConsoleAccount) -> None: ...

    async def account(self, username: str) -> ConsoleAccount | None: ...

    async def create_session(self, token_hash: str, session: ConsoleSession) -> None: ...

    async def session(self, token_hash: str, now: datetime) -> ConsoleSession | None:
        """The session if it exists and has not expired."""
        ...

    async def delete_session(self, token_hash: str) -> None: ...

    async def create_login_link(self, token_hash: str, subject: str, expires_at: datetime) -> None: ...

    async def use_login_link(self, token_hash: str, now: datetime) -> str | None:
        """The link's subject, once: a used or expired link gives None (atomic, even across processes)."""
        ...


class FloorDesk(Protocol):
    """The running lists of speakers, as the chat and the web use them."""

    async def session(self, meeting_id: MeetingId, session_id: SessionId) -> tuple[Meeting, Session]: ...

    async def view(self, meeting_id: MeetingId, session_id: SessionId) -> SpeakerList: ...

    async def request(self, meeting_id: MeetingId, session_id: SessionId, command: RequestFloor,
                      actor: Actor) -> Outcome: ...

    async def act(self, meeting_id: MeetingId, session_id: SessionId, command: Command, actor: Actor,
                  expected_version: int | None = None) -> Outcome: ...


class SlotDesk(Protocol):
    """Speaking-slot requests as the chat files, changes and withdraws them and the secretariat
    reviews them (floorbridge.adapters.slot_service.SlotService implements it)."""

    @property
    def store(self) -> SlotStore: ...

    async def call(self, meeting_id: MeetingId, call_id: str) -> SlotCall:
        """Raises NotFound."""
        ...

    async def submit(self, meeting_id: MeetingId, call_id: str, form: SlotForm, requester: str,
                     notify: str = "") -> SlotRequest:
        """Raises QueueRefused (deadline passed, a second request, one speaker per delegation) or InvalidInput."""
        ...

    async def mine(self, ref: str, requester: str) -> tuple[SlotCall, SlotRequest]:
        """The requester's own request and its call; NotFound for anybody else's."""
        ...

    async def change(self, ref: str, form: SlotForm, requester: str) -> SlotRequest: ...

    async def withdraw(self, ref: str, requester: str) -> SlotRequest: ...

    async def decide(self, ref: str, decision: SlotStatus, *, meeting_id: MeetingId, reason: str = "",
                     session: SessionId | None = None, order: int = 0, start: datetime | None = None,
                     minutes: int = 0, expected_updated_at: datetime | None = None) -> SlotRequest:
        """Raises NotFound, QueueRefused (withdrawn, a rejection without reason), InvalidInput
        (a start outside the session) or ConcurrentChange."""
        ...

    async def approve_next(self, ref: str, *, meeting_id: MeetingId, session: SessionId | None = None,
                           expected_updated_at: datetime | None = None) -> SlotRequest:
        """Approve at the next free place of the session; InvalidInput when the session is full."""
        ...


class MailDesk(Protocol):
    """The announcements of a meeting as moderators review them from chat and the console
    (floorbridge.adapters.mail.intake.MailIntake implements it). Every method raises NotFound for
    a message of another meeting, ConcurrentChange when someone else decided first."""

    async def waiting(self, meeting_id: MeetingId) -> list[StoredMail]:
        """The quarantine, announcements waiting to be relayed, deadlines waiting to be confirmed."""
        ...

    async def get(self, meeting_id: MeetingId, mail_id: int) -> StoredMail: ...

    async def release(self, meeting_id: MeetingId, mail_id: int, by: str) -> StoredMail:
        """Take a quarantined message into the archive (its deadlines are then found, its relay
        follows the list's mode); InvalidInput when it cannot be read at all."""
        ...

    async def relay(self, meeting_id: MeetingId, mail_id: int, by: str) -> StoredMail: ...

    async def decline(self, meeting_id: MeetingId, mail_id: int, by: str) -> StoredMail: ...

    async def decide_deadline(self, meeting_id: MeetingId, mail_id: int, deadline_id: str, *, accept: bool,
                              by: str, kind: DeadlineKind | None = None, due: date | None = None) -> StoredMail:
        """Accept (optionally corrected) or reject one found deadline; accepted ones are published
        in the meeting's deadlines."""
        ...

    def archive_url(self, meeting_id: MeetingId, mail_id: int) -> str: ...
