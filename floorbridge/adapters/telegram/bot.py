"""The Telegram adapter: python-telegram-bot 22 without run_polling (the app owns the loop).

Incoming updates (long polling, or a webhook served by the app's aiohttp server) become neutral
`Incoming` commands; outgoing messages are sent by the delivery engine through `send` and
`put_pinned`, with python-telegram-bot's errors mapped to the engine's outcomes. No
AIORateLimiter: the engine's TelegramLimiter enforces the per-chat and group limits it lacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from aiohttp import web
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from floorbridge.bots.events import Incoming
from floorbridge.core.chats import ChatRef, Platform, UserRef
from floorbridge.core.outbox import ChatThread, OutboxItem
from floorbridge.delivery.errors import MessageRejected, PermanentFailure, RateLimited, TemporaryFailure

from ..chat_bridge import ReplyQueue
from .render import TelegramText, render

log = logging.getLogger("floorbridge.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
GROUP_TYPES = (ChatType.GROUP, ChatType.SUPERGROUP, ChatType.CHANNEL)
_GONE = ("chat not found", "bot was kicked", "bot is not a member", "group chat was deactivated",
         "user is deactivated", "have no rights to send", "not enough rights")


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _keyboard(rows: list[list[dict[str, Any]]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(**b) for b in row] for row in rows])


# Updates fetched per getUpdates call (Telegram allows 1 to 100). Reading a batch is one stretch
# of CPU that nothing else in the process runs during; 100 updates of a burst held the web API's
# answers back by tens of milliseconds, 20 at a time interleave with them.
UPDATES_PER_FETCH = 20


class _SmallBatchBot(ExtBot[Any]):
    """python-telegram-bot's bot, fetching updates in small batches (its Updater asks for the
    default 100 and has no setting for it)."""

    async def get_updates(self, offset: int | None = None, limit: int | None = None,
                          *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        return await super().get_updates(offset, UPDATES_PER_FETCH if limit is None else limit, *args, **kwargs)


class TelegramAdapter:
    platform = Platform.TELEGRAM

    def __init__(
        self,
        token: str,
        *,
        base_url: str,
        replies: ReplyQueue,
        webhook_url: str = "",
        webhook_secret: str = "",
        poll_timeout: int = 30,
        command_descriptions: dict[str, str] | None = None,
        per_chat_interval: float = 1.05,
    ) -> None:
        self._replies = replies
        # One message per second per chat: the second request of a multi-part send (next chunk,
        # or the pin after the message) waits this long, so it cannot draw a 429 that would make
        # the engine retry the whole item and post the first part twice.
        self._pace = per_chat_interval
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        self._poll_timeout = poll_timeout
        self._commands = command_descriptions or {}
        bot = _SmallBatchBot(
            token,
            base_url=base_url,
            base_file_url=base_url.replace("/bot", "/file/bot"),
            request=HTTPXRequest(connection_pool_size=256),
            get_updates_request=HTTPXRequest(connection_pool_size=1),
        )
        builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder().bot(bot).concurrent_updates(True)
        )
        if webhook_url:
            builder = builder.updater(None)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.application.add_handler(MessageHandler(filters.TEXT, self._on_message))
        self.application.add_handler(CallbackQueryHandler(self._on_button))
        self.application.add_error_handler(self._on_error)

    @property
    def bot(self) -> Any:
        return self.application.bot

    # ---------------------------------------------------------------- lifetime

    async def start(self) -> None:
        app = self.application
        await app.initialize()
        await app.start()
        if self._commands:
            try:
                await app.bot.set_my_commands([BotCommand(c, d[:256]) for c, d in self._commands.items()])
            except TelegramError as exc:
                log.warning("could not set the command list", extra={"error": str(exc)})
        if self._webhook_url:
            await app.bot.set_webhook(self._webhook_url, secret_token=self._webhook_secret or None,
                                      allowed_updates=["message", "callback_query"])
        else:
            await app.bot.delete_webhook()
            assert app.updater is not None
            await app.updater.start_polling(timeout=self._poll_timeout, allowed_updates=["message", "callback_query"])
        log.info("telegram connected", extra={"bot": app.bot.username, "mode": "webhook" if self._webhook_url
                                              else "polling"})

    async def stop(self) -> None:
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    # ---------------------------------------------------------------- webhook

    async def webhook(self, request: web.Request) -> web.Response:
        """POST handler for the app's web server."""
        given = request.headers.get(SECRET_HEADER, "")
        if self._webhook_secret and not hmac.compare_digest(given.encode(), self._webhook_secret.encode()):
            return web.json_response({"error": "wrong secret token"}, status=403)
        try:
            data = await request.json()
            update = Update.de_json(data, self.application.bot)
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "the body is not a Telegram update"}, status=400)
        if update is not None:
            await self.application.update_queue.put(update)
        return web.json_response({"ok": True})

    # ---------------------------------------------------------------- incoming

    @staticmethod
    def _incoming(update: Update, text: str) -> Incoming | None:
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None:
            return None
        return Incoming(
            chat=ChatRef(Platform.TELEGRAM, str(chat.id)),
            user=UserRef(Platform.TELEGRAM, str(user.id)),
            text=text,
            is_group=chat.type in GROUP_TYPES,
            user_name=user.full_name,
            language_hint=user.language_code,
        )

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or not message.text:
            return
        text = message.text.strip()
        chat = update.effective_chat
        if chat is not None and chat.type in GROUP_TYPES and not text.startswith("/"):
            return  # in groups only commands are for the bot
        if text.startswith("/"):
            head, _, rest = text[1:].partition(" ")
            command, _, addressee = head.partition("@")
            if addressee and addressee.lower() != (self.application.bot.username or "").lower():
                return  # /cmd@otherbot
            text = f"{command} {rest}".strip()
        incoming = self._incoming(update, text)
        if incoming is not None:
            await self._replies.handle(incoming)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        try:
            await query.answer()
        except TelegramError as exc:
            log.info("callback answer failed", extra={"error": str(exc)})
        incoming = self._incoming(update, query.data or "")
        if incoming is not None:
            await self._replies.handle(incoming)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update failed", extra={"error": repr(context.error)})

    # ---------------------------------------------------------------- outgoing (delivery.Sender)

    async def _send_one(self, chat_id: str, part: TelegramText, reply_to: str | None = None) -> str:
        # A root deleted meanwhile must not fail the message: it is then sent as a plain one.
        reply = ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True) if reply_to else None
        message = await self.application.bot.send_message(
            chat_id=int(chat_id),
            text=part.text,
            parse_mode=ParseMode.HTML,
            reply_markup=_keyboard(part.buttons),
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            reply_parameters=reply,
        )
        return str(message.message_id)

    async def _send_parts(self, item: OutboxItem, reply_to: str | None = None) -> list[str]:
        ids: list[str] = []
        with _mapped_errors():
            for part in render(item.outgoing.message):
                if ids:
                    await asyncio.sleep(self._pace)
                ids.append(await self._send_one(item.outgoing.chat.chat_id, part, reply_to))
        return ids

    async def send(self, item: OutboxItem) -> str:
        return (await self._send_parts(item))[-1]

    async def send_in_thread(self, item: OutboxItem, thread: ChatThread | None) -> tuple[str, ChatThread]:
        """Telegram has no threads in ordinary chats: the later messages reply to the first."""
        ids = await self._send_parts(item, thread.root_message_id if thread is not None else None)
        return ids[-1], thread or ChatThread(ids[0])

    async def put_pinned(self, item: OutboxItem, existing: str | None) -> str:
        chat_id = item.outgoing.chat.chat_id
        part = render(item.outgoing.message)[0]
        with _mapped_errors():
            if existing is not None:
                try:
                    await self.application.bot.edit_message_text(
                        chat_id=int(chat_id), message_id=int(existing), text=part.text, parse_mode=ParseMode.HTML,
                        link_preview_options=LinkPreviewOptions(is_disabled=True),
                    )
                    return existing
                except BadRequest as exc:
                    if "not modified" in exc.message.lower():
                        return existing
                    if "message to edit not found" not in exc.message.lower():
                        raise
            message_id = await self._send_one(chat_id, part)
        # The message is out: from here on nothing may fail the item, or a retry would post it again.
        await asyncio.sleep(self._pace)
        for _ in range(2):
            try:
                await self.application.bot.pin_chat_message(int(chat_id), int(message_id), disable_notification=True)
                break
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
            except TelegramError as exc:
                log.warning("cannot pin (the bot needs the right to pin)", extra={"chat": chat_id,
                                                                                 "error": exc.message})
                break
        return message_id


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """python-telegram-bot's exceptions as the delivery engine's outcomes."""
    try:
        yield
    except RetryAfter as exc:
        # Telegram's 429 does not say which limit it was. The limiter keeps every chat under its
        # own (1 a second, 20 a minute in groups), so one that still comes is most likely the bot's
        # flood control: every chat waits, or the next sends would only draw more 429s.
        raise RateLimited(_seconds(exc.retry_after), whole_platform=True, detail=exc.message) from exc
    except Forbidden as exc:
        raise PermanentFailure(exc.message) from exc
    except ChatMigrated as exc:
        raise PermanentFailure(f"the group became supergroup {exc.new_chat_id}") from exc
    except BadRequest as exc:
        if any(marker in exc.message.lower() for marker in _GONE):
            raise PermanentFailure(exc.message) from exc
        raise MessageRejected(exc.message) from exc
    except (TimedOut, NetworkError, TelegramError) as exc:
        raise TemporaryFailure(str(exc)) from exc
