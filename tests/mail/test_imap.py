"""The IMAP poller of floorbridge/adapters/mail/imap.py against a real Dovecot (tests/fakes/dovecot.py).

Dovecot is not optional: without it every test here fails at set-up and says how to install it
(``bash scripts/test-services.sh``, which ``make test`` runs).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from floorbridge.adapters.mail.imap import ImapAccount, ImapAuthError, ImapPoller
from tests.fakes.dovecot import Dovecot, MailUser

from .conftest import new_server

LOGGER = "floorbridge.mail.imap"

KOI8_TEXT = "Уважаемые коллеги! Срок регистрации делегаций - 15 июля.\n"


def message(subject: str, body: bytes = b"Hello.\n", *, charset: str = "us-ascii") -> bytes:
    head = (
        f"From: secretariat@itu.example\nTo: delegates@lists.example\nSubject: {subject}\n"
        f"Message-ID: <{uuid.uuid4().hex}@itu.example>\nMIME-Version: 1.0\n"
        f"Content-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: 8bit\n\n"
    )
    return head.encode("ascii") + body


def crlf(raw: bytes) -> bytes:
    """Line endings as IMAP stores them (imaplib's APPEND turns bare LF into CRLF)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def user(dovecot: Dovecot) -> MailUser:
    return dovecot.add_user()


class Inbox:
    """The deliver() callback of a test: records what came, can be told to fail for some messages."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.attempts: list[bytes] = []
        self.fail_when: Callable[[bytes], bool] = lambda raw: False
        self._arrived = asyncio.Event()

    async def __call__(self, raw: bytes) -> None:
        self.attempts.append(raw)
        if self.fail_when(raw):
            raise RuntimeError("the store is down")
        self.raw.append(raw)
        self._arrived.set()

    async def wait_for(self, count: int, within: float) -> float:
        """Seconds until ``count`` messages have been delivered; fails after ``within``."""
        began = time.monotonic()
        async with asyncio.timeout(within):
            while len(self.raw) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return time.monotonic() - began


@pytest.fixture
async def pollers() -> AsyncIterator[list[ImapPoller]]:
    """Pollers a test made; stopped at its end whatever happened."""
    made: list[ImapPoller] = []
    yield made
    for poller in made:
        await poller.stop()


def make_poller(
    made: list[ImapPoller],
    server: Dovecot,
    user: MailUser,
    inbox: Inbox,
    *,
    password: str | None = None,
    poll_seconds: float = 60.0,
    **options: object,
) -> ImapPoller:
    account = ImapAccount(
        host=server.host,
        port=server.port,
        username=user.username,
        password=user.password if password is None else password,
        tls=False,
        poll_seconds=poll_seconds,
    )
    options.setdefault("backoff_initial", 0.1)
    options.setdefault("timeout", 5.0)
    poller = ImapPoller(account, inbox, name=f"test {user.username}", **options)  # type: ignore[arg-type]
    made.append(poller)
    return poller


async def wait_until(condition: Callable[[], bool], within: float) -> None:
    """Polls ``condition`` (state of the poller or the server, which has no event to wait on)."""
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


# ----------------------------------------------------------------------------- one pass


async def test_run_once_delivers_every_unseen_message_raw_in_uid_order_then_marks_it_seen(
    dovecot: Dovecot, user: MailUser, pollers: list[ImapPoller]
) -> None:
    sent = [
        message("Circular 1"),
        message("=?koi8-r?B?8MnT2M3P?= 2", KOI8_TEXT.encode("koi8-r"), charset="koi8-r"),
        message("Circular 3", b"Any bytes: " + bytes(range(0x80, 0x100)) + b"\n", charset="windows-1251"),
    ]
    uids = [dovecot.append(user, raw) for raw in sent]
    assert dovecot.search(user, "UNSEEN") == uids
    inbox = Inbox()
    poller = make_poller(pollers, dovecot, user, inbox)

    assert await poller.run_once() == 3

    assert [crlf(raw) for raw in inbox.raw] == [crlf(raw) for raw in sent]
    assert KOI8_TEXT.encode("koi8-r").replace(b"\n", b"\r\n") in inbox.raw[1]
    for uid in uids:
        assert "\\Seen" in dovecot.flags(user, uid)
    assert poller.uses_idle is True
    assert await poller.run_once() == 0
    assert len(inbox.attempts) == 3


async def test_message_delivered_by_a_local_delivery_agent_into_maildir_is_read_too(
    dovecot: Dovecot, user: MailUser, pollers: list[ImapPoller]
) -> None:
    raw = message("Dropped into Maildir/new", "Привет\n".encode("koi8-r"), charset="koi8-r")
    dovecot.deliver_to_maildir(user, raw)
    inbox = Inbox()
    poller = make_poller(pollers, dovecot, user, inbox)

    assert await poller.run_once() == 1
    assert crlf(inbox.raw[0]) == crlf(raw)


async def test_a_failing_deliver_leaves_its_message_unseen_and_it_comes_again_on_the_next_pass(
    dovecot: Dovecot, user: MailUser, pollers: list[ImapPoller], caplog: pytest.LogCaptureFixture
) -> None:
    uids = [dovecot.append(user, message(f"Circular {n}")) for n in (1, 2, 3)]
    inbox = Inbox()
    inbox.fail_when = lambda raw: b"Subject: Circular 2" in raw
    poller = make_poller(pollers, dovecot, user, inbox)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert await poller.run_once() == 2

    assert [b"Circular 1" in inbox.raw[0], b"Circular 3" in inbox.raw[1]] == [True, True]
    assert "\\Seen" in dovecot.flags(user, uids[0])
    assert "\\Seen" not in dovecot.flags(user, uids[1])
    assert "\\Seen" in dovecot.flags(user, uids[2])
    assert dovecot.search(user, "UNSEEN") == [uids[1]]
    warning = next(r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING)
    assert f"UID {uids[1]}" in warning.getMessage() and "stays unseen" in warning.getMessage()

    inbox.fail_when = lambda raw: False
    assert await poller.run_once() == 1
    assert b"Circular 2" in inbox.raw[2]
    assert dovecot.search(user, "UNSEEN") == []


class AppendOnConnect(logging.Handler):
    """Appends a message the moment the poller logs "connected": after its SELECT, before its first SEARCH.

    The append is a blocking IMAP session of its own, so it is stored before the poller sends anything more.
    """

    def __init__(self, server: Dovecot, user: MailUser, raw: bytes) -> None:
        super().__init__()
        self.server, self.user, self.raw = server, user, raw
        self.uids: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(f"test {self.user.username}: connected") and not self.uids:
            self.uids.append(self.server.append(self.user, self.raw))


async def test_mail_announced_at_the_end_of_a_search_that_missed_it_is_taken_in_the_same_pass(
    dovecot: Dovecot, user: MailUser, pollers: list[ImapPoller]
) -> None:
    # Dovecot answers that SEARCH with nothing and then "* 1 EXISTS"; the IDLE that would follow does not
    # announce the message again, so without another search it would wait poll_seconds (here 60 s).
    inbox = Inbox()
    poller = make_poller(pollers, dovecot, user, inbox)
    hook = AppendOnConnect(dovecot, user, message("Arrived between SELECT and SEARCH"))
    logger = logging.getLogger(LOGGER)
    logger.addHandler(hook)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        delivered = await poller.run_once()
    finally:
        logger.removeHandler(hook)
        logger.setLevel(level)

    assert hook.uids, "the message was not appended"
    assert delivered == 1
    assert b"Arrived between SELECT and SEARCH" in inbox.raw[0]
    assert "\\Seen" in dovecot.flags(user, hook.uids[0])


# ----------------------------------------------------------------------------- waiting for mail


async def test_with_idle_a_new_message_arrives_at_once(
    dovecot: Dovecot, user: MailUser, pollers: list[ImapPoller]
) -> None:
    inbox = Inbox()
    poller = make_poller(pollers, dovecot, user, inbox, poll_seconds=60.0)  # polling could not bring it in time
    await poller.start()
    await wait_until(lambda: poller.idling, within=5)
    assert poller.uses_idle is True

    uid = await asyncio.to_thread(dovecot.append, user, message("Agenda change"))
    took = await inbox.wait_for(1, within=5)

    assert b"Agenda change" in inbox.raw[0]
    assert took < 5
    await wait_until(lambda: "\\Seen" in dovecot.flags(user, uid), within=2)
    await wait_until(lambda: poller.idling, within=2)  # and back in IDLE for the next one
    await asyncio.to_thread(dovecot.append, user, message("Second change"))
    await inbox.wait_for(2, within=5)


async def test_without_idle_on_the_server_the_poller_polls(dovecot_no_idle: Dovecot, pollers: list[ImapPoller]) -> None:
    user = dovecot_no_idle.add_user()
    inbox = Inbox()
    poller = make_poller(pollers, dovecot_no_idle, user, inbox, poll_seconds=0.3)
    await poller.start()
    await wait_until(lambda: poller.connected, within=5)
    assert poller.uses_idle is False

    await asyncio.to_thread(dovecot_no_idle.append, user, message("Polled"))
    await inbox.wait_for(1, within=3)

    assert b"Polled" in inbox.raw[0]
    assert poller.idling is False


async def test_idle_can_be_turned_off_on_a_server_that_has_it(
    dovecot: Dovecot, user: MailUser, pollers: list[ImapPoller]
) -> None:
    inbox = Inbox()
    poller = make_poller(pollers, dovecot, user, inbox, poll_seconds=0.3, idle=False)
    await poller.start()
    await wait_until(lambda: poller.connected, within=5)
    assert poller.uses_idle is False

    await asyncio.to_thread(dovecot.append, user, message("Polled anyway"))
    await inbox.wait_for(1, within=3)
    assert poller.idling is False


async def test_idle_is_reissued_after_poll_seconds(dovecot: Dovecot, user: MailUser, pollers: list[ImapPoller]) -> None:
    # A failed delivery is retried when IDLE is re-issued, even with no new mail to wake the poller.
    dovecot.append(user, message("Retried"))
    inbox = Inbox()
    inbox.fail_when = lambda raw: len(inbox.attempts) == 1
    poller = make_poller(pollers, dovecot, user, inbox, poll_seconds=0.5)
    await poller.start()

    await inbox.wait_for(1, within=5)
    assert len(inbox.attempts) == 2
    assert poller.uses_idle is True


# ----------------------------------------------------------------------------- failures


async def test_wrong_password_is_retried_with_a_warning_that_never_shows_the_password(
    pollers: list[ImapPoller], caplog: pytest.LogCaptureFixture
) -> None:
    server = new_server()
    try:
        user = server.add_user()
        wrong = 'Wr0ng"pass\\word-7c1f'
        inbox = Inbox()
        caplog.set_level(logging.DEBUG)  # aioimaplib's DEBUG records carry the LOGIN line
        poller = make_poller(pollers, server, user, inbox, password=wrong)

        with pytest.raises(ImapAuthError, match="refused the login"):
            await poller.run_once()

        await poller.start()

        def warnings() -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]

        await wait_until(lambda: len(warnings()) >= 2, within=10)
        began = time.monotonic()
        await poller.stop()
        assert time.monotonic() - began < 2
        assert poller.running is False

        assert "refused the login" in warnings()[0].getMessage()
        assert "retrying in" in warnings()[0].getMessage()
        assert any("LOGIN" in r.getMessage() for r in caplog.records if r.name.startswith("aioimaplib"))
        escaped_forms = [wrong, wrong.replace("\\", "\\\\"), wrong.replace("\\", "\\\\").replace('"', '\\"')]
        for record in caplog.records:
            text = record.getMessage() + (record.exc_text or "")
            for form in escaped_forms:
                assert form not in text, record
            assert "Wr0ng" not in text and "word-7c1f" not in text, record
        assert "Wr0ng" not in caplog.text
        assert inbox.attempts == []
    finally:
        server.close()


async def test_stop_returns_promptly_while_idling(dovecot: Dovecot, user: MailUser, pollers: list[ImapPoller]) -> None:
    poller = make_poller(pollers, dovecot, user, Inbox())
    await poller.start()
    await wait_until(lambda: poller.idling, within=5)
    began = time.monotonic()
    await poller.stop()
    assert time.monotonic() - began < 2
    assert poller.connected is False


async def test_after_a_server_restart_the_poller_reconnects_and_delivers(
    pollers: list[ImapPoller], caplog: pytest.LogCaptureFixture
) -> None:
    server = new_server()
    try:
        user = server.add_user()
        inbox = Inbox()
        poller = make_poller(pollers, server, user, inbox, poll_seconds=60.0)
        await poller.start()
        await wait_until(lambda: poller.idling, within=5)

        with caplog.at_level(logging.INFO, logger=LOGGER):
            await asyncio.to_thread(server.stop)
            await wait_until(lambda: poller.failures >= 2, within=5)  # connection lost, then refused
            await asyncio.to_thread(server.start)
            await wait_until(lambda: poller.idling, within=10)

            await asyncio.to_thread(server.append, user, message("After the restart"))
            await inbox.wait_for(1, within=5)

        assert b"After the restart" in inbox.raw[0]
        warned = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
        assert any("connection lost" in text for text in warned), warned
        assert any("connected again" in r.getMessage() for r in caplog.records if r.name == LOGGER)
        assert poller.failures == 0
    finally:
        server.close()


async def test_a_missing_mailbox_is_an_error_not_a_silent_empty_pass(dovecot: Dovecot, user: MailUser) -> None:
    account = ImapAccount(dovecot.host, dovecot.port, user.username, user.password, mailbox="No Such", tls=False)
    poller = ImapPoller(account, Inbox(), timeout=5.0)
    try:
        with pytest.raises(Exception, match="cannot select 'No Such'"):
            await poller.run_once()
    finally:
        await poller.stop()


def test_the_password_is_not_in_the_account_repr() -> None:
    account = ImapAccount("imap.example", 993, "delegate", "s3cret-pass")
    assert "s3cret-pass" not in repr(account)


async def test_with_a_cap_a_big_message_is_read_only_one_byte_past_it(
    dovecot: Dovecot, user: MailUser, pollers: list[ImapPoller]
) -> None:
    """A message over `max_bytes` is never fetched whole: delivery gets its first max_bytes + 1
    bytes, enough to be refused as too large; a message under the cap comes whole."""
    small = message("Circular 1")
    big = message("Circular 2") + b"\r\n" + b"x" * 200_000 + b"\r\n"
    for raw in (small, big):
        dovecot.append(user, raw)
    inbox = Inbox()
    poller = make_poller(pollers, dovecot, user, inbox, max_bytes=50_000)
    assert await poller.run_once() == 2
    assert inbox.raw[0].replace(b"\r\n", b"\n") == small.replace(b"\r\n", b"\n")
    assert len(inbox.raw[1]) == 50_001 and b"Subject: Circular 2" in inbox.raw[1]
    assert dovecot.search(user, "UNSEEN") == []  # both dealt with
