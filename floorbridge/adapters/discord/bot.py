"""The Discord adapter: discord.py 2.7, slash commands and buttons, started inside the app's loop.

Slash commands and button clicks are answered through the interaction itself (Discord requires
an answer within 3 seconds, and interaction responses are outside the global rate limit);
announcements are sent by the delivery engine through `send` and `put_pinned`, with the outbox
id as nonce (discord.py sends enforce_nonce with it), so a retried send never posts twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from floorbridge.bots.events import Incoming, Reply
from floorbridge.core.chats import ChatRef, Platform, UserRef
from floorbridge.core.outbox import ChatThread, OutboxItem
from floorbridge.delivery.errors import MessageRejected, PermanentFailure, RateLimited, TemporaryFailure

from ..chat_bridge import ReplyQueue
from .render import CUSTOM_ID_PREFIX, DiscordText, render

log = logging.getLogger("floorbridge.discord")

NO_MENTIONS = discord.AllowedMentions.none()
# Discord drops an interaction not answered within three seconds; past this, defer it first.
DEFER_AFTER = 2.0
# Error codes after which a channel will never accept our messages.
_GONE_CODES = {10003, 10013, 50001, 50007, 50013}
# Starting a thread: "a thread has already been created for this message" (a retry after the send
# into it failed) and "cannot execute action on this channel type".
THREAD_EXISTS = 160004
_NO_THREADS_HERE = 50024
MAX_THREAD_NAME = 100
# A link as render writes it: [label](<url>), the label escaped.
_LINK = re.compile(r"(?<!\\)\[((?:\\.|[^\\\]])*)\]\(<[^>]*>\)")


def point_at(api_url: str, gateway_url: str) -> None:
    """Send discord.py's REST calls and gateway connection to these URLs (tests, proxies). Both are
    class attributes in discord.py, so this applies to every client in the process."""
    discord.http.Route.BASE = api_url.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url.rstrip("/") + "/")


def _view(rows: list[list[dict[str, str]]]) -> discord.ui.View | None:
    if not rows:
        return None
    view = discord.ui.View(timeout=None)
    for n, row in enumerate(rows):
        for button in row:
            if "url" in button:
                view.add_item(discord.ui.Button(label=button["label"], url=button["url"], row=n))
            else:
                view.add_item(discord.ui.Button(label=button["label"], custom_id=button["custom_id"], row=n,
                                                style=discord.ButtonStyle.secondary))
    return view


def _embeds(part: DiscordText) -> list[discord.Embed]:
    return [discord.Embed.from_dict(e) for e in part.embeds]


def _plain_line(markdown: str) -> str:
    """The first non-empty line of a message as render writes it (escaped, bold and italic
    stars, code ticks, links), as plain text."""
    line = next((text.strip() for text in markdown.splitlines() if text.strip()), "")
    out: list[str] = []
    escaped = False
    for char in _LINK.sub(r"\1", line):
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char not in "*`":
            out.append(char)
    return "".join(out).strip()


def thread_name(root: discord.Message, cause: str) -> str:
    """A thread's name (1 to 100 characters): the first line of the root message, else the cause."""
    text = root.content or next((e.description for e in root.embeds if e.description), "")
    return (_plain_line(text) or cause.strip() or "…")[:MAX_THREAD_NAME]


