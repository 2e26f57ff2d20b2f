"""A small platform-neutral rich-text model: what the bots say, before any platform's escaping.

Adapters render it (Telegram HTML, Discord markdown, Matrix HTML) and escape every piece of
text there, so a title such as "<b>@everyone</b>" can never become markup or a ping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Bold:
    parts: tuple[Inline, ...]


@dataclass(frozen=True)
class Italic:
    parts: tuple[Inline, ...]


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Link:
    url: str
    parts: tuple[Inline, ...]


Inline: TypeAlias = Text | Bold | Italic | Code | Link


@dataclass(frozen=True)
class Paragraph:
    parts: tuple[Inline, ...]


@dataclass(frozen=True)
class BulletList:
    items: tuple[tuple[Inline, ...], ...]


Block: TypeAlias = Paragraph | BulletList


@dataclass(frozen=True)
class Button:
    """A button that runs `command` (as if the user typed it) or opens `url`."""

    label: str
    command: str = ""
    url: str = ""


@dataclass(frozen=True)
class RichMessage:
    blocks: tuple[Block, ...]
    buttons: tuple[tuple[Button, ...], ...] = ()

    def plain(self) -> str:
        """The text without any markup (for logs, tests and platforms' notification previews)."""
        return "\n\n".join(_plain_block(b) for b in self.blocks)


# ---------------------------------------------------------------- authoring helpers

Part: TypeAlias = "Inline | str"


def _inl(parts: Iterable[Part]) -> tuple[Inline, ...]:
    return tuple(Text(p) if isinstance(p, str) else p for p in parts if p != "")


def b(*parts: Part) -> Bold:
    return Bold(_inl(parts))


def i(*parts: Part) -> Italic:
    return Italic(_inl(parts))


def code(text: str) -> Code:
    return Code(text)


def link(url: str, *parts: Part) -> Link:
    return Link(url, _inl(parts) or (Text(url),))


def p(*parts: Part) -> Paragraph:
    return Paragraph(_inl(parts))


def ul(items: Iterable[Sequence[Part] | Part]) -> BulletList:
    out = []
    for item in items:
        out.append(_inl([item]) if isinstance(item, str | Text | Bold | Italic | Code | Link) else _inl(item))
    return BulletList(tuple(out))


def message(*blocks: Block | None, buttons: Sequence[Sequence[Button]] = ()) -> RichMessage:
    return RichMessage(tuple(b for b in blocks if b is not None), tuple(tuple(row) for row in buttons if row))


# ---------------------------------------------------------------- plain text


def plain_inline(parts: Iterable[Inline]) -> str:
    out = []
    for part in parts:
        if isinstance(part, Text | Code):
            out.append(part.text)
        elif isinstance(part, Link):
            label = plain_inline(part.parts)
            out.append(label if label == part.url else f"{label} ({part.url})")
        else:
            out.append(plain_inline(part.parts))
    return "".join(out)


def _plain_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return plain_inline(block.parts)
    return "\n".join(f"• {plain_inline(item)}" for item in block.items)


# ---------------------------------------------------------------- JSON (outbox payloads)


def to_json(msg: RichMessage) -> dict[str, Any]:
    return {
        "blocks": [_block_json(b) for b in msg.blocks],
        "buttons": [[{"label": x.label, "command": x.command, "url": x.url} for x in row] for row in msg.buttons],
    }


def from_json(data: Mapping[str, Any]) -> RichMessage:
    blocks = tuple(_block_from(b) for b in data["blocks"])
    buttons = tuple(tuple(Button(x["label"], x.get("command", ""), x.get("url", "")) for x in row)
                    for row in data.get("buttons", ()))
    return RichMessage(blocks, buttons)


def _inline_json(part: Inline) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"t": part.text}
    if isinstance(part, Code):
        return {"code": part.text}
    if isinstance(part, Link):
        return {"link": part.url, "parts": [_inline_json(x) for x in part.parts]}
    tag = "b" if isinstance(part, Bold) else "i"
    return {tag: [_inline_json(x) for x in part.parts]}


def _inline_from(data: Mapping[str, Any]) -> Inline:
    if "t" in data:
        return Text(data["t"])
    if "code" in data:
        return Code(data["code"])
    if "link" in data:
        return Link(data["link"], tuple(_inline_from(x) for x in data["parts"]))
    if "b" in data:
        return Bold(tuple(_inline_from(x) for x in data["b"]))
    if "i" in data:
        return Italic(tuple(_inline_from(x) for x in data["i"]))
    raise ValueError(f"unknown inline element {sorted(data)}")


def _block_json(block: Block) -> dict[str, Any]:
    if isinstance(block, Paragraph):
        return {"p": [_inline_json(x) for x in block.parts]}
    return {"ul": [[_inline_json(x) for x in item] for item in block.items]}


def _block_from(data: Mapping[str, Any]) -> Block:
    if "p" in data:
        return Paragraph(tuple(_inline_from(x) for x in data["p"]))
    if "ul" in data:
        return BulletList(tuple(tuple(_inline_from(x) for x in item) for item in data["ul"]))
    raise ValueError(f"unknown block {sorted(data)}")
