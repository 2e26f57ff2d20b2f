"""A fake Telegram Bot API server for tests, spoken to by the real python-telegram-bot.

``FakeTelegram`` serves the Bot API over HTTP on 127.0.0.1 (a free port) with aiohttp and
answers in the real JSON shapes of https://core.telegram.org/bots/api::

    async with FakeTelegram() as tg:
        async with telegram.Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as bot:
            await bot.send_message(1001, "<b>Room XX</b> opens at 10:00", parse_mode="HTML")
        assert tg.messages_in(1001) == ["Room XX opens at 10:00"]

What it does like Telegram:

* ``/bot<token>/<method>`` with GET (query string) or POST (``application/json``,
  ``application/x-www-form-urlencoded`` or ``multipart/form-data``; python-telegram-bot 22 sends
  form-urlencoded, every non-string value JSON-encoded, and multipart only when uploading files).
  Method names are case-insensitive. A wrong token answers 401, an unknown method 404.
* Message text is parsed as Telegram parses it (``parse_mode`` HTML, MarkdownV2 and legacy Markdown,
  with tdlib's error texts, e.g. ``Bad Request: can't parse entities: Unsupported start tag "div"
  at byte offset 0``), trimmed, measured in UTF-16 code units (at most 4096) and answered with
  ``entities``. One deliberate difference: by default (``strict_html=True``) a bare ``&`` that does
  not start an entity (``&lt;``, ``&gt;``, ``&amp;``, ``&quot;``, ``&#NN;``, ``&#xNN;``) is refused
  in HTML, where real Telegram quietly keeps it — so that escaping bugs show in tests.
* Flood control on the message-changing methods in ``RATE_LIMITED_METHODS``: at most
  ``global_per_second`` in any sliding second, one per ``1 / per_chat_per_second`` seconds per chat and
  ``group_per_minute`` in any sliding minute per group (negative chat id). A refused call answers
  429 with ``parameters.retry_after`` (whole seconds, at least 1) and changes nothing.
* Replies (``reply_parameters`` or the older ``reply_to_message_id``): a missing message is refused
  unless ``allow_sending_without_reply``; ``reply_to_message`` is answered one level deep.
* ``getUpdates`` long polling (``offset``/``limit``/``timeout``/``allowed_updates``; a newer call
  ends a waiting one with 409 "terminated by other getUpdates request"), webhooks (POSTed in order,
  with ``X-Telegram-Bot-Api-Secret-Token``, retried until the webhook answers 2xx; getUpdates answers
  409 meanwhile).

Chats need no introduction: any id is a chat (positive: private, ids below -10**12: supergroup,
other negative ids: group) until ``forget_chat`` makes it unknown. ``block``/``kick``/``forget_chat``
and ``set_outage`` inject failures; ``push_message``/``push_callback``/``push_my_chat_member`` add
updates; ``sent``, ``messages_in``, ``pinned``, ``callback_answers``, ``webhook_attempts``,
``calls``, ``requests``, ``http_429`` and ``wait_for`` observe.

Not modelled: files, media, inline messages, admin rights, service messages for pins, automatic
detection of links/mentions in the bot's own text, replies in the webhook response body.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

__all__ = [
    "RATE_LIMITED_METHODS",
    "ApiCall",
    "CallbackAnswer",
    "FakeTelegram",
    "OutageMode",
    "Sent",
    "WebhookAttempt",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "utf16_len",
]

T = TypeVar("T")
JSON = dict[str, Any]
OutageMode = Literal["refuse", "502", "hang"] | None

MAX_MESSAGE_LENGTH = 4096
RATE_LIMITED_METHODS = frozenset({"sendMessage", "editMessageText", "pinChatMessage", "deleteMessage"})
SUPERGROUP_BELOW = -1_000_000_000_000  # ids of supergroups and channels look like -100xxxxxxxxxx

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
POLL_TERMINATED = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_BAD_BUTTON = "Bad Request: can't parse inline keyboard button: "
# Update kinds Telegram leaves out unless asked for by name in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


# --------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Sent:
    """One message operation the fake carried out (refused calls are not recorded here)."""

    method: str
    chat_id: int
    message_id: int | None
    text: str | None  # the text parameter as sent, before entity parsing
    parse_mode: str | None
    reply_markup: JSON | None
    at: float  # time.monotonic()
    params: JSON  # every request parameter, JSON-valued ones decoded
    plain_text: str | None = None  # the text as Telegram stores and shows it
    entities: tuple[JSON, ...] = ()


@dataclass(frozen=True)
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    at: float


@dataclass(frozen=True)
class WebhookAttempt:
    url: str
    update_id: int
    status: int | None  # HTTP status, None when no answer came
    error: str | None  # None when delivered
    secret_token: str | None
    at: float


@dataclass(frozen=True)
class ApiCall:
    """One HTTP request to ``/bot<token>/<method>`` and how it was answered."""

    method: str
    http_method: str
    content_type: str
    params: JSON
    status: int
    at: float


@dataclass
class _Chat:
    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    username: str | None = None

    def to_json(self) -> JSON:
        out: JSON = {"id": self.id, "type": self.type}
        if self.title is not None:
            out["title"] = self.title
        if self.first_name is not None:
            out["first_name"] = self.first_name
        if self.username is not None:
            out["username"] = self.username
        return out


@dataclass
class _Stored:
    chat_id: int
    message_id: int
    from_bot: bool
    message: JSON
    text: str
    entities: list[JSON]
    reply_markup: JSON | None


class _ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass
class _Reply:
    result: Any
    description: str | None = None


class EntityParseError(ValueError):
    """The text does not parse in its parse_mode; the message is tdlib's."""


# --------------------------------------------------------------------------------------------------
# Entity parsing, after tdlib's MessageEntity.cpp


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _is_space(c: str) -> bool:
    return c in " \t\r\n\v\f\0"


_HTML_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "span": "spoiler",
    "tg-spoiler": "spoiler", "code": "code", "pre": "pre",
}  # fmt: skip
_HTML_TAGS = frozenset({*_HTML_TYPES, "a", "tg-emoji", "blockquote"})