class DiscordAdapter:
    platform = Platform.DISCORD

    def __init__(
        self,
        token: str,
        *,
        replies: ReplyQueue,
        commands: dict[str, str],
        api_url: str = "",
        gateway_url: str = "",
        guild_ready_timeout: float = 2.0,
        defer_after: float = DEFER_AFTER,
    ) -> None:
        if api_url or gateway_url:
            point_at(api_url or discord.http.Route.BASE, gateway_url or str(DiscordWebSocket.DEFAULT_GATEWAY))
        self._token = token
        self._replies = replies
        self._defer_after = defer_after
        self._commands = commands
        self._guild_ready_timeout = guild_ready_timeout
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self._build()

    def _build(self) -> None:
        """A new discord.py client (one that was closed cannot be started again)."""
        intents = discord.Intents.none()
        intents.guilds = True
        self.client = discord.Client(
            intents=intents, allowed_mentions=NO_MENTIONS, guild_ready_timeout=self._guild_ready_timeout
        )
        self.tree = app_commands.CommandTree(self.client)
        for name, description in self._commands.items():
            self.tree.add_command(self._slash(name, description))
        self.client.event(self.on_interaction)
        self.client.event(self.on_ready)
        self.ready.clear()

    def _slash(self, name: str, description: str) -> app_commands.Command[Any, Any, None]:
        async def callback(interaction: discord.Interaction, arguments: str | None = None) -> None:
            await self._answer(interaction, f"{name} {arguments or ''}".strip())

        return app_commands.Command(name=name, description=description[:100], callback=callback)

    # ---------------------------------------------------------------- lifetime

    async def start(self, *, sync_commands: bool = True) -> None:
        if self.client.is_closed():  # started again after a stop (the process won the platform back)
            self._build()
        await self.client.login(self._token)
        self._task = asyncio.create_task(self.client.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(self.ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if self._task in done:
                self._task.result()  # the gateway failed: raise its error
            raise TimeoutError("Discord gateway did not become ready within 60 s")
        if sync_commands:
            await self.tree.sync()
        log.info("discord connected", extra={"bot": str(self.client.user)})

    async def stop(self) -> None:
        await self.client.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def on_ready(self) -> None:
        self.ready.set()

    # ---------------------------------------------------------------- incoming

    @staticmethod
    def _incoming(interaction: discord.Interaction, text: str) -> Incoming:
        locale = str(interaction.locale) if interaction.locale else None
        return Incoming(
            chat=ChatRef(Platform.DISCORD, str(interaction.channel_id)),
            user=UserRef(Platform.DISCORD, str(interaction.user.id)),
            text=text,
            is_group=interaction.guild_id is not None,
            user_name=interaction.user.display_name,
            language_hint=locale,
        )

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.component:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if custom_id.startswith(CUSTOM_ID_PREFIX):
            await self._answer(interaction, custom_id[len(CUSTOM_ID_PREFIX):])

    async def _answer(self, interaction: discord.Interaction, text: str) -> None:
        """Answer within Discord's three seconds: an answer that is not ready after `defer_after`
        (a burst of a thousand requests for the floor, a slow database) is deferred ("thinking…",
        shown to the asker only, since a private answer must not land in the channel) and sent as
        a follow-up when it is."""
        work = asyncio.ensure_future(self._replies.answer(self._incoming(interaction, text)))
        try:
            done, _ = await asyncio.wait({work}, timeout=self._defer_after)
            if not done and not interaction.response.is_done():
                try:
                    await interaction.response.defer(ephemeral=True, thinking=True)
                except discord.HTTPException as exc:  # too late even for that: the answer cannot be shown
                    log.warning("discord interaction expired before it could be deferred",
                                extra={"error": str(exc)})
                    await work
                    return
            replies = await work
        finally:
            if not work.done():
                work.cancel()
        first = True
        for reply in replies:
            for part in render(reply.message):
                await self._respond(interaction, part, reply, first)
                first = False

    async def _respond(self, interaction: discord.Interaction, part: DiscordText, reply: Reply, first: bool) -> None:
        kwargs: dict[str, Any] = {
            "content": part.content or None,
            "embeds": _embeds(part),
            "allowed_mentions": NO_MENTIONS,
            "ephemeral": reply.private,
        }
        view = _view(part.buttons)
        if view is not None:
            kwargs["view"] = view
        if first and not interaction.response.is_done():
            await interaction.response.send_message(**kwargs)
        else:
            await interaction.followup.send(**kwargs)

    # ---------------------------------------------------------------- outgoing (delivery.Sender)

    async def _channel(self, chat_id: str) -> discord.abc.Messageable:
        channel = self.client.get_channel(int(chat_id))
        if channel is None:
            channel = await self.client.fetch_channel(int(chat_id))
        if not isinstance(channel, discord.abc.Messageable):
            raise PermanentFailure(f"channel {chat_id} cannot hold messages")
        return channel

    async def _send_parts(
        self,
        item: OutboxItem,
        parts: list[DiscordText],
        to: discord.abc.Messageable | None = None,
        reference: discord.MessageReference | None = None,
    ) -> list[discord.Message]:
        """Send the parts to `to` (default: the item's channel), each replying to `reference` if given."""
        channel = to or await self._channel(item.outgoing.chat.chat_id)
        messages: list[discord.Message] = []
        for n, part in enumerate(parts):
            kwargs: dict[str, Any] = {
                "content": part.content or None,
                "embeds": _embeds(part),
                "allowed_mentions": NO_MENTIONS,
                # Discord keeps a nonce for a few minutes: a retry after a lost answer returns the
                # message already created instead of a second one. At most 25 characters.
                "nonce": f"{item.idempotency_key}-{n}"[:25],
            }
            view = _view(part.buttons)
            if view is not None:
                kwargs["view"] = view
            if reference is not None:
                kwargs["reference"] = reference
            messages.append(await channel.send(**kwargs))
        return messages

    async def send(self, item: OutboxItem) -> str:
        with _mapped_errors():
            return str((await self._send_parts(item, render(item.outgoing.message)))[-1].id)

    async def send_in_thread(self, item: OutboxItem, thread: ChatThread | None) -> tuple[str, ChatThread]:
        """The first message is sent as usual; the second starts a Discord thread on it, and it and
        the later ones go into that thread. Where no thread can be started or sent to (no permission,
        a DM, the thread deleted), they reply to the first message instead."""
        parts = render(item.outgoing.message)
        with _mapped_errors():
            if thread is None:
                messages = await self._send_parts(item, parts)
                return str(messages[-1].id), ChatThread(str(messages[0].id))
            if thread.thread_id is None:
                thread = await self._start_thread(item, thread)
            if thread.thread_id is not None:
                inside = self.client.get_partial_messageable(int(thread.thread_id),
                                                             type=discord.ChannelType.public_thread)
                try:
                    return str((await self._send_parts(item, parts, inside))[-1].id), thread
                except (discord.Forbidden, discord.NotFound) as exc:
                    log.warning("cannot send into the thread; replying to its first message instead",
                                extra={"chat": item.outgoing.chat.chat_id, "thread_id": thread.thread_id,
                                       "error": f"{exc.status} {exc.text}"})
                    thread = ChatThread(thread.root_message_id)  # started again on the next message
            reference = discord.MessageReference(message_id=int(thread.root_message_id),
                                                 channel_id=int(item.outgoing.chat.chat_id), fail_if_not_exists=False)
            return str((await self._send_parts(item, parts, reference=reference))[-1].id), thread

    async def _start_thread(self, item: OutboxItem, thread: ChatThread) -> ChatThread:
        """Start a public thread on the root message (Start Thread from Message); `thread` unchanged
        when that is not possible, so the caller replies instead."""
        chat_id = item.outgoing.chat.chat_id
        channel = await self._channel(chat_id)
        if not isinstance(channel, discord.TextChannel):
            return thread  # a DM or a thread itself: Discord has no threads on their messages
        try:
            root = await channel.fetch_message(int(thread.root_message_id))
            started = await root.create_thread(name=thread_name(root, item.outgoing.cause),
                                               reason="floorbridge: messages that belong together")
        except (discord.Forbidden, discord.NotFound) as exc:
            log.warning("cannot start a thread; replying to its first message instead",
                        extra={"chat": chat_id, "root": thread.root_message_id, "error": f"{exc.status} {exc.text}"})
            return thread
        except discord.HTTPException as exc:
            if exc.code == THREAD_EXISTS:
                # A thread started from a message has the message's id (Discord's documentation).
                return ChatThread(thread.root_message_id, thread.root_message_id)
            if exc.code == _NO_THREADS_HERE:
                return thread
            raise
        return ChatThread(thread.root_message_id, str(started.id))

    async def put_pinned(self, item: OutboxItem, existing: str | None) -> str:
        part = render(item.outgoing.message)[0]
        with _mapped_errors():
            if existing is not None:
                channel = await self._channel(item.outgoing.chat.chat_id)
                try:
                    await channel.get_partial_message(int(existing)).edit(  # type: ignore[attr-defined]
                        content=part.content or None, embeds=_embeds(part), allowed_mentions=NO_MENTIONS
                    )
                    return existing
                except discord.NotFound:
                    pass  # deleted by someone: post and pin a new one
            [message] = await self._send_parts(item, [part])
            try:
                await message.pin(reason="floorbridge: today's schedule")
            except discord.Forbidden as exc:
                log.warning("cannot pin (the bot needs Manage Messages)", extra={"error": exc.text})
            return str(message.id)


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except discord.RateLimited as exc:
        raise RateLimited(exc.retry_after) from exc
    except (discord.Forbidden, discord.NotFound) as exc:
        raise PermanentFailure(f"{exc.status} {exc.text or exc}") from exc
    except discord.DiscordServerError as exc:
        raise TemporaryFailure(f"{exc.status} {exc.text}") from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise RateLimited(float(exc.response.headers.get("Retry-After", 1))) from exc
        if exc.code in _GONE_CODES:
            raise PermanentFailure(f"{exc.code} {exc.text}") from exc
        raise MessageRejected(f"{exc.status} {exc.code} {exc.text}") from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise TemporaryFailure(repr(exc)) from exc
