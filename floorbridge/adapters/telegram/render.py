"""Rich text to Telegram's HTML parse mode, escaped and split under 4096 characters."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from floorbridge.core.richtext import Block, Bold, BulletList, Code, Inline, Italic, Link, RichMessage, Text

from ..richtext_split import split_blocks

MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64  # bytes, Telegram's limit on an inline button's callback_data


@dataclass(frozen=True)
class TelegramText:
    text: str  # parse_mode HTML
    buttons: list[list[dict[str, Any]]]  # InlineKeyboardButton dicts; empty for no keyboard


def _inline(part: Inline) -> str:
    if isinstance(part, Text):
        return html.escape(part.text, quote=False)
    if isinstance(part, Code):
        return f"<code>{html.escape(part.text, quote=False)}</code>"
    if isinstance(part, Link):
        return f'<a href="{html.escape(part.url, quote=True)}">{"".join(_inline(x) for x in part.parts)}</a>'
    tag = "b" if isinstance(part, Bold) else "i"
    assert isinstance(part, Bold | Italic)
    return f"<{tag}>{''.join(_inline(x) for x in part.parts)}</{tag}>"


def _block(block: Block) -> str:
    if isinstance(block, BulletList):
        return "\n".join("• " + "".join(_inline(x) for x in item) for item in block.items)
    return "".join(_inline(x) for x in block.parts)


def buttons(msg: RichMessage) -> list[list[dict[str, Any]]]:
    rows = []
    for row in msg.buttons:
        out = []
        for button in row:
            if button.url:
                out.append({"text": button.label, "url": button.url})
            elif 0 < len(button.command.encode()) <= MAX_CALLBACK_DATA:
                out.append({"text": button.label, "callback_data": button.command})
        if out:
            rows.append(out)
    return rows


def render(msg: RichMessage) -> list[TelegramText]:
    """The messages to send, in order; the keyboard goes with the last one."""
    chunks = split_blocks(msg.blocks, _block, MAX_TEXT) or [html.escape("…")]
    return [TelegramText(c, buttons(msg) if n == len(chunks) - 1 else []) for n, c in enumerate(chunks)]
