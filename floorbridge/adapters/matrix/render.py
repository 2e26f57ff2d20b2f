"""Rich text to a Matrix m.room.message: a plain `body` and an org.matrix.custom.html
`formatted_body` that uses only tags the client-server spec's allow list names, with every text
escaped and links limited to the schemes it permits."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from floorbridge.core.richtext import Block, Bold, BulletList, Code, Inline, Italic, Link, RichMessage, Text

from ..richtext_split import cut_text

# Events are limited to 65,536 bytes in all; leave room for the JSON and the HTML twin.
MAX_BODY = 16_000
SAFE_SCHEMES = ("https", "http", "ftp", "mailto", "magnet")
COMMAND_PREFIX = "!"


def _href(url: str) -> str | None:
    return url if urlsplit(url).scheme.lower() in SAFE_SCHEMES else None


def _inline(part: Inline) -> str:
    if isinstance(part, Text):
        return html.escape(part.text, quote=False)
    if isinstance(part, Code):
        return f"<code>{html.escape(part.text, quote=False)}</code>"
    if isinstance(part, Link):
        inner = "".join(_inline(x) for x in part.parts)
        href = _href(part.url)
        return f'<a href="{html.escape(href, quote=True)}">{inner}</a>' if href else inner
    assert isinstance(part, Bold | Italic)
    tag = "strong" if isinstance(part, Bold) else "em"
    return f"<{tag}>{''.join(_inline(x) for x in part.parts)}</{tag}>"


def _block(block: Block) -> str:
    if isinstance(block, BulletList):
        items = "".join("<li>" + "".join(_inline(x) for x in item) + "</li>" for item in block.items)
        return f"<ul>{items}</ul>"
    return "<p>" + "".join(_inline(x) for x in block.parts) + "</p>"


def _buttons_as_text(msg: RichMessage) -> tuple[str, str]:
    commands = [b_.command for row in msg.buttons for b_ in row if b_.command]
    if not commands:
        return "", ""
    plain = " · ".join(COMMAND_PREFIX + c for c in commands)
    rich = " · ".join(f"<code>{html.escape(COMMAND_PREFIX + c, quote=False)}</code>" for c in commands)
    return plain, rich


def render(msg: RichMessage) -> list[dict[str, Any]]:
    """Event contents to send in order (more than one only for very long messages)."""
    plain_buttons, rich_buttons = _buttons_as_text(msg)
    body = msg.plain() + (f"\n\n{plain_buttons}" if plain_buttons else "")
    formatted = "".join(_block(b) for b in msg.blocks) + (f"<p>{rich_buttons}</p>" if rich_buttons else "")
    if len(body) <= MAX_BODY and len(formatted) <= 2 * MAX_BODY:
        return [{"msgtype": "m.text", "body": body, "format": "org.matrix.custom.html", "formatted_body": formatted}]
    return [{"msgtype": "m.text", "body": piece} for piece in cut_text(body, MAX_BODY)]
