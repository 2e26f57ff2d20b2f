"""What the platform adapters hand to the conversation core, and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from floorbridge.core.chats import ChatRef, UserRef
from floorbridge.core.richtext import RichMessage

# Longer input is refused before parsing: nobody types a command this long.
MAX_INPUT = 1000


@dataclass(frozen=True)
class Incoming:
    """A command from a delegate: `text` is the command and its arguments without the platform's
    prefix ("/", "!") or bot mention, e.g. "agenda 2025-07-09"."""

    chat: ChatRef
    user: UserRef
    text: str
    is_group: bool = False
    user_name: str = ""
    language_hint: str | None = None  # the platform's idea of the user's language (Telegram, Discord)
    # When the server received it, before any waiting: a request for the floor takes its place by this.
    received_at: datetime | None = None


@dataclass(frozen=True)
class Reply:
    message: RichMessage
    private: bool = False  # only the asker sees it where the platform can do that (Discord ephemeral)


def split_command(text: str) -> tuple[str, list[str]]:
    """("agenda", ["2025-07-09"]) from "agenda 2025-07-09"; also accepts a leading / or ! and a
    Telegram-style /cmd@botname."""
    words = text.strip().split()
    if not words:
        return "", []
    head = words[0].lstrip("/!").split("@", 1)[0].lower()
    return head, words[1:]
