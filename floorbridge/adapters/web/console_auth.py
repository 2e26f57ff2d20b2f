"""Who is signed in to the moderator console, and what they may do.

Two ways in: a console account (argon2id password hash, created with `run.py add-account`), or a
one-time login link a moderator asks for in chat (`console`), valid for minutes and usable once.
Either gives a session cookie (HttpOnly, SameSite=Strict) that expires; the server keeps only
hashes of session and link tokens. Every state-changing request must carry the session's CSRF
token in the X-CSRF-Token header (or a `csrf` form field), compared in constant time.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from floorbridge.core.chats import Platform, Role, Staff, UserRef
from floorbridge.core.console import ConsoleAccount, ConsoleSession
from floorbridge.core.ids import MeetingId
from floorbridge.core.ports import ConsoleStore
from floorbridge.core.tokens import token_hash

SESSION_COOKIE = "fb_console"
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so the answer takes the same time. Made at
    the first sign-in, not at import: hashing on purpose takes about 130 ms, and every process and
    command of floorbridge imports this module."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


@dataclass(frozen=True)
class Who:
    subject: str
    name: str
    roles: dict[MeetingId, Role]
    csrf: str


class ConsoleAuth:
    def __init__(self, store: ConsoleStore, staff: Staff, *, public_url: str, session_minutes: int = 480,
                 link_minutes: int = 10, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.staff = staff
        self.public_url = public_url.rstrip("/")
        self.session_time = timedelta(minutes=session_minutes)
        self.link_time = timedelta(minutes=link_minutes)
        self.clock = clock

    # ---------------------------------------------------------------- accounts

    async def add_account(self, username: str, password: str, roles: dict[MeetingId, Role],
                          display_name: str = "") -> None:
        if len(password) < 12:
            raise ValueError("a console password needs at least 12 characters")
        hashed = await asyncio.to_thread(hash_password, password)
        await self.store.save_account(ConsoleAccount(username, hashed, display_name or username, roles))

    async def check_password(self, username: str, password: str) -> ConsoleAccount | None:
        account = await self.store.account(username) if username else None
        try:  # argon2 takes tens of milliseconds of CPU on purpose: keep it off the event loop
            await asyncio.to_thread(_HASHER.verify, account.password_hash if account else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        return account

    # ---------------------------------------------------------------- sessions

    async def open_session(self, subject: str) -> tuple[str, ConsoleSession]:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = ConsoleSession(subject, secrets.token_urlsafe(32), now, now + self.session_time)
        await self.store.create_session(token_hash(token), session)
        return token, session

    def set_cookie(self, response: web.StreamResponse, request: web.Request, token: str) -> None:
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", secure=request.secure,
                            path="/", max_age=int(self.session_time.total_seconds()))

    async def close_session(self, request: web.Request) -> None:
        token = request.cookies.get(SESSION_COOKIE, "")
        if token:
            await self.store.delete_session(token_hash(token))

    async def login_link(self, user: UserRef) -> str:
        """A one-time link for a moderator who asked in chat."""
        token = secrets.token_urlsafe(32)
        await self.store.create_login_link(token_hash(token), str(user), self.clock() + self.link_time)
        return f"{self.public_url}/console/login/{token}"

    async def use_login_link(self, token: str) -> str | None:
        if not 20 <= len(token) <= 100:
            return None
        return await self.store.use_login_link(token_hash(token), self.clock())

    # ---------------------------------------------------------------- who is this

    async def who(self, request: web.Request) -> Who | None:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token or len(token) > 100:
            return None
        session = await self.store.session(token_hash(token), self.clock())
        if session is None:
            return None
        kind, _, name = session.subject.partition(":")
        if kind == "account":
            account = await self.store.account(name)
            if account is None:
                return None
            return Who(session.subject, account.display_name or account.username, dict(account.roles), session.csrf)
        try:
            user = UserRef(Platform(kind), name)
        except ValueError:
            return None
        roles = {m: people[user] for m, people in self.staff.members.items() if user in people}
        return Who(session.subject, str(user), roles, session.csrf)

    async def require(self, request: web.Request, meeting_id: MeetingId, roles: Iterable[Role],
                      *, csrf: bool = False) -> Who:
        who = await self.who(request)
        if who is None:
            raise web.HTTPUnauthorized(text="sign in to the console first")
        if who.roles.get(meeting_id) not in set(roles):
            raise web.HTTPForbidden(text=f"you are not a moderator of {meeting_id}")
        if csrf:
            sent = request.headers.get("X-CSRF-Token", "")
            if not sent and request.content_type != "application/json":
                sent = str((await request.post()).get("csrf", ""))
            if not hmac.compare_digest(sent.encode(), who.csrf.encode()):
                raise web.HTTPForbidden(text="missing or wrong CSRF token; reload the page")
        return who


CONSOLE = web.AppKey("console_auth", ConsoleAuth)