def _decode_entity(match: re.Match[str]) -> str | None:
    named, dec, hexa = match.groups()
    if named:
        return _NAMED[named]
    code = int(dec) if dec else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def _link_ok(url: str) -> bool:
    if not url or any(_is_space(c) for c in url):
        return False
    parts = urlsplit(url if "://" in url or url.startswith("tg:") else "http://" + url)
    if parts.scheme in ("tg", "ton"):
        return True
    return (parts.scheme in ("http", "https") and "." in (parts.hostname or "")) or parts.hostname == "localhost"


def parse_html(text: str, *, strict: bool = True) -> tuple[str, list[JSON]]:
    """Parse Telegram's HTML: the plain text and its entities (UTF-16 offsets).

    Raises EntityParseError with the description tdlib gives. ``strict`` also refuses a bare ``&``.
    """
    out: list[str] = []
    u16 = 0
    n = len(text)
    stack: list[tuple[str, str, int]] = []  # tag, argument, UTF-16 offset
    entities: list[JSON] = []
    languages: dict[int, str] = {}  # index in entities -> language of a code entity
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            match = _HTML_ENTITY.match(text, i)
            decoded = _decode_entity(match) if match else None
            if match and decoded is not None:
                out.append(decoded)
                u16 += utf16_len(decoded)
                i = match.end()
                continue
            if strict:
                raise EntityParseError(
                    f'Unescaped "&" at byte offset {_byte_offset(text, i)}; write &amp; (strict fake)'
                )
        if c != "<":
            out.append(c)
            u16 += utf16_len(c)
            i += 1
            continue
        begin = i
        begin_b = _byte_offset(text, begin)
        i += 1
        if i < n and text[i] == "/":
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {begin_b}")
            j = i + 1
            while j < n and not _is_space(text[j]) and text[j] != ">":
                j += 1
            end_name = text[i + 1 : j]
            while j < n and _is_space(text[j]):
                j += 1
            if j >= n or text[j] != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {begin_b}")
            tag, argument, start = stack[-1]
            if end_name and end_name != tag:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {begin_b}, expected "</{tag}>", found "</{end_name}>"'
                )
            stack.pop()
            i = j + 1
            length = u16 - start
            if length > 0:
                _html_entity(tag, argument, start, length, "".join(out), entities, languages)
            continue
        j = i
        while j < n and not _is_space(text[j]) and text[j] != ">":
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin_b}")
        tag = text[begin + 1 : j].lower()
        if tag not in _HTML_TAGS:
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin_b}')
        i = j
        argument = ""
        while True:
            while i < n and _is_space(text[i]):
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin_b}")
            if text[i] == ">":
                break
            name_begin = i
            while i < n and not _is_space(text[i]) and text[i] not in "=>":
                i += 1
            name = text[name_begin:i].lower()
            if not name:
                raise EntityParseError(f'Empty attribute name in the tag "{tag}" at byte offset {begin_b}')
            while i < n and _is_space(text[i]):
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin_b}")
            if text[i] != "=":  # an attribute without a value
                if tag == "blockquote" and name == "expandable":
                    argument = "expandable"
                continue
            i += 1
            while i < n and _is_space(text[i]):
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin_b}")
            if text[i] not in "'\"":
                token_begin = i
                while i < n and ((text[i].isascii() and text[i].isalnum()) or text[i] in ".-"):
                    i += 1
                value = text[token_begin:i].lower()
                if i < n and not _is_space(text[i]) and text[i] != ">":
                    raise EntityParseError(
                        f"Unexpected end of name token at byte offset {_byte_offset(text, token_begin)}"
                    )
            else:
                quote = text[i]
                i += 1
                chars: list[str] = []
                while i < n and text[i] != quote:
                    if text[i] == "&":
                        match = _HTML_ENTITY.match(text, i)
                        decoded = _decode_entity(match) if match else None
                        if match and decoded is not None:
                            chars.append(decoded)
                            i = match.end()
                            continue
                    chars.append(text[i])
                    i += 1
                if i < n:
                    i += 1
                value = "".join(chars)
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin_b}")
            if (tag == "a" and name == "href") or (tag == "tg-emoji" and name == "emoji-id"):
                argument = value
            elif tag == "code" and name == "class" and value.startswith("language-"):
                argument = value[len("language-") :]
            elif tag == "span" and name == "class" and value.startswith("tg-"):
                argument = value[len("tg-") :]
        if tag == "span" and argument != "spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin_b}')
        stack.append((tag, argument, u16))
        i += 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), entities


def _html_entity(
    tag: str, argument: str, offset: int, length: int, text_so_far: str, entities: list[JSON], languages: dict[int, str]
) -> None:
    entity: JSON = {"offset": offset, "length": length}
    if tag == "a":
        url = argument or _utf16_tail(text_so_far, length)
        if _link_ok(url):
            entities.append({"type": "text_link", **entity, "url": url})
        return
    if tag == "tg-emoji":
        if argument.isdigit():
            entities.append({"type": "custom_emoji", **entity, "custom_emoji_id": argument})
        return
    if tag == "blockquote":
        entities.append({"type": "expandable_blockquote" if argument == "expandable" else "blockquote", **entity})
        return
    if tag == "pre" and entities:
        last = entities[-1]
        if last["type"] == "code" and last["offset"] == offset and last["length"] == length:
            # <pre><code class="language-x">...</code></pre> is one pre entity with a language
            entities.pop()
            language = languages.pop(len(entities), "")
            entities.append({"type": "pre", **entity, **({"language": language} if language else {})})
            return
    if tag == "code" and argument:
        languages[len(entities)] = argument
    entities.append({"type": _HTML_TYPES[tag], **entity})


def _utf16_tail(text: str, units: int) -> str:
    encoded = text.encode("utf-16-le")
    return encoded[len(encoded) - 2 * units :].decode("utf-16-le", errors="replace")


_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
_MDV2_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
    "spoiler": "Spoiler", "text_link": "TextUrl", "code": "Code", "pre": "Pre", "pre_code": "PreCode",
    "custom_emoji": "CustomEmoji",
}  # fmt: skip


