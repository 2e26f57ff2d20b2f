"""IMAP poller: the raw RFC 822 bytes of every unseen message in a mailbox, handed to a callback.

``ImapPoller`` logs in with aioimaplib, selects the mailbox and, per pass (``run_once``), fetches every
UNSEEN message with ``UID FETCH <uid> BODY.PEEK[]`` (PEEK: fetching does not set ``\\Seen``), awaits
``deliver(raw)`` for each in UID order and only after it returned sets ``\\Seen`` (``UID STORE +FLAGS``).
A ``deliver`` that raises leaves its message unseen, the pass goes on with the next one, and the next
pass tries it again. Delivery is at least once: a connection lost between ``deliver`` returning and the
STORE brings the same message again, so ``deliver`` should be idempotent (the Message-ID is a good key).

Started (``start()``), the poller loops: a pass, then a wait for new mail, with IDLE (RFC 2177) when the
server announces it (re-issued every ``poll_seconds``, at most 29 minutes) or else a sleep of
``poll_seconds``. Connection trouble, timeouts and a refused login are logged as warnings (logger
``floorbridge.mail.imap``) and retried with exponential back-off up to five minutes. The password is
never logged: it is not in any message of ours, and a filter redacts it from this logger's and
aioimaplib's records should it turn up (aioimaplib logs the LOGIN line at DEBUG level, with the password
masked only when it needs no quoting).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aioimaplib

from floorbridge.core.tasks import cancel_and_wait

__all__ = ["Deliver", "ImapAccount", "ImapAuthError", "ImapError", "ImapPoller"]

log = logging.getLogger("floorbridge.mail.imap")

Deliver = Callable[[bytes], Awaitable[None]]
"""Takes one raw message; raises when it could not take it (the message then stays unseen)."""

IDLE_MAX_SECONDS = 29 * 60.0  # RFC 2177: re-issue IDLE at least every 29 minutes
BACKOFF_MAX_SECONDS = 300.0

_T = TypeVar("_T")
_BODY_LITERAL = re.compile(rb"BODY\[\](?:<0>)? \{\d+\}$")  # <0>: a partial fetch from the start
_UID = re.compile(rb"\bUID (\d+)\b")
_NEW_MAIL = re.compile(rb"^\d+ (EXISTS|RECENT)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ImapAccount:
    """Where the mail is: one mailbox of one account on one IMAP server."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    mailbox: str = "INBOX"
    tls: bool = True  # IMAP over TLS (port 993 usually); False speaks plain IMAP, for local servers only
    poll_seconds: float = 60.0  # without IDLE, the pause between passes; with IDLE, its re-issue period


class ImapError(Exception):
    """The server could not be used: connection refused or lost, a timeout, a command it refused."""


class ImapAuthError(ImapError):
    """The server refused the login."""


# ----------------------------------------------------------------------------- password redaction


class _Redactor(logging.Filter):
    """Replaces the passwords of every ImapPoller made in this process with *** in the records it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: Counter[str] = Counter()

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            for form in _forms(secret):
                text = text.replace(form, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


@functools.lru_cache(maxsize=64)
def _forms(secret: str) -> tuple[str, ...]:
    """How a password can show in a log line, longest first: as it is, quoted as LOGIN sends it (RFC 3501
    quoted string), and both inside the repr() of the bytes sent, as aioimaplib logs them."""
    quoted = secret.replace("\\", "\\\\").replace('"', '\\"')
    forms = {secret, quoted}
    for form in (secret, quoted):
        # With a double quote in them, bytes reprs are delimited by single quotes, as a LOGIN line's is.
        forms.add(repr(b'"' + form.encode("utf-8"))[3:-1])
    return tuple(sorted(forms, key=len, reverse=True))


_redactor = _Redactor()
for _logger in (log, logging.getLogger("aioimaplib.aioimaplib")):
    if _redactor not in _logger.filters:
        _logger.addFilter(_redactor)


def _quote(mailbox: str) -> str:
    """A mailbox name as an IMAP quoted string (aioimaplib sends arguments as they are)."""
    if re.search(r"[\x00\r\n]", mailbox):
        raise ValueError("a mailbox name cannot hold NUL, CR or LF")
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(response: Any) -> str:
    """The server's words in a response, for a log line."""
    lines = [bytes(line) for line in getattr(response, "lines", ()) if isinstance(line, bytes | bytearray)]
    words = b" ".join(line for line in lines[-2:] if len(line) < 500).decode("utf-8", "replace")
    return f"{getattr(response, 'result', '?')} {words}".strip()


