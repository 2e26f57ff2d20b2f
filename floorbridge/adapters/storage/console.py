"""SqlConsoleStore: floorbridge.core.ports.ConsoleStore on SQLite or PostgreSQL.

Tokens reach this module only as hashes. A login link is spent by one conditional UPDATE, so of
two processes presenting the same link at once exactly one gets its subject.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from floorbridge.core.chats import Role
from floorbridge.core.console import ConsoleAccount, ConsoleSession
from floorbridge.core.ids import MeetingId

from .engine import reading, writing
from .statements import upsert
from .tables import console_accounts, console_sessions, login_links


class SqlConsoleStore:
    """Every method runs in its own transaction; callers pass `now`, so expiry follows their clock."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def save_account(self, account: ConsoleAccount) -> None:
        values = {
            "username": account.username,
            "password_hash": account.password_hash,
            "display_name": account.display_name,
            "roles": {str(m): r.value for m, r in account.roles.items()},
        }
        async with writing(self._engine) as conn:
            await upsert(conn, console_accounts, values, ["username"])

    async def account(self, username: str) -> ConsoleAccount | None:
        query = select(console_accounts).where(console_accounts.c.username == username)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return _account(row) if row is not None else None

    async def create_session(self, token_hash: str, session: ConsoleSession) -> None:
        async with writing(self._engine) as conn:
            await conn.execute(
                insert(console_sessions).values(
                    token_hash=token_hash,
                    subject=session.subject,
                    csrf=session.csrf,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                )
            )

    async def session(self, token_hash: str, now: datetime) -> ConsoleSession | None:
        query = select(console_sessions).where(
            console_sessions.c.token_hash == token_hash, console_sessions.c.expires_at > now
        )
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return ConsoleSession(row.subject, row.csrf, row.created_at, row.expires_at)

    async def delete_session(self, token_hash: str) -> None:
        async with writing(self._engine) as conn:
            await conn.execute(delete(console_sessions).where(console_sessions.c.token_hash == token_hash))

    async def create_login_link(self, token_hash: str, subject: str, expires_at: datetime) -> None:
        async with writing(self._engine) as conn:
            await conn.execute(
                insert(login_links).values(token_hash=token_hash, subject=subject, expires_at=expires_at, used_at=None)
            )

    async def use_login_link(self, token_hash: str, now: datetime) -> str | None:
        spend = (
            update(login_links)
            .where(
                login_links.c.token_hash == token_hash,
                login_links.c.used_at.is_(None),
                login_links.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(login_links.c.subject)
        )
        async with writing(self._engine) as conn:
            subject: str | None = (await conn.execute(spend)).scalar()
        return subject


def _account(row: Any) -> ConsoleAccount:
    return ConsoleAccount(
        username=row.username,
        password_hash=row.password_hash,
        display_name=row.display_name,
        roles={MeetingId(m): Role(r) for m, r in row.roles.items()},
    )
