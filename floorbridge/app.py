"""Composition root: builds the services from the settings; one AsyncExitStack owns every lifetime."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from floorbridge.adapters.chat_runtime import TELEGRAM_WEBHOOK, ChatRuntime, staff_from
from floorbridge.adapters.mail.intake import MailIntake
from floorbridge.adapters.mail.receivers import MailReceivers
from floorbridge.adapters.settings import Settings
from floorbridge.adapters.slot_service import SlotService
from floorbridge.adapters.sources import ImportedAgenda, load_agenda
from floorbridge.adapters.storage import (
    Checkpoints,
    SqlAgendaStore,
    SqlChatStore,
    SqlConsoleStore,
    SqlMailStore,
    SqlOutbox,
    SqlSlotStore,
    SqlSpeakerStore,
    open_store,
    write_here,
)
from floorbridge.adapters.storage.live import LiveEvents
from floorbridge.adapters.web.console_auth import ConsoleAuth
from floorbridge.adapters.web.fastpath import FastPathSite
from floorbridge.adapters.web.keys import WebOptions
from floorbridge.adapters.web.metrics import MetricsSources
from floorbridge.adapters.web.personal import PersonalFeeds
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots
from floorbridge.adapters.worker import (
    PARENT_SOCKET,
    WORKER_SOCKET,
    FloorHost,
    RemoteFloor,
    WakeListener,
    WorkerClient,
    WorkerHost,
    WorkerProcess,
    lower_priority,
    tie_to_parent,
    until_parent_gone,
)
from floorbridge.calendar.feeds import render_feeds
from floorbridge.core import usecases
from floorbridge.core.chats import Platform
from floorbridge.core.errors import InvalidInput, NotFound, Problem
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.meeting import Meeting
from floorbridge.core.ports import RenderedFeed
from floorbridge.core.tasks import cancel_and_wait
from floorbridge.core.versions import AgendaVersion

log = logging.getLogger("floorbridge")


@dataclass
class Services:
    settings: Settings
    store: SqlAgendaStore
    chats: SqlChatStore
    outbox: SqlOutbox
    chat: ChatRuntime
    speakers: SqlSpeakerStore
    console: ConsoleAuth
    mail: MailIntake = field(init=False)

    def __post_init__(self) -> None:
        self.mail = MailIntake(
            SqlMailStore(self.store.engine), self.chats, self.store, self.settings, publish=self.publish,
            moderator_chats=self.chat.moderator_chats, on_enqueued=self.chat.engine.notify,
        )
        self.chat.conversation.mail_review.desk = self.mail

    def render(self, meeting: Meeting, version: AgendaVersion) -> Mapping[str, RenderedFeed]:
        return render_feeds(
            meeting,
            version,
            base_url=self.settings.server.public_url,
            refresh_minutes=self.settings.feeds.refresh_minutes,
            alarm_offsets=self.settings.feeds.alarm_offsets(),
        )

    async def import_file(self, meeting_id: MeetingId, path: Path) -> ImportedAgenda:
        """Validate a whole agenda file, then replace the working copy in one transaction."""
        try:
            existing: Meeting | None = await self.store.get_meeting(meeting_id)
        except NotFound:
            existing = None
        imported = load_agenda(path, existing)
        deadlines = imported.deadlines
        if deadlines is not None and existing is not None:
            # Deadlines accepted from announcements stay: the agenda file does not know them.
            defined = {d.id for d in deadlines}
            working = await self.store.working_copy(meeting_id)
            deadlines = (*deadlines, *(d for d in working.deadlines if d.source == "mail" and d.id not in defined))
        await usecases.import_agenda(
            self.store,
            meeting_id,
            defined_meeting=imported.meeting,
            sessions=imported.sessions,
            deadlines=deadlines,
            source=str(path),
        )
        return imported

    async def publish(self, meeting_id: MeetingId, comment: str = "") -> AgendaVersion:
        """Publish the working copy; the chat announcements are stored with the version and sent
        by whichever process runs the bots (this one is woken at once)."""
        version = await usecases.publish_agenda(
            self.store,
            meeting_id,
            self.render,
            now=datetime.now(UTC).replace(microsecond=0),
            comment=comment,
            announce=self.chat.announce,
        )
        self.chat.engine.notify()
        return version

    async def seed(self) -> list[AgendaVersion]:
        """Import and publish the configured meetings that have no published version yet."""
        published = []
        known = await self.store.latest_version_numbers()
        for raw in self.settings.meetings.seed:
            path = Path(raw)
            imported = load_agenda(path, None)
            if imported.meeting is None:
                raise NotFound(f"{path}: a seed file must define its meeting in a 'meeting:' block")
            if imported.meeting.id in known:
                continue
            await self.import_file(imported.meeting.id, path)
            published.append(await self.publish(imported.meeting.id, comment=f"imported from {path.name}"))
            log.info("seeded meeting", extra={"meeting": imported.meeting.id, "file": str(path)})
        return published


def web_options(settings: Settings) -> WebOptions:
    server = settings.server
    return WebOptions(server.public_url, server.max_body_bytes, rate_limit=server.rate_limit.enabled,
                      rate_per_second=server.rate_limit.per_address_per_second, rate_burst=server.rate_limit.burst,
                      trusted_proxies=server.trusted_proxies)


def _secret_bytes(settings: Settings, name: str) -> bytes | None:
    secret = settings.secret(name)
    return secret.get_secret_value().encode() if secret is not None else None


@asynccontextmanager
async def services(settings: Settings, *, floor_link: Path | None = None) -> AsyncIterator[Services]:
    """Everything a command needs, on one database. With `floor_link` (a chat worker started by a web
    process: the socket of its parent's FloorHost), the chat's lists of speakers are the parent's."""
    store = await open_store(
        settings.database_url(),
        migrate=True,
        echo=settings.database.echo,
        pool_size=settings.database.pool_size,
    )
    chats = SqlChatStore(store.engine)
    outbox = SqlOutbox(store.engine)
    speakers = SqlSpeakerStore(store.engine)
    console = ConsoleAuth(SqlConsoleStore(store.engine), staff_from(settings), public_url=settings.server.public_url,
                          session_minutes=settings.console.session_minutes,
                          link_minutes=settings.console.login_link_minutes)
    remote = RemoteFloor(floor_link, speakers, store) if floor_link is not None else None
    chat = ChatRuntime(store, chats, outbox, settings, speakers=speakers, login_link=console.login_link,
                       slots=SlotService(SqlSlotStore(store.engine), store), floor_desk=remote)
    try:
        yield Services(settings, store, chats, outbox, chat, speakers, console)
    finally:
        if remote is not None:
            await remote.close()
        await outbox.close()
        await store.close()


ROLES = ("all", "web", "worker")


@dataclass(frozen=True)
class WorkerLink:
    """How a chat worker started by `serve --role all` reaches its web process: the private
    directory of their sockets, and the web process's pid (the worker dies with it)."""

    directory: Path
    parent_pid: int


def chat_work(settings: Settings) -> bool:
    """Whether there is anything for a chat worker to run: a chat platform or a mail receiver."""
    mail = settings.mail
    return (settings.telegram.enabled or settings.discord.enabled or settings.matrix.enabled
            or mail.smtp.enabled or mail.lmtp.enabled or bool(mail.imap))


def check_role(settings: Settings, role: str, *, linked: bool = False) -> None:
    """Refuse, before anything starts, a split that cannot work. (`linked`: a chat worker started
    by `serve --role all`, which shares the database and the web server of its parent.)"""
    if role not in ROLES:
        raise InvalidInput([Problem("--role", f"{role!r} is not one of {', '.join(ROLES)}")], source="serve")
    if linked:
        return
    if role != "all" and settings.database.is_sqlite:
        raise InvalidInput([Problem("--role", f"a {role} process runs apart from the other processes of its "
                                              "database, and only PostgreSQL is shared between machines: use "
                                              "PostgreSQL (database.url: postgresql+asyncpg://…), or --role all, "
                                              "which runs its web and chat processes itself")],
                           source="serve")
    if role == "worker" and settings.telegram.enabled and settings.telegram.mode == "webhook":
        raise InvalidInput([Problem("--role", "Telegram in webhook mode posts its updates to the web server, which "
                                              "a worker does not run: use telegram.mode: polling, or --role all")],
                           source="serve")


def worker_argv(config: Path | None, directory: Path) -> list[str]:
    """The command line of the chat worker of this web process."""
    chosen = ["--config", str(config.resolve())] if config is not None else []
    return [sys.executable, "-m", "floorbridge", *chosen, "serve", "--role", "worker", "--no-seed",
            "--link", str(directory), "--parent-pid", str(os.getpid())]


async def serve(settings: Settings, *, seed: bool = True, stop: asyncio.Event | None = None,
                role: str = "all", config: Path | None = None, link: WorkerLink | None = None) -> None:
    """Run until SIGINT/SIGTERM or `stop`. `web` runs the web server (feeds, API, pages, console)
    and its lists of speakers; `worker` the bots, their delivery, the reminders and the mail
    receivers; `all` runs the web server here and, when a chat platform or a mail receiver is
    enabled, a chat worker in a process of its own (started with the same `config` file, and
    `link`ed to this one: see adapters/worker). Processes of one PostgreSQL database tell each
    other of changes (LISTEN/NOTIFY)."""
    check_role(settings, role, linked=link is not None)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    web_role, bots = role in ("all", "web"), role == "worker"
    spawn_worker = role == "all" and chat_work(settings)
    if link is not None:
        tie_to_parent(link.parent_pid)
        lower_priority(settings.bots.worker_nice)
    async with AsyncExitStack() as stack:
        svc = await stack.enter_async_context(
            services(settings, floor_link=link.directory / PARENT_SOCKET if link is not None else None))
        if bots:
            write_here(svc.store.engine)  # (SQLite: see its docstring)
        await stack.enter_async_context(Checkpoints(svc.store.engine))
        # The worker starts now (the database is migrated), its start-up beside this one's.
        worker = await _start_worker(stack, settings, svc, config) if spawn_worker else None
        if seed:
            await svc.seed()
        if link is None:
            await svc.mail.reconcile()  # (a linked worker's web process did)
        live = _live_events(settings, svc)
        await live.start()
        stack.push_async_callback(live.stop)
        if bots:
            svc.chat.add_configured()
        floor = svc.chat.floor
        sources = MetricsSources(
            outbox_depth=svc.outbox.depth, ping=svc.outbox.ping, role=role, delivery=svc.chat.delivery_report,
            floor_actions=lambda: floor.actions if floor is not None else {},
            mail=lambda: svc.mail.received,
        )
        if worker is not None:
            sources.delivery = worker.client.report
        if web_role:
            snapshots = Snapshots(svc.store, settings.meetings.poll_seconds,
                                  https=settings.server.public_url.startswith("https://"))
            await snapshots.start()
            stack.push_async_callback(snapshots.stop)
            personal = PersonalFeeds(svc.chats, settings.feeds.refresh_minutes, settings.feeds.alarm_offsets())
            app = create_app(
                snapshots,
                web_options(settings),
                personal_feeds=personal,
                floor_desk=svc.chat.floor,
                speaker_store=svc.speakers,
                console=svc.console,
                slots=svc.chat.slots,
                mail_intake=svc.mail,
                mail_key=_secret_bytes(settings, "mail-hmac"),
                metrics_sources=sources,
            )
            if worker is not None and settings.telegram.enabled and settings.telegram.mode == "webhook":
                app.router.add_post(TELEGRAM_WEBHOOK, worker.client.forward(TELEGRAM_WEBHOOK))
            for path, handler in svc.chat.webhooks.items():
                app.router.add_post(path, handler)
            runner = web.AppRunner(app, access_log=logging.getLogger("floorbridge.access"), handle_signals=False)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = FastPathSite(runner, snapshots, settings.server.host, settings.server.port)
            await site.start()
            fast = site.fast_path
            sources.feeds = lambda: (fast.answered, fast.not_modified)
        # PostgreSQL: each platform runs while this process holds its lock; one lost (the server
        # restarted, the connection broke) stops that platform until the lock is won back.
        locks = None if settings.database.is_sqlite else settings.database_url()
        await svc.chat.start(bots=bots, locks_url=locks)
        stack.push_async_callback(svc.chat.stop)
        if bots:
            receivers = MailReceivers(svc.mail, settings)
            await receivers.start()
            stack.push_async_callback(receivers.stop)
        if link is not None:
            await _link_to_web(stack, svc, link, stop)
        # What start-up made (settings, agenda, libraries) lives as long as the process: kept out of
        # the collector's full passes, which otherwise walk it all and stall answers (the web
        # acknowledgements' p99 went from about 160 ms to 30 ms under a burst). And the young
        # generation is collected every 20,000 allocations, not 700: a request makes hundreds of
        # short-lived objects, which reference counting frees anyway (15-20% less CPU a floor
        # request on a new connection).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 10, 10)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
            stack.callback(loop.remove_signal_handler, sig)
        log.info(
            "serving",
            extra={"role": role, "worker": worker.process.pid if worker is not None else None,
                   "url": f"http://{settings.server.host}:{settings.server.port}" if web_role else None},
        )
        await stop.wait()
        log.info("stopping")


@dataclass
class _Worker:
    process: WorkerProcess
    client: WorkerClient


async def _start_worker(stack: AsyncExitStack, settings: Settings, svc: Services, config: Path | None) -> _Worker:
    """The web process's side of its chat worker: the link's private directory and this side's
    socket (the worker's list commands, its outbox wakes), a client of the worker's socket (its
    delivery figures for /metrics, Telegram's webhook), and the worker itself, started now."""
    directory = Path(tempfile.mkdtemp(prefix="floorbridge-"))  # 0700: only this user reaches the sockets
    stack.callback(shutil.rmtree, directory, ignore_errors=True)
    assert svc.chat.floor is not None
    host = FloorHost(svc.chat.floor, directory / PARENT_SOCKET)
    await host.start()
    stack.push_async_callback(host.stop)
    svc.chat.engine.listeners.append(host.wake)  # outbox rows written here are sent by the worker
    enabled = [p.value for p in Platform if getattr(settings, p.value).enabled]
    client = WorkerClient(directory / WORKER_SOCKET, enabled)
    stack.push_async_callback(client.close)
    process = WorkerProcess(worker_argv(config, directory))
    await process.start()
    stack.push_async_callback(process.stop)  # (stopped first: before the link it talks over)
    return _Worker(process, client)


async def _link_to_web(stack: AsyncExitStack, svc: Services, link: WorkerLink, stop: asyncio.Event) -> None:
    """The chat worker's side: outbox wakes from the web process, its own socket (delivery figures,
    webhook calls), and a stop when the web process goes."""
    wakes = WakeListener(link.directory / PARENT_SOCKET, svc.chat.engine.notify)
    await wakes.start()
    stack.push_async_callback(wakes.stop)
    host = WorkerHost(link.directory / WORKER_SOCKET, svc.chat.report, dict(svc.chat.webhooks))
    await host.start()
    stack.push_async_callback(host.stop)
    watcher = asyncio.create_task(until_parent_gone(stop), name="parent-watch")
    stack.push_async_callback(cancel_and_wait, watcher)


_PLATFORMS = {p.value for p in Platform}


def _live_events(settings: Settings, svc: Services) -> LiveEvents:
    floor = svc.chat.floor

    def on_floor(meeting: str, session: str, version: int) -> None:
        if floor is not None:
            floor.changed_elsewhere(MeetingId(meeting), SessionId(session), version)

    def on_outbox(platforms: list[str]) -> None:
        known = [Platform(p) for p in platforms if p in _PLATFORMS]
        svc.chat.engine.notify(known or None)  # none named (a reconnect): look at every platform

    def on_listening() -> None:  # notices sent while the listener was away are lost: look again
        if floor is not None:
            floor.resync()
        svc.chat.engine.notify(None)

    return LiveEvents(settings.database_url(), on_floor=on_floor, on_outbox=on_outbox, on_listening=on_listening)
