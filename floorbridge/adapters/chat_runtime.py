"""The chat side of a running floorbridge: conversation, platform adapters, delivery workers and
the reminder loop, built from the settings and started inside the app's event loop.

Each platform starts and stops on its own (`start_platform`, `stop_platform`): with PostgreSQL a
platform runs only while this process holds its lock (`storage/ownership.py`), so losing the lock
stops that platform's bot and delivery, and winning it again starts them again, in the same
process (the delivery worker then reads the outbox afresh: see PlatformWorker.start)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from floorbridge.bots.conversation import HELP, Conversation
from floorbridge.bots.floor import chat_of, floor_notices
from floorbridge.bots.notices import delivery_failed, due_reminders, pinned_today, version_announcements
from floorbridge.bots.slot_review import decision_notice
from floorbridge.core.agenda import Session
from floorbridge.core.chats import ChatProfile, ChatRef, Platform, Role, Staff, UserRef
from floorbridge.core.ids import MeetingId
from floorbridge.core.meeting import Meeting
from floorbridge.core.outbox import OutboxItem, OutgoingMessage
from floorbridge.core.ports import AgendaStore, FloorDesk, SpeakerStore
from floorbridge.core.slots import SlotCall, SlotRequest
from floorbridge.core.speakers import FloorNotice, SpeakerList
from floorbridge.core.tasks import cancel_and_wait
from floorbridge.core.versions import AgendaVersion
from floorbridge.delivery.engine import DeliveryEngine, DeliveryReport, PlatformWorker, Sender
from floorbridge.delivery.limits import AdaptiveLimiter, DiscordLimiter, Limiter, TelegramLimiter

from .chat_bridge import CHAT_CONCURRENCY, ReplyQueue
from .floor_service import FloorService
from .settings import Settings
from .slot_service import SlotService
from .storage import SqlChatStore, SqlOutbox
from .storage.ownership import PlatformLocks

log = logging.getLogger("floorbridge.chat")

TELEGRAM_WEBHOOK = "/telegram/webhook"


def _ref(text: str) -> tuple[Platform, str]:
    platform, _, ident = text.partition(":")
    return Platform(platform), ident


def staff_from(settings: Settings) -> Staff:
    members: dict[MeetingId, dict[UserRef, Role]] = {}
    for meeting_id, staff in settings.meetings.staff.items():
        people: dict[UserRef, Role] = {}
        for role, entries in ((Role.SECRETARIAT, staff.secretariat), (Role.MODERATOR, staff.moderators)):
            for entry in entries:
                people[UserRef(*_ref(entry))] = role
        members[MeetingId(meeting_id)] = people
    return Staff(members)


def moderator_chats_from(settings: Settings) -> dict[MeetingId, list[ChatRef]]:
    return {MeetingId(m): [ChatRef(*_ref(c)) for c in s.chats] for m, s in settings.meetings.staff.items()}


class ChatAdapter(Sender, Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def command_descriptions() -> dict[str, str]:
    """English descriptions for the platforms' command menus (Telegram's list, Discord's slash commands)."""
    return {name: what for name, _, what in HELP}