def _body(lines: Iterable[object], uid: int) -> bytes | None:
    """The BODY[] literal of message ``uid`` in a UID FETCH response, or None when the server sent none."""
    items = list(lines)
    for index, line in enumerate(items[:-1]):
        if type(line) is not bytes or not _BODY_LITERAL.search(line):
            continue
        literal = items[index + 1]
        if not isinstance(literal, bytearray):
            continue
        tail = items[index + 2] if index + 2 < len(items) else b""
        found = _UID.search(line) or (_UID.search(tail) if isinstance(tail, bytes) else None)
        if found is None or int(found.group(1)) == uid:
            return bytes(literal)
    return None


# ----------------------------------------------------------------------------- the poller


class ImapPoller:
    """Feeds the unseen messages of ``account``'s mailbox to ``deliver``, oldest UID first.

    ``idle=False`` polls even when the server has IDLE. ``timeout`` bounds each IMAP command (and the
    connection's set-up); ``backoff_initial`` is the first pause after a failure, doubled after each further
    one up to ``backoff_max``. ``ssl_context`` replaces the default (certificate-checking) one for ``tls``.

    ``run_once`` may be called without ``start()``; while the loop runs, a ``run_once`` waits for the loop's
    current pass or IDLE to end, as both use the one connection.
    """

    def __init__(
        self,
        account: ImapAccount,
        deliver: Deliver,
        *,
        name: str = "",
        idle: bool = True,
        timeout: float = 30.0,
        backoff_initial: float = 1.0,
        backoff_max: float = BACKOFF_MAX_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
        max_bytes: int | None = None,
    ) -> None:
        if account.poll_seconds <= 0:
            raise ValueError("poll_seconds must be positive")
        if timeout <= 0 or backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("timeout and backoff_initial must be positive, backoff_max at least backoff_initial")
        self.account = account
        self.name = name or f"imap {account.username}@{account.host}:{account.port}/{account.mailbox}"
        self._deliver = deliver
        self._idle_wanted = idle
        self._timeout = timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = min(backoff_max, BACKOFF_MAX_SECONDS)
        self._ssl_context = ssl_context
        self._max_bytes = max_bytes
        self._client: Any = None  # aioimaplib.IMAP4 while connected
        self._lost = asyncio.Event()
        self._server_idle = False
        self._announced = False  # the server said EXISTS/RECENT since the last SEARCH was sent
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0  # consecutive failed passes of the loop; 0 once one succeeds
        if account.password:
            _redactor.secrets[account.password] += 1

    def __repr__(self) -> str:
        return f"ImapPoller({self.name!r}, connected={self.connected}, uses_idle={self.uses_idle})"

    @property
    def uses_idle(self) -> bool:
        """Whether the loop waits with IDLE: the server's CAPABILITY (known once connected) has it, and allowed."""
        return self._idle_wanted and self._server_idle

    @property
    def connected(self) -> bool:
        return self._client is not None and not self._lost.is_set()

    @property
    def idling(self) -> bool:
        """Whether the connection is in IDLE right now, waiting for the server to announce mail."""
        return self.connected and bool(self._client.has_pending_idle())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ------------------------------------------------------------------------- lifetime

    async def start(self) -> None:
        """Start the loop in a task of its own and return at once."""
        if self.running:
            return
        self._task = asyncio.create_task(self._run(), name=f"floorbridge {self.name}")

    async def stop(self) -> None:
        """Stop the loop (waiting for nothing but its cancellation) and log out."""
        task, self._task = self._task, None
        if task is not None:
            try:
                await cancel_and_wait(task)
            except Exception:
                log.exception("%s: the loop had ended with an error", self.name)
        await self._logout()

    async def __aenter__(self) -> ImapPoller:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        while True:
            try:
                async with self._lock:
                    await self._pass()
                    if self.failures:
                        log.info("%s: connected again after %d failed attempts", self.name, self.failures)
                        self.failures = 0
                    await self._wait_for_mail()
            except Exception as exc:
                self.failures += 1
                delay = min(self._backoff_initial * 2 ** (self.failures - 1), self._backoff_max)
                # An ImapError's message starts with the poller's name already.
                what = (
                    str(exc) if isinstance(exc, ImapError) else f"{self.name}: unexpected {type(exc).__name__}: {exc}"
                )
                log.warning(
                    "%s; retrying in %.1f s (failure %d in a row)",
                    _redactor.redact(what),
                    delay,
                    self.failures,
                    exc_info=not isinstance(exc, ImapError),
                )
                await self._drop()
                await asyncio.sleep(delay)

    # ------------------------------------------------------------------------- one pass

    async def run_once(self) -> int:
        """Connect if needed and deliver every unseen message; returns how many were delivered.

        Raises ImapError (ImapAuthError for a refused login) when the server cannot be used; a failing
        ``deliver`` does not raise here: its message stays unseen for the next pass.
        """
        async with self._lock:
            return await self._pass()

    async def _pass(self) -> int:
        await self._ensure_connected()
        attempted: set[int] = set()
        delivered = 0
        while True:  # search again: mail that came during the pass is picked up by it
            self._announced = False
            uids = sorted(set(await self._search_unseen()) - attempted)
            if not uids and not self._announced:
                return delivered
            for uid in uids:
                attempted.add(uid)
                if await self._take(uid):
                    delivered += 1

    async def _search_unseen(self) -> list[int]:
        response = await self._io(self._client.uid_search("UNSEEN", charset=None), "UID SEARCH UNSEEN")
        if response.result != "OK":
            raise ImapError(f"{self.name}: UID SEARCH UNSEEN failed: {_text(response)}")
        uids: list[int] = []
        for line in response.lines[:-1]:
            if isinstance(line, bytes):
                uids.extend(int(token) for token in line.split() if token.isdigit())
        return uids

    async def _take(self, uid: int) -> bool:
        """Fetch, deliver and flag one message; False when it was not delivered."""
        # No overall limit: a big message may take long. aioimaplib times the FETCH out after ``timeout``
        # seconds without data.
        # With a cap, at most one byte more than it is fetched: a bigger message is known to be too
        # big (deliver quarantines it) without ever being held whole in memory.
        part = f"BODY.PEEK[]<0.{self._max_bytes + 1}>" if self._max_bytes else "BODY.PEEK[]"
        fetch = self._client.uid("fetch", str(uid), part)
        response = await self._io(fetch, f"UID FETCH {uid}", limit=None)
        if response.result != "OK":
            raise ImapError(f"{self.name}: UID FETCH {uid} failed: {_text(response)}")
        raw = _body(response.lines, uid)
        if raw is None:
            log.info("%s: message UID %d has gone (expunged meanwhile?); skipped", self.name, uid)
            return False
        try:
            await self._deliver(raw)
        except Exception:
            log.warning(
                "%s: delivering message UID %d (%d bytes) failed; it stays unseen and is tried again on the next pass",
                self.name,
                uid,
                len(raw),
                exc_info=True,
            )
            return False
        response = await self._io(self._client.uid("store", str(uid), "+FLAGS", r"(\Seen)"), f"UID STORE {uid}")
        if response.result != "OK":
            # Delivered but not flagged: the next pass brings it again (delivery is at least once).
            raise ImapError(f"{self.name}: UID STORE {uid} +FLAGS (\\Seen) failed: {_text(response)}")
        log.debug("%s: delivered message UID %d (%d bytes)", self.name, uid, len(raw))
        return True

    # ------------------------------------------------------------------------- waiting for mail

    async def _wait_for_mail(self) -> None:
        if not self.uses_idle:
            await asyncio.sleep(self.account.poll_seconds)
            return
        client = self._client
        period = min(self.account.poll_seconds, IDLE_MAX_SECONDS)
        queue: asyncio.Queue[Any] = client.protocol.idle_queue
        while not queue.empty():  # pushes left from the previous IDLE are covered by the pass just made
            queue.get_nowait()
        idle = await self._io(client.idle_start(timeout=period), "IDLE")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + period
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            while (remaining := deadline - loop.time()) > 0:
                push = asyncio.ensure_future(queue.get())
                try:
                    await asyncio.wait({push, lost, idle}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    push.cancel()
                if lost.done():
                    raise ImapError(f"{self.name}: connection lost while idling")
                if idle.done() or not push.done() or push.cancelled():
                    break  # the server ended IDLE, or the period is over
                lines = push.result()
                if lines is aioimaplib.STOP_WAIT_SERVER_PUSH or lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                if any(isinstance(line, bytes) and _NEW_MAIL.match(line) for line in lines):
                    log.debug("%s: new mail announced: %r", self.name, lines)
                    break
        finally:
            lost.cancel()
        if client.has_pending_idle():
            client.idle_done()
        response = await self._io(idle, "IDLE DONE")
        if response.result != "OK":
            raise ImapError(f"{self.name}: IDLE ended with {_text(response)}")

    # ------------------------------------------------------------------------- connection

    async def _ensure_connected(self) -> None:
        if self._client is not None and not self._lost.is_set() and self._client.get_state() == aioimaplib.SELECTED:
            return
        await self._drop()
        await self._connect()

    async def _connect(self) -> None:
        account = self.account
        lost = asyncio.Event()

        def connection_lost(exc: Exception | None) -> None:
            lost.set()

        if account.tls:
            client = aioimaplib.IMAP4_SSL(
                account.host, account.port, timeout=self._timeout, ssl_context=self._ssl_context
            )
        else:
            client = aioimaplib.IMAP4(account.host, account.port, timeout=self._timeout)
        client.protocol.conn_lost_cb = connection_lost  # IMAP4_SSL does not pass one on
        self._watch_announcements(client)
        self._client, self._lost = client, lost
        where = f"{account.host}:{account.port}"
        try:
            await self._io(client.wait_hello_from_server(), f"connecting to {where}")
            response = await self._io(client.login(account.username, account.password), "LOGIN")
            if response.result != "OK":
                raise ImapAuthError(
                    f"{self.name}: {where} refused the login of {account.username!r}: {_text(response)}"
                )
            # Capabilities change at login (RFC 3501 6.2.3): ask again rather than trust the greeting's.
            await self._io(client.protocol.capability(), "CAPABILITY")
            self._server_idle = client.has_capability("IDLE")
            response = await self._io(client.select(_quote(account.mailbox)), f"SELECT {account.mailbox}")
            if response.result != "OK":
                raise ImapError(f"{self.name}: cannot select {account.mailbox!r}: {_text(response)}")
        except BaseException:
            await self._drop()
            raise
        log.info(
            "%s: connected (%s), waiting for mail with %s",
            self.name,
            "TLS" if account.tls else "plain",
            "IDLE" if self.uses_idle else f"polls every {account.poll_seconds:g} s",
        )

    def _watch_announcements(self, client: Any) -> None:
        """Notes the server's ``* n EXISTS`` / ``* n RECENT`` lines that come outside IDLE.

        A server reports mail that arrived between two commands at the end of the next one: Dovecot answers a
        UID SEARCH that cannot see the new message yet with ``* SEARCH`` and then ``* 1 EXISTS``. aioimaplib
        drops such an untagged line (no command of its name is pending), and the IDLE that follows does not
        announce the message again, so it would wait up to ``poll_seconds``. Seeing the line, the pass
        searches once more before idling. aioimaplib has no public hook for untagged lines, hence the wrap of
        its protocol's handler; without that handler the poll period remains the safety net.
        """
        protocol = client.protocol
        handle = getattr(protocol, "_untagged_response", None)
        if handle is None:
            log.warning(
                "%s: this aioimaplib hides untagged responses; mail arriving mid-pass may wait for the next poll",
                self.name,
            )
            return

        @functools.wraps(handle)
        def untagged(line: bytes) -> Any:
            if _NEW_MAIL.match(line.removeprefix(b"* ")):
                self._announced = True
            return handle(line)

        protocol._untagged_response = untagged

    async def _io(self, operation: Awaitable[_T], what: str, limit: float | None = -1.0) -> _T:
        """Await one IMAP operation, failing with ImapError on a lost connection, a timeout or a protocol error."""
        seconds = self._timeout if limit is not None and limit < 0 else limit
        task = asyncio.ensure_future(operation)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({task, lost}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            exc = task.exception()
            if exc is None:
                return task.result()
            if isinstance(exc, ImapError):
                raise exc
            if isinstance(exc, OSError | TimeoutError | aioimaplib.AioImapException):
                detail = str(exc) or type(exc).__name__
                raise ImapError(f"{self.name}: {what} failed: {_redactor.redact(detail)}") from None
            raise exc
        if self._lost.is_set():
            raise ImapError(f"{self.name}: connection lost during {what}")
        raise ImapError(f"{self.name}: {what} timed out after {seconds or 0:g} s")

    async def _logout(self) -> None:
        client = self._client
        if client is None:
            return
        try:
            if not self._lost.is_set() and client.get_state() in (aioimaplib.AUTH, aioimaplib.SELECTED):
                if client.has_pending_idle():
                    client.idle_done()
                await self._io(client.logout(), "LOGOUT", limit=min(self._timeout, 5.0))
        except ImapError as exc:
            log.debug("%s: %s", self.name, exc)
        finally:
            await self._drop()

    async def _drop(self) -> None:
        """Forget the connection: close it and cancel what aioimaplib still has pending on it."""
        client, self._client = self._client, None
        if client is None:
            return
        self._lost.set()
        protocol = client.protocol
        handle = getattr(client, "_idle_waiter", None)
        if handle is not None:
            handle.cancel()
        pending = [*client.tasks, *protocol.tasks]
        connecting = getattr(client, "_client_task", None)
        if connecting is not None:
            pending.append(connecting)
        for task in pending:
            task.cancel()
        if protocol.transport is not None:
            protocol.transport.close()
        if pending:
            done, _ = await asyncio.wait(pending, timeout=1.0)
            for task in done:  # retrieved, so asyncio does not log them as never retrieved
                if not task.cancelled():
                    task.exception()
