"""Accounts and sessions of the moderator console. Passwords and tokens are stored only as
hashes; the hashing itself is the web adapter's business."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .chats import Role
from .ids import MeetingId


@dataclass(frozen=True)
class ConsoleAccount:
    """A console login. `roles` says what the account may do in which meeting."""

    username: str
    password_hash: str  # argon2id, in the PHC string format
    display_name: str = ""
    roles: dict[MeetingId, Role] = field(default_factory=dict)


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser. `subject` is "account:<username>" or a chat user ("telegram:42") who
    came in through a one-time login link; `csrf` must accompany every state-changing request."""

    subject: str
    csrf: str
    created_at: datetime
    expires_at: datetime