@dataclass
class ChatRuntime:
    agenda: AgendaStore
    chats: SqlChatStore
    outbox: SqlOutbox
    settings: Settings
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    adapters: dict[Platform, ChatAdapter] = field(default_factory=dict)
    engine: DeliveryEngine = field(default_factory=lambda: DeliveryEngine([]))
    # Routes the web server must add for the platforms (path -> POST handler): Telegram's webhook.
    webhooks: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = field(default_factory=dict)
    # The lists of speakers (none when no speaker store is given, e.g. in tests of other parts).
    speakers: SpeakerStore | None = None
    # One-time console login links for moderators who ask in chat (the web console's issuer).
    login_link: Callable[[UserRef], Awaitable[str]] | None = None
    # Speaking-slot requests (the `slot` command); none when not given.
    slots: SlotService | None = None
    # The lists of speakers as kept elsewhere (a chat worker's, kept by its web process); by default
    # this runtime keeps them itself, in a FloorService.
    floor_desk: FloorDesk | None = None
    _reminders: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self._turns = asyncio.Semaphore(CHAT_CONCURRENCY)  # shared by the platforms
        self._locks: PlatformLocks | None = None
        self._started: set[Platform] = set()  # running now (or starting)
        self._switching: dict[Platform, asyncio.Lock] = {}  # one start or stop of a platform at a time
        self.staff = staff_from(self.settings)
        self.moderator_chats = moderator_chats_from(self.settings)
        self.floor: FloorService | None = None
        desk = self.floor_desk
        if desk is None and self.speakers is not None:
            self.floor = desk = FloorService(self.speakers, self.agenda, write_notices=self.floor_notices,
                                             on_enqueued=self.engine.notify, clock=self.clock,
                                             tick_seconds=self.settings.console.floor_tick_seconds)
        self.conversation = Conversation(
            self.agenda, self.chats, self.staff, public_url=self.settings.server.public_url,
            clock=self.clock, on_pin_request=self.pin_request, floor=desk,
            login_link=self._login_link, slots=self.slots, staff_chats=self.moderator_chats,
        )
        if self.slots is not None:
            self.slots.tell_requesters(self.slot_notices, lambda: self.engine.notify())

    # ---------------------------------------------------------------- building

    def replies_for(self, platform: Platform) -> ReplyQueue:
        return ReplyQueue(self.conversation, self.chats, lambda: self.engine.notify([platform]), self._turns)

    def limiter_for(self, platform: Platform) -> Limiter:
        s = self.settings
        if platform is Platform.TELEGRAM:
            return TelegramLimiter(s.telegram.messages_per_second, 1.0, s.telegram.group_messages_per_minute)
        if platform is Platform.DISCORD:
            return DiscordLimiter(s.discord.requests_per_second)
        return AdaptiveLimiter(s.matrix.messages_per_second)

    def failure_notices(self, item: OutboxItem, reason: str) -> Sequence[OutgoingMessage]:
        targets = self.moderator_chats.get(item.outgoing.meeting_id, []) if item.outgoing.meeting_id else []
        return delivery_failed(item, reason, targets)

    def add(self, adapter: ChatAdapter, *, limiter: Limiter | None = None, **worker_options: Any) -> None:
        self.adapters[adapter.platform] = adapter
        self.engine.workers[adapter.platform] = PlatformWorker(
            adapter, self.outbox, limiter or self.limiter_for(adapter.platform),
            failure_notices=self.failure_notices,
            poll_seconds=self.settings.bots.delivery_poll_seconds,
            clock=self.clock,
            **worker_options,
        )

    def add_configured(self) -> None:
        """The adapters the settings enable, with their secrets from the environment."""
        s = self.settings
        if s.telegram.enabled:
            from .telegram.bot import TelegramAdapter

            token = s.secret("telegram")
            assert token is not None
            secret = s.secret("telegram-webhook")
            webhook = s.telegram.mode == "webhook"
            telegram = TelegramAdapter(
                token.get_secret_value(),
                base_url=s.telegram.base_url,
                replies=self.replies_for(Platform.TELEGRAM),
                webhook_url=f"{s.server.public_url}{TELEGRAM_WEBHOOK}" if webhook else "",
                webhook_secret=secret.get_secret_value() if secret is not None else "",
                command_descriptions=command_descriptions(),
            )
            self.add(telegram, concurrency=s.telegram.in_flight)
            if webhook:
                self.webhooks[TELEGRAM_WEBHOOK] = telegram.webhook
        if s.discord.enabled:
            from .discord.bot import DiscordAdapter

            token = s.secret("discord")
            assert token is not None
            self.add(DiscordAdapter(
                token.get_secret_value(),
                replies=self.replies_for(Platform.DISCORD),
                commands=command_descriptions(),
                api_url=s.discord.api_url,
                gateway_url=s.discord.gateway_url,
            ))
        if s.matrix.enabled:
            from .matrix.bot import MatrixAdapter

            token = s.secret("matrix")
            assert token is not None
            self.add(MatrixAdapter(
                s.matrix.homeserver,
                s.matrix.user_id,
                token.get_secret_value(),
                replies=self.replies_for(Platform.MATRIX),
                state_file=Path(s.matrix.state_file),
                allowed_servers=s.matrix.allowed_servers,
            ))

    # ---------------------------------------------------------------- lifetime

    async def _login_link(self, user: UserRef) -> str | None:
        return await self.login_link(user) if self.login_link is not None else None

    async def slot_notices(self, request: SlotRequest, call: SlotCall) -> list[OutgoingMessage]:
        """The secretariat's decision, for the delegate's chat (none for a request from the web)."""
        chat = chat_of(request.notify)
        if chat is None:
            return []
        meeting = await self.agenda.get_meeting(request.meeting_id)
        version = await self.agenda.latest_version(request.meeting_id)
        profile = await self.chats.get_profile(chat)
        notice = decision_notice(request, call, meeting, version, profile, self.settings.server.public_url)
        return [notice] if notice is not None else []

    async def floor_notices(self, meeting: Meeting, session: Session, lst: SpeakerList,
                            notices: Sequence[FloorNotice]) -> list[OutgoingMessage]:
        """A speaker's notices as outbox messages, in the language of the chat they asked from."""
        profiles: dict[ChatRef, ChatProfile] = {}
        for notice in notices:
            chat = chat_of(notice.speaker.participant.notify)
            if chat is not None and chat not in profiles:
                profile = await self.chats.get_profile(chat)
                if profile is not None:
                    profiles[chat] = profile
        return floor_notices(meeting, session, notices, profiles, lst.version)

    async def start(self, *, bots: bool = True, locks_url: str | None = None) -> None:
        """Start the lists of speakers' timer and, with `bots`, the platforms, their delivery and
        the reminders (a web-only process leaves those to a worker process). With `locks_url`
        (PostgreSQL), each platform runs only while this process holds its lock: it starts when
        the lock is won, stops when it is lost, and starts again when it is won again."""
        if self.floor is not None:
            await self.floor.start()
        if not bots:
            return
        if locks_url is not None:
            self._locks = PlatformLocks(locks_url, [p.value for p in self.adapters],
                                        on_acquired=self.start_platform, on_lost=self.stop_platform)
            await self._locks.start()
        else:
            for platform in self.adapters:
                await self.start_platform(platform.value)
        self._reminders = asyncio.create_task(self._reminder_loop(), name="reminders")

    def running(self) -> set[Platform]:
        """The platforms whose bot and delivery run in this process now."""
        return set(self._started)

    def report(self) -> DeliveryReport:
        """For /metrics: which platforms run here now, and their delivery figures."""
        return DeliveryReport({p.value: p in self._started for p in self.adapters},
                              {p.value: w.stats.figures() for p, w in self.engine.workers.items()})

    async def delivery_report(self) -> DeliveryReport:
        return self.report()

    def _switch(self, platform: Platform) -> asyncio.Lock:
        return self._switching.setdefault(platform, asyncio.Lock())

    async def start_platform(self, name: str) -> None:
        """Start the platform's delivery and its bot (a no-op while they run)."""
        platform = Platform(name)
        async with self._switch(platform):
            if platform in self._started:
                return
            self._started.add(platform)
            self.engine.workers[platform].start()
            try:
                await self.adapters[platform].start()
            except Exception:
                log.exception("platform failed to start; its messages wait in the outbox", extra={"platform": name})

    async def stop_platform(self, name: str) -> None:
        """Stop the platform's delivery (sends in flight finish and are recorded, or fail to be)
        and then its bot; a later `start_platform` starts both again."""
        platform = Platform(name)
        async with self._switch(platform):
            if platform not in self._started:
                return
            self._started.discard(platform)
            await self.engine.workers[platform].stop()
            try:
                await self.adapters[platform].stop()
            except Exception:
                log.exception("platform failed to stop cleanly", extra={"platform": name})
            log.info("platform stopped", extra={"platform": name})

    async def stop(self) -> None:
        await cancel_and_wait(self._reminders)
        if self._locks is not None:
            await self._locks.stop()
        for platform in list(self.adapters):
            await self.stop_platform(platform.value)
        await self.engine.stop()
        if self.floor is not None:
            await self.floor.stop()

    # ---------------------------------------------------------------- pushes

    async def announce(self, meeting: Meeting, version: AgendaVersion) -> Sequence[OutgoingMessage]:
        """The messages announcing `version` (for Services.publish, stored with the version)."""
        subscribers = await self.chats.subscribers(meeting.id)
        return version_announcements(meeting, version, subscribers, today=meeting.local(self.clock()).date())

    async def pin_request(self, profile: ChatProfile, meeting_id: MeetingId) -> None:
        meeting = await self.agenda.get_meeting(meeting_id)
        version = await self.agenda.latest_version(meeting_id)
        if version is None:
            return
        message = pinned_today(meeting, version, profile, meeting.local(self.clock()).date())
        await self.chats.enqueue([message])
        self.engine.notify([profile.chat.platform])

    async def remind_once(self) -> int:
        """Queue the reminders and pinned schedules that are due now; returns how many were new."""
        added = 0
        now = self.clock()
        for meeting in await self.agenda.list_meetings():
            version = await self.agenda.latest_version(meeting.id)
            if version is None:
                continue
            subscribers = await self.chats.subscribers(meeting.id)
            messages = due_reminders(meeting, version, subscribers, self.settings.bots.reminder_offsets(), now)
            today = meeting.local(now).date()
            messages += [pinned_today(meeting, version, profile, today)
                         for sub, profile in subscribers if profile.is_group]
            added += await self.chats.enqueue(messages)
        if added:
            self.engine.notify()
        return added

    async def _reminder_loop(self) -> None:
        while True:
            try:
                await self.remind_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reminder check failed")
            await asyncio.sleep(self.settings.bots.reminder_check_seconds)
