"""The fake Telegram Bot API of tests/fakes/telegram_api.py, driven by the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes
from telegram.warnings import PTBDeprecationWarning

from tests.fakes.telegram_api import NOT_MODIFIED, FakeTelegram, parse_html, utf16_len

USER = 1001
OTHER_USER = 1002
GROUP = -4001  # a basic group
SUPERGROUP = -1001234567890

# RetryAfter's own __init__ reads the deprecated int-valued retry_after.
pytestmark = pytest.mark.filterwarnings("ignore:.*`retry_after`.*:telegram.warnings.PTBDeprecationWarning")


def retry_after_seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is an int (with a deprecation warning) or, with PTB_TIMEDELTA=true, a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """A fake without the per-chat limit in the way."""
    async with FakeTelegram(per_chat_per_second=1_000_000) as tg:
        yield tg


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url) as b:
        yield b


def _bot_for(tg: FakeTelegram) -> Bot:
    return Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url)


# ---------------------------------------------------------------------------------------------------
# Basics


async def test_bot_initializes_against_the_fake(fake: FakeTelegram, bot: Bot) -> None:
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/bot"
    assert fake.base_file_url == f"http://127.0.0.1:{fake.port}/file/bot"
    assert bot.username == "floorbridge_test_bot"
    assert bot.id == 123456
    me = await bot.get_me()
    assert me.is_bot and me.username == "floorbridge_test_bot"
    assert fake.requests["getMe"] == 2  # Bot.initialize asked once already


async def test_ptb_posts_form_urlencoded_with_json_encoded_values(fake: FakeTelegram, bot: Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Agenda", callback_data="agenda")]])
    await bot.send_message(USER, "hi", reply_markup=markup, disable_notification=True)
    call = fake.calls[-1]
    assert (call.method, call.http_method, call.status) == ("sendMessage", "POST", 200)
    assert call.content_type == "application/x-www-form-urlencoded"
    # strings go as they are, everything else JSON-encoded; the fake decodes them
    assert call.params["chat_id"] == str(USER)
    assert call.params["disable_notification"] == "true"
    assert call.params["reply_markup"] == {"inline_keyboard": [[{"text": "Agenda", "callback_data": "agenda"}]]}


async def test_send_message_is_delivered_and_recorded(fake: FakeTelegram, bot: Bot) -> None:
    fake.push_message(SUPERGROUP, USER, "hello", chat_type="supergroup", title="Plenary")  # message 1
    markup = InlineKeyboardMarkup(
        [[InlineKeyboardButton("Follow", callback_data="follow:7"), InlineKeyboardButton("Web", url="https://un.org")]]
    )
    before = time.monotonic()
    message = await bot.send_message(
        SUPERGROUP,
        "<b>Item 7</b> starts in <i>Room XX</i> &lt;now&gt;",
        parse_mode="HTML",
        reply_markup=markup,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        disable_notification=True,
        reply_parameters=ReplyParameters(message_id=1),
        message_thread_id=5,
    )
    assert message.message_id == 2
    assert message.chat.id == SUPERGROUP and message.chat.type == "supergroup" and message.chat.title == "Plenary"
    assert message.from_user is not None and message.from_user.id == bot.id and message.from_user.is_bot
    assert message.text == "Item 7 starts in Room XX <now>"
    assert message.entities == (
        MessageEntity(MessageEntity.BOLD, 0, 6),
        MessageEntity(MessageEntity.ITALIC, 17, 7),
    )
    assert message.reply_markup == markup
    assert message.link_preview_options == LinkPreviewOptions(is_disabled=True)
    assert message.reply_to_message is not None and message.reply_to_message.text == "hello"
    assert message.message_thread_id == 5 and message.is_topic_message

    sent = fake.sent[-1]
    assert (sent.method, sent.chat_id, sent.message_id, sent.parse_mode) == ("sendMessage", SUPERGROUP, 2, "HTML")
    assert sent.text == "<b>Item 7</b> starts in <i>Room XX</i> &lt;now&gt;"
    assert sent.plain_text == "Item 7 starts in Room XX <now>"
    assert sent.reply_markup == markup.to_dict()
    assert sent.params["disable_notification"] == "true"
    assert sent.params["link_preview_options"] == {"is_disabled": True}
    assert sent.params["reply_parameters"] == {"message_id": 1}
    assert before <= sent.at <= time.monotonic()
    assert fake.messages_in(SUPERGROUP) == ["Item 7 starts in Room XX <now>"]  # the user's message is not the bot's


async def test_message_ids_count_per_chat(fake: FakeTelegram, bot: Bot) -> None:
    ids = [(await bot.send_message(chat, "x")).message_id for chat in (USER, USER, OTHER_USER, USER)]
    assert ids == [1, 2, 1, 3]


async def test_reply_to_a_missing_message_is_refused(bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(USER, "x", reply_parameters=ReplyParameters(message_id=99))
    message = await bot.send_message(
        USER, "x", reply_parameters=ReplyParameters(message_id=99, allow_sending_without_reply=True)
    )
    assert message.reply_to_message is None


# ---------------------------------------------------------------------------------------------------
# Flood control


async def test_second_send_to_the_same_chat_within_a_second_is_refused() -> None:
    async with FakeTelegram() as tg, _bot_for(tg) as bot:
        await bot.send_message(USER, "first")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "second")
        assert retry_after_seconds(caught.value) == 1
        assert str(caught.value) in (
            "Flood control exceeded. Retry in 1 seconds",  # default
            "Flood control exceeded. Retry in 0:00:01",  # PTB_TIMEDELTA=true
        )
        assert tg.messages_in(USER) == ["first"]  # refused, not delivered
        assert [s.text for s in tg.sent] == ["first"]
        assert tg.http_429 == 1
        assert tg.requests["sendMessage"] == 2  # PTB's Bot does not retry by itself
        await bot.send_message(OTHER_USER, "another chat is fine")

        await asyncio.sleep(1.0)
        await bot.send_message(USER, "second")
        assert tg.messages_in(USER) == ["first", "second"]


async def test_retry_after_type_depends_on_ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeTelegram() as tg, _bot_for(tg) as bot:
        await bot.send_message(USER, "first")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "second")
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    with pytest.warns(PTBDeprecationWarning):
        assert caught.value.retry_after == 1
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    assert caught.value.retry_after == timedelta(seconds=1)


async def test_edits_pins_and_deletes_count_against_the_chat_limit() -> None:
    async with FakeTelegram() as tg, _bot_for(tg) as bot:
        message = await bot.send_message(USER, "v1")
        for call in (
            bot.edit_message_text("v2", USER, message.message_id),
            bot.pin_chat_message(USER, message.message_id),
            bot.delete_message(USER, message.message_id),
        ):
            with pytest.raises(RetryAfter):
                await call
        assert tg.messages_in(USER) == ["v1"] and tg.pinned == {}
        assert tg.http_429 == 3


async def test_group_limit_is_twenty_a_minute() -> None:
    async with FakeTelegram(per_chat_per_second=1_000_000) as tg, _bot_for(tg) as bot:
        for n in range(20):
            await bot.send_message(GROUP, f"notice {n}")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(GROUP, "one too many")
        assert 59 <= retry_after_seconds(caught.value) <= 60
        assert len(tg.messages_in(GROUP)) == 20
        await bot.send_message(GROUP - 1, "another group is fine")
        await bot.send_message(USER, "private chats have no minute limit")
        assert tg.http_429 == 1


async def test_global_limit_thirty_a_second() -> None:
    async with FakeTelegram() as tg, _bot_for(tg) as bot:
        results = await asyncio.gather(
            *(bot.send_message(USER + n, f"n{n}") for n in range(31)), return_exceptions=True
        )
        delivered = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(delivered) == 30 and len(tg.sent) == 30
        assert len(refused) == 1 and isinstance(refused[0], RetryAfter)
        assert retry_after_seconds(refused[0]) == 1
        assert tg.http_429 == 1
        assert tg.requests["sendMessage"] == 31


async def test_the_429_body_is_telegrams(fake: FakeTelegram) -> None:
    fake.per_chat_per_second = 1
    async with aiohttp.ClientSession() as http:
        url = f"{fake.api_url}/sendMessage"
        async with http.post(url, json={"chat_id": USER, "text": "a"}) as response:
            assert response.status == 200
        async with http.post(url, json={"chat_id": USER, "text": "b"}) as response:
            assert response.status == 429
            assert await response.json() == {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            }


# ---------------------------------------------------------------------------------------------------
# Failures of chats


async def test_blocked_kicked_and_unknown_chats(fake: FakeTelegram, bot: Bot) -> None:
    fake.block(USER)
    with pytest.raises(Forbidden) as forbidden:
        await bot.send_message(USER, "x")
    assert forbidden.value.message == "Forbidden: bot was blocked by the user"

    fake.kick(GROUP)
    with pytest.raises(Forbidden, match="bot was kicked from the group chat"):
        await bot.send_message(GROUP, "x")
    fake.kick(SUPERGROUP)
    with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
        await bot.send_message(SUPERGROUP, "x")

    fake.forget_chat(OTHER_USER)
    with pytest.raises(BadRequest) as not_found:
        await bot.send_message(OTHER_USER, "x")
    # PTB strips "Bad Request: " and capitalizes what is left
    assert not_found.value.message == "Chat not found"
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.get_chat(OTHER_USER)

    assert fake.sent == []
    fake.restore_chat(USER)
    await bot.send_message(USER, "back")
    assert fake.messages_in(USER) == ["back"]


async def test_my_chat_member_updates_block_and_unblock(fake: FakeTelegram, bot: Bot) -> None:
    fake.push_my_chat_member(USER, USER, old_status="member", new_status="kicked")
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot.send_message(USER, "x")
    fake.push_my_chat_member(USER, USER, old_status="kicked", new_status="member")
    await bot.send_message(USER, "x")
    updates = await bot.get_updates()
    change = updates[0].my_chat_member
    assert change is not None and change.new_chat_member.status == "kicked"
    assert change.new_chat_member.user.id == bot.id


# ---------------------------------------------------------------------------------------------------
# Text validation


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<b>unclosed", "Can't parse entities: can't find end tag corresponding to start tag \"b\""),
        ("<div>block</div>", 'Can\'t parse entities: unsupported start tag "div" at byte offset 0'),
        ("1 < 2", 'Can\'t parse entities: unsupported start tag "" at byte offset 2'),
        ("<b>x</i>", 'Can\'t parse entities: unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<span>x</span>", 'Can\'t parse entities: tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("Q&A", 'Can\'t parse entities: unescaped "&" at byte offset 1; write &amp; (strict fake)'),
    ],
)
async def test_malformed_html_is_refused(bot: Bot, fake: FakeTelegram, text: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(USER, text, parse_mode="HTML")
    assert caught.value.message == message
    assert fake.sent == []


async def test_html_that_telegram_accepts(bot: Bot) -> None:
    text = (
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>"
        '<span class="tg-spoiler">p</span><tg-spoiler>q</tg-spoiler><a href="https://un.org/?a=1&amp;b=2">a</a>'
        '<code>c</code><pre><code class="language-python">x</code></pre><blockquote>z</blockquote>'
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> &lt;&gt;&amp;&quot;&#39;&#x263A;'
    )
    message = await bot.send_message(USER, text, parse_mode="HTML")
    assert message.text == "bsieunskdpqacxz👍 <>&\"'☺"
    kinds = [(e.type, e.offset, e.length) for e in message.entities]
    assert ("text_link", 11, 1) in kinds and ("pre", 13, 1) in kinds and ("custom_emoji", 15, 2) in kinds
    assert message.entities[11].url == "https://un.org/?a=1&b=2"
    assert message.entities[13].language == "python"


async def test_markdown_v2_needs_escaping(bot: Bot) -> None:
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(USER, "Session 3 ends at 12.30", parse_mode="MarkdownV2")
    assert caught.value.message == (
        "Can't parse entities: character '.' is reserved and must be escaped with the preceding '\\'"
    )
    with pytest.raises(BadRequest, match="Can't parse entities: can't find end of bold entity at byte offset 0"):
        await bot.send_message(USER, "*open", parse_mode="MarkdownV2")
    message = await bot.send_message(
        USER, r"*Session 3* ends at 12\.30 [info](https://un.org)", parse_mode="MarkdownV2"
    )
    assert message.text == "Session 3 ends at 12.30 info"
    assert [e.type for e in message.entities] == ["bold", "text_link"]


async def test_empty_text_is_refused(bot: Bot) -> None:
    for text, parse_mode in (("", None), ("   \n", None), ("<b></b>", "HTML")):
        with pytest.raises(BadRequest) as caught:
            await bot.send_message(USER, text, parse_mode=parse_mode)
        assert caught.value.message == "Message text is empty"


async def test_length_is_counted_in_utf16_after_parsing(bot: Bot, fake: FakeTelegram) -> None:
    await bot.send_message(USER, "x" * 4096)
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(USER, "x" * 4097)
    assert caught.value.message == "Message is too long"
    # "&amp;" is one character once parsed; tags are nothing
    await bot.send_message(USER, "<b>" + "&amp;" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(USER, "&amp;" * 4097, parse_mode="HTML")
    # an emoji outside the BMP counts twice
    assert utf16_len("😀") == 2
    await bot.send_message(USER, "😀" * 2048)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(USER, "😀" * 2048 + "x")
    assert [len(t) for t in fake.messages_in(USER)] == [4096, 4096, 2048]


def test_parse_html_reports_byte_offsets() -> None:
    assert parse_html("é <b>x</b>") == ("é x", [{"type": "bold", "offset": 2, "length": 1}])
    with pytest.raises(ValueError, match='Unsupported start tag "p" at byte offset 3'):
        parse_html("é <p>")


# ---------------------------------------------------------------------------------------------------
# Editing, pinning, deleting


async def test_edit_message_text(bot: Bot, fake: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Vote", callback_data="vote")]])
    message = await bot.send_message(USER, "Item 7: <b>open</b>", parse_mode="HTML", reply_markup=keyboard)
    edited = await bot.edit_message_text(
        "Item 7: <b>closed</b>", USER, message.message_id, parse_mode="HTML", reply_markup=keyboard
    )
    assert not isinstance(edited, bool)
    assert edited.text == "Item 7: closed" and edited.edit_date is not None
    assert fake.messages_in(USER) == ["Item 7: closed"]
    assert fake.sent[-1].method == "editMessageText"

    with pytest.raises(BadRequest) as same:
        await bot.edit_message_text(
            "Item 7: <b>closed</b>", USER, message.message_id, parse_mode="HTML", reply_markup=keyboard
        )
    assert same.value.message == NOT_MODIFIED.removeprefix("Bad Request: ").capitalize()
    # the same text without the keyboard is a change: it removes the keyboard
    plain = await bot.edit_message_text("Item 7: <b>closed</b>", USER, message.message_id, parse_mode="HTML")
    assert not isinstance(plain, bool) and plain.reply_markup is None

    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", USER, 999)
    fake.push_message(USER, USER, "mine")
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("x", USER, 2)
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await bot.edit_message_text("<b>x", USER, message.message_id, parse_mode="HTML")


async def test_pin_unpin_and_delete(bot: Bot, fake: FakeTelegram) -> None:
    first = await bot.send_message(GROUP, "agenda")
    second = await bot.send_message(GROUP, "speakers")
    assert await bot.pin_chat_message(GROUP, first.message_id, disable_notification=True)
    assert await bot.pin_chat_message(GROUP, second.message_id)
    assert fake.pinned == {GROUP: second.message_id}
    chat = await bot.get_chat(GROUP)
    assert chat.pinned_message is not None and chat.pinned_message.text == "speakers"
    assert await bot.unpin_chat_message(GROUP, second.message_id)
    assert fake.pinned == {GROUP: first.message_id}
    assert await bot.delete_message(GROUP, first.message_id)
    assert fake.pinned == {} and fake.messages_in(GROUP) == ["speakers"]
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(GROUP, first.message_id)
    with pytest.raises(BadRequest, match="Message to pin not found"):
        await bot.pin_chat_message(GROUP, 99)
    assert [s.method for s in fake.sent] == [
        "sendMessage",
        "sendMessage",
        "pinChatMessage",
        "pinChatMessage",
        "unpinChatMessage",
        "deleteMessage",
    ]


async def test_get_chat(bot: Bot, fake: FakeTelegram) -> None:
    fake.push_message(USER, USER, "hi", first_name="Ana", username="ana_un")
    private = await bot.get_chat(USER)
    assert (private.type, private.first_name, private.username) == ("private", "Ana", "ana_un")
    group = await bot.get_chat(GROUP)
    assert group.type == "group" and group.title == f"Group {GROUP}"
    assert (await bot.get_chat("@ana_un")).id == USER


async def test_commands(bot: Bot, fake: FakeTelegram) -> None:
    assert await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("agenda", "Today's agenda")])
    assert await bot.set_my_commands([BotCommand("start", "Démarrer")], language_code="fr")
    assert await bot.set_my_commands([BotCommand("chair", "Chair tools")], scope=BotCommandScopeChat(USER))
    assert [c.command for c in await bot.get_my_commands()] == ["start", "agenda"]
    assert [c.description for c in await bot.get_my_commands(language_code="fr")] == ["Démarrer"]
    assert [c.command for c in await bot.get_my_commands(scope=BotCommandScopeChat(USER))] == ["chair"]
    assert fake.commands({"type": "chat", "chat_id": USER}) == [{"command": "chair", "description": "Chair tools"}]
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


# ---------------------------------------------------------------------------------------------------
# Updates


async def test_get_updates_long_polls_and_confirms(bot: Bot, fake: FakeTelegram) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=0) == ()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await fake.wait_for(lambda: fake.requests["getUpdates"] == 2)
    await asyncio.sleep(0.1)
    assert not poll.done()  # held open
    pushed = fake.push_message(USER, USER, "/start hello", first_name="Ana", username="ana_un")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 2
    assert [u.update_id for u in updates] == [pushed["update_id"]]
    message = updates[0].message
    assert message is not None and message.text == "/start hello"
    assert message.entities == (MessageEntity(MessageEntity.BOT_COMMAND, 0, 6),)
    assert message.from_user is not None and message.from_user.language_code == "en"
    assert message.from_user.username == "ana_un"

    # not confirmed yet: delivered again; confirming with offset drops it
    assert [u.update_id for u in await bot.get_updates()] == [pushed["update_id"]]
    assert await bot.get_updates(offset=pushed["update_id"] + 1, timeout=0) == ()
    assert fake.pending_updates == []

    # the timeout is honoured when nothing comes
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 2


async def test_get_updates_limit_negative_offset_and_allowed_updates(bot: Bot, fake: FakeTelegram) -> None:
    ids = [fake.push_message(USER, USER, f"m{n}")["update_id"] for n in range(5)]
    assert [u.update_id for u in await bot.get_updates(limit=2)] == ids[:2]
    assert [u.update_id for u in await bot.get_updates(offset=-1)] == ids[-1:]
    assert [u["update_id"] for u in fake.pending_updates] == ids[-1:]

    await bot.get_updates(offset=ids[-1] + 1, allowed_updates=["callback_query"])
    fake.push_message(USER, USER, "ignored")
    sent = await bot.send_message(USER, "Vote?")
    query = fake.push_callback(USER, USER, "yes", sent.message_id)
    assert [u.update_id for u in await bot.get_updates()] == [query["update_id"]]


async def test_a_newer_get_updates_ends_a_waiting_one(bot: Bot, fake: FakeTelegram) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await fake.wait_for(lambda: fake.requests["getUpdates"] == 1)
    async with _bot_for(fake) as second_bot:  # another process polling with the same token
        second = asyncio.create_task(second_bot.get_updates(timeout=5))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await asyncio.wait_for(first, 2)
        fake.push_message(USER, USER, "hi")
        assert len(await asyncio.wait_for(second, 2)) == 1


async def test_application_polling_runs_a_command_handler(fake: FakeTelegram) -> None:
    seen: asyncio.Queue[Update] = asyncio.Queue()

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_user is not None
        await update.effective_message.reply_text(f"Welcome, {update.effective_user.first_name}")
        seen.put_nowait(update)

    app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).base_file_url(fake.base_file_url).build()
    app.add_handler(CommandHandler("start", start))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(timeout=5)
    try:
        await fake.wait_for(lambda: fake.requests["getUpdates"] >= 1)
        fake.push_message(USER, USER, "/start", first_name="Ana")
        fake.push_message(GROUP, OTHER_USER, "/start@floorbridge_test_bot", chat_type="group", title="Plenary")
        fake.push_message(GROUP, OTHER_USER, "/start@some_other_bot", chat_type="group", title="Plenary")
        first = await asyncio.wait_for(seen.get(), 5)
        second = await asyncio.wait_for(seen.get(), 5)
        assert first.effective_chat is not None and first.effective_chat.id == USER
        assert second.effective_chat is not None and second.effective_chat.title == "Plenary"
        await fake.wait_for(lambda: fake.messages_in(USER) == ["Welcome, Ana"])
        await fake.wait_for(lambda: fake.messages_in(GROUP) == ["Welcome, Delegate"])
        reply = fake.message(GROUP, 3)
        assert reply is not None and reply["reply_to_message"]["message_id"] == 1  # PTB quotes in groups
        await fake.wait_for(lambda: not fake.pending_updates)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert seen.empty()  # the command for the other bot was not handled
    assert fake.requests["deleteWebhook"] == 1  # start_polling always deletes the webhook first


async def test_callback_query_round_trip(fake: FakeTelegram) -> None:
    answered = asyncio.Event()

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data == "follow:7"
        await query.answer("Following item 7")
        await query.edit_message_text("You follow item 7")
        answered.set()

    app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).build()
    app.add_handler(CallbackQueryHandler(on_button))
    async with app:
        assert app.updater is not None
        await app.start()
        await app.updater.start_polling(timeout=5)
        sent = await app.bot.send_message(
            USER, "Follow?", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Yes", "follow:7")]])
        )
        update = fake.push_callback(USER, USER, "follow:7", sent.message_id)
        await asyncio.wait_for(answered.wait(), 5)
        await app.updater.stop()
        await app.stop()
    assert [(a.callback_query_id, a.text, a.show_alert) for a in fake.callback_answers] == [
        (update["callback_query"]["id"], "Following item 7", False)
    ]
    assert fake.messages_in(USER) == ["You follow item 7"]
    async with _bot_for(fake) as bot:
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_callback_query(update["callback_query"]["id"])


# ---------------------------------------------------------------------------------------------------
# Webhook


async def test_webhook_delivery_with_secret_and_retries(bot: Bot, fake: FakeTelegram) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(status=500 if len(received) == 1 else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        url = f"http://127.0.0.1:{port}/hook"
        assert await bot.set_webhook(url, secret_token="s3cret-token", drop_pending_updates=True)
        with pytest.raises(Conflict) as conflict:
            await bot.get_updates()
        assert conflict.value.message == (
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the "
            "webhook first"
        )
        pushed = fake.push_message(USER, USER, "/start")
        await fake.wait_for(lambda: len(received) == 2)
        assert received[0] == received[1] == ("s3cret-token", pushed)
        assert [(a.status, a.error) for a in fake.webhook_attempts] == [
            (500, "Wrong response from the webhook: 500 Internal Server Error"),
            (200, None),
        ]
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"

        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
        fake.push_message(USER, USER, "polled")
        updates = await bot.get_updates()
        assert updates[0].message is not None and updates[0].message.text == "polled"
        assert len(received) == 2
    finally:
        await runner.cleanup()


async def test_webhook_retries_while_unreachable(bot: Bot, fake: FakeTelegram) -> None:
    with socketless_port() as port:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook")
        fake.push_message(USER, USER, "hi")
        await fake.wait_for(lambda: len(fake.webhook_attempts) >= 2)
    assert all(a.error == "Connection refused" and a.status is None for a in fake.webhook_attempts)
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1 and info.last_error_message == "Connection refused"


@contextlib.contextmanager
def socketless_port() -> Iterator[int]:
    """A port nothing listens on (bound but not listening, so nobody else takes it meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------------
# Outages and protocol errors


async def test_outage_refuse_then_recover(bot: Bot, fake: FakeTelegram) -> None:
    await bot.send_message(USER, "before")  # leaves a keep-alive connection, which the outage drops
    fake.set_outage("refuse")
    # httpx first tries the dropped keep-alive connection (httpx.ReadError), then connects anew
    with pytest.raises(NetworkError) as stale:
        await bot.send_message(USER, "during")
    assert stale.value.message in ("httpx.ReadError: ", "httpx.RemoteProtocolError: Server disconnected")
    with pytest.raises(NetworkError) as caught:
        await bot.send_message(USER, "during")
    assert not isinstance(caught.value, TimedOut)
    assert caught.value.message == "httpx.ConnectError: All connection attempts failed"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.get(f"{fake.api_url}/getMe")
    fake.set_outage(None)
    await bot.send_message(USER, "after")
    assert fake.messages_in(USER) == ["before", "after"]


async def test_outage_502_is_a_network_error(bot: Bot, fake: FakeTelegram) -> None:
    fake.set_outage("502")
    with pytest.raises(NetworkError) as caught:
        await bot.send_message(USER, "x")
    assert type(caught.value) is NetworkError
    assert caught.value.message.startswith("Bad Gateway (502). Parsing the server response b'<html>")
    async with aiohttp.ClientSession() as http, http.get(f"{fake.api_url}/getMe") as response:
        assert response.status == 502 and response.content_type == "text/html"
        assert "<h1>502 Bad Gateway</h1>" in await response.text()
    fake.set_outage(None)
    await bot.send_message(USER, "x")
    assert fake.messages_in(USER) == ["x"]


async def test_outage_hang_times_out(bot: Bot, fake: FakeTelegram) -> None:
    fake.set_outage("hang")
    with pytest.raises(TimedOut):
        await bot.send_message(USER, "x", read_timeout=0.3)
    fake.set_outage(None)
    await bot.send_message(USER, "y")
    assert fake.messages_in(USER) == ["y"]


async def test_wrong_token_and_unknown_method(fake: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("999:wrong", base_url=fake.base_url):
            pass
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.base_url}999:wrong/getMe") as response:
            assert response.status == 401
            assert await response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(f"{fake.api_url}/noSuchMethod") as response:
            assert response.status == 404
            assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_get_json_and_multipart_requests_work(fake: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.api_url}/getme") as response:  # method names ignore case
            body = await response.json()
            assert body["ok"] is True and body["result"]["username"] == "floorbridge_test_bot"
        async with http.get(f"{fake.api_url}/sendMessage", params={"chat_id": str(USER), "text": "q"}) as response:
            assert (await response.json())["result"]["text"] == "q"
        markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
        async with http.post(
            f"{fake.api_url}/sendMessage", json={"chat_id": USER, "text": "j", "reply_markup": markup}
        ) as response:
            assert (await response.json())["result"]["reply_markup"] == markup
        form = aiohttp.FormData({"chat_id": str(USER), "text": "m", "reply_markup": json.dumps(markup)})
        form.add_field("document", b"bytes", filename="a.txt")
        async with http.post(f"{fake.api_url}/sendMessage", data=form) as response:
            assert (await response.json())["result"]["text"] == "m"
    assert [c.content_type for c in fake.calls] == [
        "",
        "",
        "application/json",
        "multipart/form-data",
    ]
    assert fake.messages_in(USER) == ["q", "j", "m"]


async def test_bad_inline_keyboard(bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(
            USER, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="x" * 65)]])
        )


async def test_wait_for_times_out(fake: FakeTelegram) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await fake.wait_for(lambda: fake.sent, timeout=0.2)
    assert time.monotonic() - started < 1
    later = asyncio.get_running_loop().call_later(0.05, fake.push_message, USER, USER, "hi")
    try:
        update = await fake.wait_for(lambda: next(iter(fake.pending_updates), None), timeout=2)
    finally:
        later.cancel()
    assert update is not None and update["message"]["text"] == "hi"