def parse_markdown_v2(text: str) -> tuple[str, list[JSON]]:
    """Parse MarkdownV2 like tdlib's parse_markdown_v2; raises EntityParseError."""
    out: list[str] = []
    u16 = 0
    n = len(text)
    # kind, argument, UTF-16 offset, byte offset of the markup, index in out
    stack: list[tuple[str, str, int, int, int]] = []
    entities: list[JSON] = []
    quote_start: int | None = None
    i = 0

    def reserved_error(ch: str) -> EntityParseError:
        return EntityParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")

    while i < n:
        c = text[i]
        in_code = bool(stack) and stack[-1][0] in ("code", "pre", "pre_code")
        if (i == 0 or text[i - 1] == "\n") and not in_code:
            if c == ">":
                if quote_start is None:
                    quote_start = u16
                i += 1
                continue
            if quote_start is not None:
                length = u16 - 1 - quote_start  # without the line break ending the quote
                if length > 0:
                    entities.append({"type": "blockquote", "offset": quote_start, "length": length})
                quote_start = None
        if c == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        reserved = "`" if in_code else _MDV2_RESERVED
        if c not in reserved:
            out.append(c)
            u16 += utf16_len(c)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        nxt2 = text[i + 2] if i + 2 < n else ""
        ends = False
        if stack:
            kind = stack[-1][0]
            ends = {
                "bold": c == "*",
                "italic": c == "_" and nxt != "_",
                "code": c == "`",
                "pre": c == "`" and nxt == "`" and nxt2 == "`",
                "pre_code": c == "`" and nxt == "`" and nxt2 == "`",
                "text_link": c == "]",
                "custom_emoji": c == "]",
                "underline": c == "_" and nxt == "_",
                "strikethrough": c == "~",
                "spoiler": c == "|" and nxt == "|",
            }[kind]
        if not ends:
            byte_at = _byte_offset(text, i)
            argument = ""
            if c == "_" and nxt == "_":
                kind = "underline"
                i += 1
            elif c == "_":
                kind = "italic"
            elif c == "*":
                kind = "bold"
            elif c == "~":
                kind = "strikethrough"
            elif c == "|" and nxt == "|":
                kind = "spoiler"
                i += 1
            elif c == "[":
                kind = "text_link"
            elif c == "!" and nxt == "[":
                kind = "custom_emoji"
                i += 1
            elif c == "`" and nxt == "`" and nxt2 == "`":
                i += 3
                kind = "pre"
                end = i
                while end < n and not _is_space(text[end]) and text[end] != "`":
                    end += 1
                if i != end and end < n and text[end] != "`":
                    kind = "pre_code"
                    argument = text[i:end]
                    i = end
                if i < n and text[i] in "\r\n":
                    i += 2 if i + 1 < n and text[i + 1] in "\r\n" and text[i] != text[i + 1] else 1
                i -= 1
            elif c == "`":
                kind = "code"
            else:
                raise reserved_error(c)
            stack.append((kind, argument, u16, byte_at, len(out)))
            i += 1
            continue
        kind, argument, start, _byte_at, out_at = stack.pop()
        skip = u16 == start
        entity: JSON = {"type": "pre" if kind == "pre_code" else kind, "offset": start, "length": u16 - start}
        if kind in ("underline", "spoiler"):
            i += 1
        elif kind in ("pre", "pre_code"):
            i += 2
        elif kind in ("text_link", "custom_emoji"):
            if nxt != "(":
                url = "".join(out[out_at:])
            else:
                i += 2
                url_begin = i
                chars: list[str] = []
                while i < n and text[i] != ")":
                    if text[i] == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
                        chars.append(text[i + 1])
                        i += 2
                        continue
                    chars.append(text[i])
                    i += 1
                if i >= n:
                    raise EntityParseError(f"Can't find end of a URL at byte offset {_byte_offset(text, url_begin)}")
                url = "".join(chars)
            if kind == "custom_emoji":
                match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
                if not match:
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                entity["custom_emoji_id"] = match.group(1)
            elif _link_ok(url):
                entity["url"] = url
            else:
                skip = True
        i += 1
        if skip:
            continue
        if kind == "pre_code":
            entity["language"] = argument
        entities.append(entity)
    if stack:
        kind, _argument, _start, byte_at, _out_at = stack[-1]
        raise EntityParseError(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {byte_at}")
    if quote_start is not None and u16 > quote_start:
        entities.append({"type": "blockquote", "offset": quote_start, "length": u16 - quote_start})
    return "".join(out), entities


def parse_markdown(text: str) -> tuple[str, list[JSON]]:
    """Parse legacy Markdown (parse_mode "Markdown") like tdlib's parse_markdown."""
    out: list[str] = []
    u16 = 0
    n = len(text)
    entities: list[JSON] = []
    kinds = {"_": "italic", "*": "bold", "`": "code", "[": "text_link"}
    i = 0
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        if c not in kinds:
            out.append(c)
            u16 += utf16_len(c)
            i += 1
            continue
        begin_b = _byte_offset(text, i)
        end_char = "]" if c == "[" else c
        kind = kinds[c]
        i += 1
        language = ""
        is_pre = c == "`" and text[i : i + 2] == "``"
        if is_pre:
            i += 2
            kind = "pre"
            end = i
            while end < n and not _is_space(text[end]) and text[end] != "`":
                end += 1
            if i != end and end < n and text[end] != "`":
                language = text[i:end]
                i = end
            if i < n and text[i] in "\r\n":
                i += 1
        start = u16
        out_at = len(out)
        while i < n and (text[i] != end_char or (is_pre and text[i : i + 3] != "```")):
            out.append(text[i])
            u16 += utf16_len(text[i])
            i += 1
        if i >= n:
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {begin_b}")
        i += 3 if is_pre else 1
        entity: JSON = {"type": kind, "offset": start, "length": u16 - start}
        if kind == "text_link":
            url = "".join(out[out_at:])
            if i < n and text[i] == "(":
                close = text.find(")", i)
                if close != -1:
                    url = text[i + 1 : close]
                    i = close + 1
            if not _link_ok(url):
                continue
            entity["url"] = url
        if language:
            entity["language"] = language
        if entity["length"] > 0:
            entities.append(entity)
    return "".join(out), entities


def _trim(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Drop leading and trailing white space as Telegram does, keeping the entities in place."""
    stripped = text.strip(" \t\r\n")
    if stripped == text:
        return text, sorted(entities, key=lambda e: (e["offset"], -e["length"]))
    lead = utf16_len(text[: len(text) - len(text.lstrip(" \t\r\n"))])
    size = utf16_len(stripped)
    fixed: list[JSON] = []
    for entity in entities:
        begin = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, size)
        if end > begin:
            fixed.append({**entity, "offset": begin, "length": end - begin})
    return stripped, sorted(fixed, key=lambda e: (e["offset"], -e["length"]))


_BOT_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")


def _command_entities(text: str) -> list[JSON]:
    entities: list[JSON] = []
    for match in _BOT_COMMAND.finditer(text):
        start = utf16_len(text[: match.start()])
        entities.append({"type": "bot_command", "offset": start, "length": utf16_len(match.group())})
    return entities


# --------------------------------------------------------------------------------------------------
# Request parameters


class _Params:
    """Request parameters as Telegram reads them: strings from forms, typed values from JSON."""

    def __init__(self, raw: JSON) -> None:
        self.raw = raw

    def present(self, name: str) -> bool:
        return self.raw.get(name) not in (None, "")

    def get_str(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value)

    def get_int(self, name: str) -> int | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise _ApiError(400, f"Bad Request: invalid {name} specified") from None

    def get_float(self, name: str) -> float | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _ApiError(400, f"Bad Request: invalid {name} specified") from None

    def get_bool(self, name: str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def get_json(self, name: str, what: str | None = None) -> Any:
        value = self.raw.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise _ApiError(400, f"Bad Request: can't parse {what or name} JSON object") from None
        return value

    def decoded(self) -> JSON:
        out = dict(self.raw)
        for key, value in out.items():
            if isinstance(value, str) and value[:1] in ("{", "["):
                with contextlib.suppress(ValueError):
                    out[key] = json.loads(value)
        return out


# --------------------------------------------------------------------------------------------------
# The server


class FakeTelegram:
    """A Telegram Bot API server on 127.0.0.1 for python-telegram-bot to talk to."""

    def __init__(
        self,
        *,
        token: str = "123456:TEST-token",
        username: str = "floorbridge_test_bot",
        global_per_second: int = 30,
        per_chat_per_second: float = 1,
        group_per_minute: int = 20,
        strict_html: bool = True,
        webhook_retry_delay: float = 0.05,
        webhook_timeout: float = 10.0,
    ) -> None:
        self.token = token
        self.username = username
        self.global_per_second = global_per_second
        self.per_chat_per_second = per_chat_per_second
        self.group_per_minute = group_per_minute
        self.strict_html = strict_html
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_timeout = webhook_timeout
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 123456

        # observation
        self.sent: list[Sent] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.webhook_attempts: list[WebhookAttempt] = []
        self.calls: list[ApiCall] = []
        self.requests: Counter[str] = Counter()
        self.http_429 = 0

        # state
        self._chats: dict[int, _Chat] = {}
        self._messages: dict[int, dict[int, _Stored]] = {}
        self._last_message_id: dict[int, int] = {}
        self._pins: dict[int, list[int]] = {}
        self._blocked: set[int] = set()
        self._kicked: set[int] = set()
        self._forgotten: set[int] = set()
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._open_callbacks: set[str] = set()
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._webhook_url: str | None = None
        self._webhook_secret: str | None = None
        self._webhook_allowed: list[str] | None = None
        self._webhook_max_connections = 40
        self._webhook_error: tuple[int, str] | None = None
        self._outage: OutageMode = None

        # flood control
        self._global_window: deque[float] = deque()
        self._group_windows: dict[int, deque[float]] = {}
        self._chat_last: dict[int, float] = {}

        # plumbing
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._port = 0
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._reopening: asyncio.Task[None] | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

        self._methods: dict[str, tuple[str, Callable[[_Params], Awaitable[Any]]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "logOut": self._true,
                "close": self._true,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "pinChatMessage": self._pin_chat_message,
                "unpinChatMessage": self._unpin_chat_message,
                "unpinAllChatMessages": self._unpin_all_chat_messages,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "getChat": self._get_chat,
                "sendChatAction": self._send_chat_action,
            }.items()
        }
        self.app = web.Application()
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        self.app.router.add_route("*", "/file/bot{token}/{path:.*}", self._handle_file)

    # ---------------------------------------------------------------------------------------------
    # Lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeTelegram is already started")
        self._closing.clear()
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = self._listen(0)
        self._port = sock.getsockname()[1]
        await self._serve(sock)
        self._session = aiohttp.ClientSession()
        self._webhook_task = asyncio.create_task(self._webhook_loop(), name="FakeTelegram webhook delivery")

    async def stop(self) -> None:
        self._closing.set()
        self._notify()
        if self._reopening is not None:
            with contextlib.suppress(Exception):
                await self._reopening
            self._reopening = None
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _listen(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        sock.setblocking(False)
        return sock

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """For ``Bot(base_url=...)``; python-telegram-bot appends the token."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    @property
    def api_url(self) -> str:
        """``base_url`` with the token: append ``/<method>``."""
        return f"{self.base_url}{self.token}"

    # ---------------------------------------------------------------------------------------------
    # Failure injection

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sends answer 403 "Forbidden: bot was blocked by the user"."""
        self._blocked.add(chat_id)

    def kick(self, chat_id: int) -> None:
        """The bot was removed from the group: sends answer 403 "... kicked from the group chat"."""
        self._kicked.add(chat_id)

    def forget_chat(self, chat_id: int) -> None:
        """Telegram no longer knows the chat: everything about it answers 400 "chat not found"."""
        self._forgotten.add(chat_id)

    def restore_chat(self, chat_id: int) -> None:
        """Undo block, kick and forget_chat."""
        self._blocked.discard(chat_id)
        self._kicked.discard(chat_id)
        self._forgotten.discard(chat_id)

    @property
    def outage(self) -> OutageMode:
        return self._outage

    def set_outage(self, mode: OutageMode) -> None:
        """Simulate an outage from the next request on.

        "refuse": the listening socket is closed (and open connections dropped), so connecting
        fails; "502": nginx answers 502 Bad Gateway in HTML; "hang": requests are never answered
        (until ``stop``); None: back to normal, listening again on the same port.
        """
        if mode not in (None, "refuse", "502", "hang"):
            raise ValueError(f"unknown outage mode {mode!r}")
        previous, self._outage = self._outage, mode
        if mode == "refuse" and previous != "refuse":
            if self._server is not None:
                self._server.close()
                self._server = None
            if self._runner is not None and self._runner.server is not None:
                for connection in self._runner.server.connections:
                    connection.force_close()
        elif previous == "refuse" and mode != "refuse" and self._runner is not None:
            # Listen at once so that connections made from now on wait in the backlog.
            sock = self._listen(self._port)
            self._reopening = asyncio.ensure_future(self._serve(sock))

    async def _serve(self, sock: socket.socket) -> None:
        assert self._runner is not None and self._runner.server is not None
        self._server = await asyncio.get_running_loop().create_server(self._runner.server, sock=sock)

    def reset_limits(self) -> None:
        """Forget the flood-control history."""
        self._global_window.clear()
        self._group_windows.clear()
        self._chat_last.clear()

    # ---------------------------------------------------------------------------------------------
    # Test input

    def push_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        chat_type: str = "private",
        title: str | None = None,
        first_name: str = "Delegate",
        username: str | None = None,
        language_code: str | None = "en",
    ) -> JSON:
        """A user writes ``text`` in the chat; returns the queued Update."""
        chat = self._remember_chat(chat_id, chat_type, title=title, first_name=first_name, username=username)
        message_id = self._next_message_id(chat_id)
        entities = _command_entities(text)
        message: JSON = {
            "message_id": message_id,
            "from": self._user_json(user_id, first_name, username, language_code),
            "chat": chat.to_json(),
            "date": int(time.time()),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        self._store(_Stored(chat_id, message_id, False, message, text, entities, None))
        return self._push_update("message", message)

    def push_callback(
        self,
        chat_id: int,
        user_id: int,
        data: str,
        message_id: int,
        *,
        first_name: str = "Delegate",
        username: str | None = None,
        language_code: str | None = "en",
    ) -> JSON:
        """A user presses an inline button with ``data`` under message ``message_id``."""
        stored = self._messages.get(chat_id, {}).get(message_id)
        if stored is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        query_id = f"{self.bot_id}{next(self._callback_ids):08d}"
        self._open_callbacks.add(query_id)
        query: JSON = {
            "id": query_id,
            "from": self._user_json(user_id, first_name, username, language_code),
            "message": stored.message,
            "chat_instance": str(abs(chat_id) * 7919 + self.bot_id),
            "data": data,
        }
        return self._push_update("callback_query", query)

    def push_my_chat_member(
        self,
        chat_id: int,
        user_id: int,
        *,
        old_status: str = "member",
        new_status: str = "kicked",
        chat_type: str | None = None,
        title: str | None = None,
        first_name: str = "Delegate",
    ) -> JSON:
        """The bot's membership changed (blocked, unblocked, added, removed) and the fake follows:
        "kicked" in a private chat blocks, "kicked"/"left" in a group kicks, "member" restores."""
        kind = chat_type or self._chat_type(chat_id)
        chat = self._remember_chat(chat_id, kind, title=title, first_name=first_name, username=None)
        bot = self._bot_user()
        update = self._push_update(
            "my_chat_member",
            {
                "chat": chat.to_json(),
                "from": self._user_json(user_id, first_name, None, None),
                "date": int(time.time()),
                "old_chat_member": self._member_json(old_status, bot),
                "new_chat_member": self._member_json(new_status, bot),
            },
        )
        if new_status in ("kicked", "left"):
            (self._blocked if chat.type == "private" else self._kicked).add(chat_id)
        elif new_status in ("member", "administrator", "creator"):
            self._blocked.discard(chat_id)
            self._kicked.discard(chat_id)
        return update

    @staticmethod
    def _member_json(status: str, user: JSON) -> JSON:
        member: JSON = {"status": status, "user": user}
        if status == "kicked":
            member["until_date"] = 0
        elif status == "administrator":
            member.update(
                can_be_edited=False, is_anonymous=False, can_manage_chat=True, can_delete_messages=True,
                can_manage_video_chats=False, can_restrict_members=False, can_promote_members=False,
                can_change_info=False, can_invite_users=True, can_post_stories=False, can_edit_stories=False,
                can_delete_stories=False, can_pin_messages=True,
            )  # fmt: skip
        return member

    def _push_update(self, kind: str, payload: JSON) -> JSON:
        update: JSON = {"update_id": next(self._update_ids), kind: payload}
        if self._allows(kind):
            self._updates.append(update)
        self._notify()
        return update

    def _allows(self, kind: str) -> bool:
        allowed = self._webhook_allowed if self._webhook_url else self._allowed_updates
        if allowed:
            return kind in allowed
        return kind not in _OPT_IN_UPDATES

    # ---------------------------------------------------------------------------------------------
    # Observation

    def messages_in(self, chat_id: int) -> list[str]:
        """The bot's messages in the chat as a user now sees them (edits applied, deletions gone)."""
        chat = self._messages.get(chat_id, {})
        return [chat[mid].text for mid in sorted(chat) if chat[mid].from_bot]

    def said(self, chat_id: int, text: str) -> bool:
        """Whether one of the bot's messages in the chat, as a user now sees them, contains `text`."""
        return any(text in m for m in self.messages_in(chat_id))

    def message(self, chat_id: int, message_id: int) -> JSON | None:
        """The current Message object, or None."""
        stored = self._messages.get(chat_id, {}).get(message_id)
        return stored.message if stored else None

    @property
    def pinned(self) -> dict[int, int]:
        """Chat id -> the message pinned last and still pinned."""
        return {chat_id: pins[-1] for chat_id, pins in self._pins.items() if pins}

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates neither confirmed by getUpdates nor delivered to the webhook."""
        return list(self._updates)

    @property
    def webhook_url(self) -> str | None:
        return self._webhook_url

    def commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        return list(self._commands.get((self._scope_key(scope), language_code), []))

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5) -> T:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy and return its value; woken by every change."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"FakeTelegram: condition not met within {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # ---------------------------------------------------------------------------------------------
    # HTTP

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if self._outage is not None:
            return await self._outage_response()
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        return self._error(404, "Not Found")

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        raw_method = request.match_info["method"]
        known = self._methods.get(raw_method.lower())
        method = known[0] if known else raw_method
        self.requests[method] += 1
        self._notify()
        if self._outage is not None:
            return await self._outage_response()
        content_type = request.content_type if request.body_exists else ""
        params = _Params({})
        try:
            if request.match_info["token"] != self.token:
                raise _ApiError(401, "Unauthorized")
            if known is None:
                raise _ApiError(404, "Not Found")
            params = await self._read_params(request)
            answer = await known[1](params)
            reply = answer if isinstance(answer, _Reply) else _Reply(answer)
            body: JSON = {"ok": True, "result": reply.result}
            if reply.description:
                body["description"] = reply.description
            response = web.json_response(body)
        except _ApiError as exc:
            if exc.code == 429:
                self.http_429 += 1
            response = self._error(exc.code, exc.description, exc.parameters)
        self.calls.append(
            ApiCall(method, request.method, content_type, params.decoded(), response.status, time.monotonic())
        )
        self._notify()
        return response

    async def _outage_response(self) -> web.StreamResponse:
        if self._outage == "hang":
            await self._closing.wait()
            raise web.HTTPServiceUnavailable
        return web.Response(status=502, text=NGINX_502, content_type="text/html", headers={"Server": "nginx/1.18.0"})

    @staticmethod
    def _error(code: int, description: str, parameters: JSON | None = None) -> web.Response:
        body: JSON = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)

    @staticmethod
    async def _read_params(request: web.Request) -> _Params:
        raw: JSON = dict(request.query)
        if request.method == "POST" and request.body_exists:
            if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    raw[key] = value.file.read() if isinstance(value, web.FileField) else value
            else:
                try:
                    body = json.loads(await request.text() or "{}")
                except ValueError:
                    raise _ApiError(400, "Bad Request: can't parse JSON") from None
                if not isinstance(body, dict):
                    raise _ApiError(400, "Bad Request: JSON object expected")
                raw.update(body)
        return _Params(raw)

    # ---------------------------------------------------------------------------------------------
    # Chats and messages

    @staticmethod
    def _chat_type(chat_id: int) -> str:
        if chat_id > 0:
            return "private"
        return "supergroup" if chat_id < SUPERGROUP_BELOW else "group"

    def _chat(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            kind = self._chat_type(chat_id)
            if kind == "private":
                chat = _Chat(chat_id, kind, first_name="Delegate")
            else:
                chat = _Chat(chat_id, kind, title=f"Group {chat_id}")
            self._chats[chat_id] = chat
        return chat

    def _remember_chat(
        self, chat_id: int, chat_type: str, *, title: str | None, first_name: str, username: str | None
    ) -> _Chat:
        if chat_type == "private":
            chat = _Chat(chat_id, chat_type, first_name=first_name, username=username)
        else:
            known = self._chats.get(chat_id)
            chat = _Chat(chat_id, chat_type, title=title or (known.title if known else None) or f"Group {chat_id}")
        self._chats[chat_id] = chat
        return chat

    def _bot_user(self) -> JSON:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Floorbridge Test", "username": self.username}

    @staticmethod
    def _user_json(user_id: int, first_name: str, username: str | None, language_code: str | None) -> JSON:
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        return user

    def _next_message_id(self, chat_id: int) -> int:
        self._last_message_id[chat_id] = self._last_message_id.get(chat_id, 0) + 1
        return self._last_message_id[chat_id]

    def _store(self, stored: _Stored) -> None:
        self._messages.setdefault(stored.chat_id, {})[stored.message_id] = stored

    def _target(self, params: _Params, *, sending: bool = True) -> _Chat:
        """The chat named by chat_id, or the error Telegram gives for it."""
        raw = params.raw.get("chat_id")
        if raw is None or raw == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        chat_id: int | None = None
        if isinstance(raw, str) and raw.startswith("@"):
            for chat in self._chats.values():
                if chat.username and chat.username.lower() == raw[1:].lower():
                    chat_id = chat.id
        else:
            with contextlib.suppress(_ApiError):
                chat_id = params.get_int("chat_id")
        if chat_id is None or chat_id == 0 or chat_id in self._forgotten:
            raise _ApiError(400, "Bad Request: chat not found")
        chat = self._chat(chat_id)
        if sending and chat_id in self._blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        if sending and chat_id in self._kicked:
            where = "supergroup" if chat.type == "supergroup" else "group"
            raise _ApiError(403, f"Forbidden: bot was kicked from the {where} chat")
        return chat

    def _message_id(self, params: _Params) -> int:
        message_id = params.get_int("message_id")
        if message_id is None:
            raise _ApiError(400, "Bad Request: message identifier is not specified")
        return message_id

    def _format(self, params: _Params) -> tuple[str, list[JSON]]:
        text = params.get_str("text") or ""
        parse_mode = (params.get_str("parse_mode") or "").strip()
        try:
            if parse_mode.lower() == "html":
                plain, entities = parse_html(text, strict=self.strict_html)
            elif parse_mode.lower() == "markdownv2":
                plain, entities = parse_markdown_v2(text)
            elif parse_mode.lower() == "markdown":
                plain, entities = parse_markdown(text)
            elif parse_mode:
                raise _ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r}")
            else:
                given = params.get_json("entities")
                plain, entities = text, list(given) if isinstance(given, list) else []
        except EntityParseError as exc:
            raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        plain, entities = _trim(plain, entities)
        if not plain:
            raise _ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > MAX_MESSAGE_LENGTH:
            raise _ApiError(400, "Bad Request: message is too long")
        return plain, entities

    @staticmethod
    def _reply_markup(params: _Params) -> JSON | None:
        """The inline keyboard to show (other keyboards are not part of the Message)."""
        markup = params.get_json("reply_markup", "reply keyboard markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return None
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _ApiError(400, f'{_BAD_BUTTON}Field "inline_keyboard" must be an Array of Arrays')
        actions = ("url", "callback_data", "web_app", "login_url", "switch_inline_query",
                   "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
                   "callback_game", "pay")  # fmt: skip
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _ApiError(400, f'{_BAD_BUTTON}Field "text" must be of type String')
                if not any(key in button for key in actions):
                    raise _ApiError(400, f"{_BAD_BUTTON}Text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return {"inline_keyboard": rows}

    # ---------------------------------------------------------------------------------------------
    # Flood control

    def _check_rate(self, chat_id: int) -> None:
        now = time.monotonic()
        waits: list[float] = []
        while self._global_window and self._global_window[0] <= now - 1.0:
            self._global_window.popleft()
        if self.global_per_second > 0 and len(self._global_window) >= self.global_per_second:
            waits.append(self._global_window[len(self._global_window) - self.global_per_second] + 1.0 - now)
        if 0 < self.per_chat_per_second < math.inf and chat_id in self._chat_last:
            waits.append(self._chat_last[chat_id] + 1.0 / self.per_chat_per_second - now)
        if chat_id < 0 and self.group_per_minute > 0:
            window = self._group_windows.setdefault(chat_id, deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= self.group_per_minute:
                waits.append(window[len(window) - self.group_per_minute] + 60.0 - now)
        wait = max(waits, default=0.0)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise _ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})

    def _count_send(self, chat_id: int) -> float:
        now = time.monotonic()
        self._global_window.append(now)
        self._chat_last[chat_id] = now
        if chat_id < 0:
            self._group_windows.setdefault(chat_id, deque()).append(now)
        return now

    def _record(
        self,
        method: str,
        chat_id: int,
        message_id: int | None,
        params: _Params,
        *,
        plain_text: str | None = None,
        entities: list[JSON] | None = None,
        reply_markup: JSON | None = None,
    ) -> None:
        at = self._count_send(chat_id) if method in RATE_LIMITED_METHODS else time.monotonic()
        self.sent.append(
            Sent(
                method=method,
                chat_id=chat_id,
                message_id=message_id,
                text=params.get_str("text"),
                parse_mode=params.get_str("parse_mode"),
                reply_markup=reply_markup,
                at=at,
                params=params.decoded(),
                plain_text=plain_text,
                entities=tuple(entities or ()),
            )
        )
        self._notify()

    # ---------------------------------------------------------------------------------------------
    # Methods

    async def _true(self, params: _Params) -> Any:
        return True

    async def _get_me(self, params: _Params) -> Any:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: _Params) -> Any:
        if self._webhook_url:
            raise _ApiError(409, WEBHOOK_ACTIVE)
        offset = params.get_int("offset") or 0
        limit = min(max(params.get_int("limit") or 100, 1), 100)
        timeout = max(params.get_float("timeout") or 0.0, 0.0)
        allowed = params.get_json("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(str(kind) for kind in allowed) or None
            self._updates = [u for u in self._updates if self._allows(self._kind(u))]
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()  # ends a getUpdates still waiting
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            if generation != self._poll_generation:
                raise _ApiError(409, POLL_TERMINATED)
            if self._webhook_url:
                raise _ApiError(409, WEBHOOK_ACTIVE)
            if self._updates or self._closing.is_set():
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        return list(self._updates[:limit])

    @staticmethod
    def _kind(update: JSON) -> str:
        return next(key for key in update if key != "update_id")

    async def _set_webhook(self, params: _Params) -> Any:
        url = params.get_str("url") or ""
        if not url:
            return await self._delete_webhook(params)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get_str("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise _ApiError(400, "Bad Request: bad webhook: secret token contains unallowed characters")
        allowed = params.get_json("allowed_updates")
        same = url == self._webhook_url and secret == self._webhook_secret
        self._webhook_url = url
        self._webhook_secret = secret
        if isinstance(allowed, list):
            self._webhook_allowed = [str(kind) for kind in allowed] or None
        self._webhook_max_connections = params.get_int("max_connections") or 40
        self._webhook_error = None
        if params.get_bool("drop_pending_updates"):
            self._updates.clear()
        self._notify()
        return _Reply(True, "Webhook is already set" if same else "Webhook was set")

    async def _delete_webhook(self, params: _Params) -> Any:
        had = self._webhook_url is not None
        self._webhook_url = None
        self._webhook_secret = None
        self._webhook_error = None
        if params.get_bool("drop_pending_updates"):
            self._updates.clear()
        self._notify()
        return _Reply(True, "Webhook was deleted" if had else "Webhook is already deleted")

    async def _get_webhook_info(self, params: _Params) -> Any:
        info: JSON = {
            "url": self._webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook_url:
            info["max_connections"] = self._webhook_max_connections
            info["ip_address"] = "127.0.0.1"
            if self._webhook_allowed:
                info["allowed_updates"] = self._webhook_allowed
            if self._webhook_error:
                info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    async def _webhook_loop(self) -> None:
        assert self._session is not None
        while not self._closing.is_set():
            changed = self._changed
            url, secret = self._webhook_url, self._webhook_secret
            if url is None or not self._updates:
                await changed.wait()
                continue
            update = self._updates[0]
            headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
            status: int | None = None
            error: str | None = None
            try:
                async with self._session.post(
                    url, json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=self.webhook_timeout)
                ) as response:
                    status = response.status
                    await response.read()
                    if not 200 <= status < 300:
                        error = f"Wrong response from the webhook: {status} {response.reason}"
            except aiohttp.ClientConnectorError:
                error = "Connection refused"
            except TimeoutError:
                error = "Read timeout expired"
            except aiohttp.ClientError as exc:
                error = f"Connection failed: {exc}"
            attempt = WebhookAttempt(url, update["update_id"], status, error, secret, time.monotonic())
            self.webhook_attempts.append(attempt)
            if error is None:
                if self._updates and self._updates[0] is update:
                    self._updates.pop(0)
                self._notify()
                continue
            self._webhook_error = (int(time.time()), error)
            self._notify()
            await asyncio.sleep(self.webhook_retry_delay)

    @staticmethod
    def _scope_key(scope: Any) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True)

    async def _set_my_commands(self, params: _Params) -> Any:
        commands = params.get_json("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        clean: list[JSON] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _ApiError(400, "Bad Request: can't parse BotCommand JSON object")
            name = str(command.get("command", "")).removeprefix("/")
            description = str(command.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise _ApiError(400, "Bad Request: command description is empty" if not description.strip()
                                else "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")  # fmt: skip
            clean.append({"command": name, "description": description})
        key = (self._scope_key(params.get_json("scope")), params.get_str("language_code") or "")
        if clean:
            self._commands[key] = clean
        else:
            self._commands.pop(key, None)
        self._notify()
        return True

    async def _get_my_commands(self, params: _Params) -> Any:
        key = (self._scope_key(params.get_json("scope")), params.get_str("language_code") or "")
        return list(self._commands.get(key, []))

    async def _delete_my_commands(self, params: _Params) -> Any:
        key = (self._scope_key(params.get_json("scope")), params.get_str("language_code") or "")
        self._commands.pop(key, None)
        self._notify()
        return True

    async def _send_message(self, params: _Params) -> Any:
        chat = self._target(params)
        plain, entities = self._format(params)
        markup = self._reply_markup(params)
        reply_to: _Stored | None = None
        reply = params.get_json("reply_parameters", "reply parameters")
        reply_id = reply.get("message_id") if isinstance(reply, dict) else params.get_int("reply_to_message_id")
        if reply_id is not None:
            reply_to = self._messages.get(chat.id, {}).get(int(reply_id))
            allow = (isinstance(reply, dict) and bool(reply.get("allow_sending_without_reply"))) or params.get_bool(
                "allow_sending_without_reply"
            )
            if reply_to is None and not allow:
                raise _ApiError(400, "Bad Request: message to be replied not found")
        self._check_rate(chat.id)
        message_id = self._next_message_id(chat.id)
        message: JSON = {
            "message_id": message_id,
            "from": self._bot_user(),
            "chat": chat.to_json(),
            "date": int(time.time()),
            "text": plain,
        }
        thread = params.get_int("message_thread_id")
        if thread is not None:
            message["message_thread_id"] = thread
            if chat.type == "supergroup":
                message["is_topic_message"] = True
        if entities:
            message["entities"] = entities
        preview = params.get_json("link_preview_options")
        if isinstance(preview, dict):
            message["link_preview_options"] = preview
        if reply_to is not None:
            # One level only, as Telegram answers: the replied-to message without its own reply_to_message.
            message["reply_to_message"] = {k: v for k, v in reply_to.message.items() if k != "reply_to_message"}
        if markup is not None:
            message["reply_markup"] = markup
        self._store(_Stored(chat.id, message_id, True, message, plain, entities, markup))
        self._record(
            "sendMessage", chat.id, message_id, params, plain_text=plain, entities=entities, reply_markup=markup
        )
        return message

    async def _edit_message_text(self, params: _Params) -> Any:
        if params.present("inline_message_id"):
            raise _ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat = self._target(params)
        message_id = self._message_id(params)
        stored = self._messages.get(chat.id, {}).get(message_id)
        if stored is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if not stored.from_bot:
            raise _ApiError(400, "Bad Request: message can't be edited")
        plain, entities = self._format(params)
        markup = self._reply_markup(params)
        if (plain, entities, markup) == (stored.text, stored.entities, stored.reply_markup):
            raise _ApiError(400, NOT_MODIFIED)
        self._check_rate(chat.id)
        message = {k: v for k, v in stored.message.items() if k not in ("entities", "reply_markup")}
        message.update(text=plain, edit_date=int(time.time()))
        if entities:
            message["entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        preview = params.get_json("link_preview_options")
        if isinstance(preview, dict):
            message["link_preview_options"] = preview
        stored.message, stored.text, stored.entities, stored.reply_markup = message, plain, entities, markup
        self._record(
            "editMessageText", chat.id, message_id, params, plain_text=plain, entities=entities, reply_markup=markup
        )
        return message

    async def _pin_chat_message(self, params: _Params) -> Any:
        chat = self._target(params)
        message_id = self._message_id(params)
        if message_id not in self._messages.get(chat.id, {}):
            raise _ApiError(400, "Bad Request: message to pin not found")
        self._check_rate(chat.id)
        pins = self._pins.setdefault(chat.id, [])
        if message_id in pins:
            pins.remove(message_id)
        pins.append(message_id)
        self._record("pinChatMessage", chat.id, message_id, params)
        return True

    async def _unpin_chat_message(self, params: _Params) -> Any:
        chat = self._target(params)
        pins = self._pins.setdefault(chat.id, [])
        message_id = params.get_int("message_id")
        if message_id is None:
            if pins:
                message_id = pins.pop()
        else:
            if message_id not in self._messages.get(chat.id, {}):
                raise _ApiError(400, "Bad Request: message to unpin not found")
            if message_id in pins:
                pins.remove(message_id)
        self._record("unpinChatMessage", chat.id, message_id, params)
        return True

    async def _unpin_all_chat_messages(self, params: _Params) -> Any:
        chat = self._target(params)
        self._pins.pop(chat.id, None)
        self._record("unpinAllChatMessages", chat.id, None, params)
        return True

    async def _delete_message(self, params: _Params) -> Any:
        chat = self._target(params)
        message_id = self._message_id(params)
        if message_id not in self._messages.get(chat.id, {}):
            raise _ApiError(400, "Bad Request: message to delete not found")
        self._check_rate(chat.id)
        del self._messages[chat.id][message_id]
        pins = self._pins.get(chat.id, [])
        if message_id in pins:
            pins.remove(message_id)
        self._record("deleteMessage", chat.id, message_id, params)
        return True

    async def _answer_callback_query(self, params: _Params) -> Any:
        query_id = params.get_str("callback_query_id") or ""
        if query_id not in self._open_callbacks:
            raise _ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        self._open_callbacks.discard(query_id)
        self.callback_answers.append(
            CallbackAnswer(
                callback_query_id=query_id,
                text=params.get_str("text"),
                show_alert=params.get_bool("show_alert"),
                url=params.get_str("url"),
                cache_time=params.get_int("cache_time"),
                at=time.monotonic(),
            )
        )
        self._notify()
        return True

    async def _get_chat(self, params: _Params) -> Any:
        chat = self._target(params, sending=False)
        info: JSON = {
            **chat.to_json(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        pinned = self.pinned.get(chat.id)
        if pinned is not None:
            info["pinned_message"] = self._messages[chat.id][pinned].message
        return info

    async def _send_chat_action(self, params: _Params) -> Any:
        self._target(params)
        return True
