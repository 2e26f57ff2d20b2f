"""Splitting rendered messages under a platform's length limit, at block boundaries first."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from floorbridge.core.richtext import Block, BulletList, Paragraph, Text, plain_inline


def split_blocks(
    blocks: Sequence[Block],
    render_block: Callable[[Block], str],
    limit: int,
    separator: str = "\n\n",
) -> list[str]:
    """Rendered chunks, each at most `limit` characters: whole blocks where they fit, a list item by
    item, and a block too long on its own as plain text cut at line or word boundaries."""
    pieces: list[str] = []
    for block in blocks:
        rendered = render_block(block)
        if len(rendered) <= limit:
            pieces.append(rendered)
        elif isinstance(block, BulletList) and len(block.items) > 1:
            pieces.extend(split_blocks([BulletList((item,)) for item in block.items], render_block, limit, "\n"))
        else:
            text = plain_inline(block.parts) if isinstance(block, Paragraph) else plain_inline(block.items[0])
            for cut in cut_text(text, max(limit // 2, 1)):
                pieces.append(render_block(Paragraph((Text(cut),))))
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{separator}{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def cut_text(text: str, size: int) -> list[str]:
    """`text` in pieces of at most `size` characters, preferring to cut after a newline or space."""
    out = []
    while len(text) > size:
        at = max(text.rfind("\n", 0, size), text.rfind(" ", 0, size))
        if at <= size // 2:
            at = size
        out.append(text[:at])
        text = text[at:].lstrip(" \n")
    if text:
        out.append(text)
    return out
