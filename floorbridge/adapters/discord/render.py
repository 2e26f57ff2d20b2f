"""Rich text to Discord markdown: escaped (no markup or mentions from user or agenda text), content
under 2000 characters, longer messages as embeds within Discord's embed limits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from floorbridge.core.richtext import Block, Bold, BulletList, Code, Inline, Italic, Link, RichMessage, Text

from ..richtext_split import split_blocks

MAX_CONTENT = 2000
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBEDS_TOTAL = 6000
MAX_EMBEDS = 10
MAX_BUTTON_ROWS = 5
MAX_BUTTONS_PER_ROW = 5
MAX_LABEL = 80
MAX_CUSTOM_ID = 100
CUSTOM_ID_PREFIX = "fb:"

_MARKDOWN = re.compile(r"([\\*_~`|\[\]<])")
# Only at the start of a line: headings, block quotes, list items ("- ", "1. ").
_LINE_START = re.compile(r"(?m)^(\s*)(?:([#>-])|(\d+)\.)")
_MENTION = re.compile(r"@(everyone|here|[!&]?\d{15,21})")


def escape(text: str) -> str:
    """Markdown characters backslash-escaped, and @everyone, @here and <@id> mentions broken with a
    zero-width space (AllowedMentions.none() is set on every send as well)."""
    text = _MARKDOWN.sub(r"\\\1", text)
    text = _LINE_START.sub(
        lambda m: m.group(1) + ("\\" + m.group(2) if m.group(2) else m.group(3) + "\\."), text
    )
    return _MENTION.sub("@\u200b\\1", text)


def _url(url: str) -> str:
    return quote(url, safe=":/?#@!$&'*+,;=%~.-_")


def _inline(part: Inline) -> str:
    if isinstance(part, Text):
        return escape(part.text)
    if isinstance(part, Code):
        return "`" + part.text.replace("`", "ˋ").replace("\n", " ") + "`"
    if isinstance(part, Link):
        label = "".join(_inline(x) for x in part.parts)
        return f"[{label}](<{_url(part.url)}>)"
    inner = "".join(_inline(x) for x in part.parts)
    assert isinstance(part, Bold | Italic)
    return f"**{inner}**" if isinstance(part, Bold) else f"*{inner}*"


def _block(block: Block) -> str:
    if isinstance(block, BulletList):
        return "\n".join("- " + "".join(_inline(x) for x in item) for item in block.items)
    return "".join(_inline(x) for x in block.parts)


@dataclass(frozen=True)
class DiscordText:
    content: str
    embeds: list[dict[str, Any]] = field(default_factory=list)
    buttons: list[list[dict[str, str]]] = field(default_factory=list)  # {"label", "custom_id"} or {"label", "url"}


def buttons(msg: RichMessage) -> list[list[dict[str, str]]]:
    rows = []
    for row in msg.buttons[:MAX_BUTTON_ROWS]:
        out = []
        for button in row[:MAX_BUTTONS_PER_ROW]:
            label = button.label[:MAX_LABEL]
            if button.url:
                out.append({"label": label, "url": button.url})
            elif 0 < len(CUSTOM_ID_PREFIX + button.command) <= MAX_CUSTOM_ID:
                out.append({"label": label, "custom_id": CUSTOM_ID_PREFIX + button.command})
        if out:
            rows.append(out)
    return rows


def render(msg: RichMessage) -> list[DiscordText]:
    """Messages to send in order; buttons go with the last one."""
    whole = "\n\n".join(_block(b) for b in msg.blocks)
    if len(whole) <= MAX_CONTENT:
        return [DiscordText(whole or "…", [], buttons(msg))]
    descriptions = split_blocks(msg.blocks, _block, MAX_EMBED_DESCRIPTION)
    out: list[DiscordText] = []
    embeds: list[dict[str, Any]] = []
    total = 0
    for description in descriptions:
        if embeds and (len(embeds) == MAX_EMBEDS or total + len(description) > MAX_EMBEDS_TOTAL):
            out.append(DiscordText("", embeds))
            embeds, total = [], 0
        embeds.append({"description": description})
        total += len(description)
    out.append(DiscordText("", embeds, buttons(msg)))
    return out
