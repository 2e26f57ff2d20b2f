"""A running floorbridge (the real composition root: SQLite store, the demo meetings, the chat
store, the mail intake) with mail rules for the two demo meetings, and a builder of realistic mail.

The intake's clock stands on 1 February 2025: the WSIS letter's deadline (30 April 2025) is still
ahead, so it can be accepted and published."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from floorbridge.adapters.mail.intake import MailIntake
from floorbridge.adapters.mail.smtp import MailServer
from floorbridge.adapters.settings import Settings, load_settings
from floorbridge.adapters.storage import SqlMailStore
from floorbridge.app import Services, services
from floorbridge.core.chats import ChatProfile, ChatRef, Platform, Subscription
from floorbridge.core.ids import MeetingId
from tests.fakes.dovecot import Dovecot, DovecotNotFoundError

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "tests" / "data" / "seeds"  # the letters of ../shared/seeds, kept with the tests
WSIS = MeetingId("wsis-2025")
DLT = MeetingId("fg-dlt-1")
NOW = datetime(2025, 2, 1, 9, 0, tzinfo=UTC)
SUBSCRIBER = ChatRef(Platform.TELEGRAM, "1001")
MODERATORS = ChatRef(Platform.TELEGRAM, "-100555")
LIST_AUTO = "wsis-announce.lists.itu.int"
LIST_MODERATED = "wsis-discuss.lists.itu.int"

CONFIG = f"""
database:
  url: sqlite+aiosqlite:///{{db}}
meetings:
  staff:
    wsis-2025:
      moderators: [telegram:42]
      chats: [telegram:-100555]
mail:
  max_bytes: 200000
  meetings:
    wsis-2025:
      lists:
        - list_id: {LIST_AUTO}
          mode: automatic
        - list_id: {LIST_MODERATED}
          mode: moderated
      senders: ["@itu.int", "secretariat@wsis.org"]
      dkim: {{dkim}}
      auto_accept_confidence: 0.8
    fg-dlt-1:
      mode: automatic
"""


@dataclass
class DkimKey:
    selector: bytes
    domain: bytes
    private_pem: bytes
    record: bytes

    def dns(self, name: bytes, timeout: int = 5) -> bytes | None:
        return self.record if name == self.selector + b"._domainkey." + self.domain + b"." else None


def make_key(domain: str = "itu.int") -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return DkimKey(b"fb2025", domain.encode(), private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))


def letter(
    body: str,
    *,
    subject: str = "WSIS+20 High-Level Event 2025: request for speaking slots",
    sender: str = "ITU Secretariat <tsbmail@itu.int>",
    list_id: str | None = LIST_AUTO,
    charset: str = "utf-8",
    cte: str = "quoted-printable",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    html: str | None = None,
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "wsis-2025@lists.example.org"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2025, 1, 31, 16, 0, tzinfo=UTC))
    msg["Message-ID"] = message_id or make_msgid(domain="itu.int")
    if list_id:
        msg["List-Id"] = f"WSIS announcements <{list_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body, charset=charset, cte=cte)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    if attachment is not None:
        msg.add_attachment(attachment[1], maintype="application", subtype="pdf", filename=attachment[0])
    return msg.as_bytes(policy=SMTP)


def seed_text(name: str) -> str:
    return next(SEEDS.glob(f"{name}*.txt")).read_text(encoding="utf-8")


@dataclass
class MailWorld:
    svc: Services
    intake: MailIntake
    settings: Settings
    key: DkimKey


async def _world(tmp_path: Path, dkim: str) -> AsyncIterator[MailWorld]:
    config = tmp_path / "floorbridge.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "fb.db", dkim=dkim))
    settings = load_settings(config, env={"FLOORBRIDGE_MAIL_HMAC_SECRET": "k" * 40})
    key = make_key()
    async with services(settings) as svc:
        await svc.seed()
        svc.mail = MailIntake(SqlMailStore(svc.store.engine), svc.chats, svc.store, settings, publish=svc.publish,
                              moderator_chats=svc.chat.moderator_chats, dnsfunc=key.dns, clock=lambda: NOW)
        svc.chat.conversation.mail_review.desk = svc.mail
        for chat, lang in ((SUBSCRIBER, "en"), (ChatRef(Platform.MATRIX, "!ru:example.org"), "ru")):
            await svc.chats.save_profile(ChatProfile(chat, language=lang, timezone="Asia/Tokyo", meeting_id=WSIS))
            await svc.chats.save_subscription(Subscription(chat, WSIS))
        yield MailWorld(svc, svc.mail, settings, key)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[MailWorld]:
    async for w in _world(tmp_path, "record"):
        yield w


@pytest.fixture
async def smtp(world: MailWorld) -> AsyncIterator[MailServer]:
    """Our SMTP receiver on a free port of 127.0.0.1."""
    async for server in _receiver(world, lmtp=False):
        yield server


@pytest.fixture
async def lmtp(world: MailWorld) -> AsyncIterator[MailServer]:
    async for server in _receiver(world, lmtp=True):
        yield server


async def _receiver(world: MailWorld, *, lmtp: bool) -> AsyncIterator[MailServer]:
    server = MailServer(world.intake, "127.0.0.1", 0, lmtp=lmtp)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def strict_world(tmp_path: Path) -> AsyncIterator[MailWorld]:
    async for w in _world(tmp_path, "require"):
        yield w


# ---------------------------------------------------------------- a real IMAP server (Dovecot)


def new_server(**kwargs: object) -> Dovecot:
    """A started Dovecot; without one on this machine the test fails (it is not skipped) and says why."""
    try:
        server = Dovecot(**kwargs)  # type: ignore[arg-type]
    except DovecotNotFoundError as exc:
        missing = str(exc)
    else:
        server.start()
        return server
    pytest.fail(missing, pytrace=False)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    server = new_server()
    yield server
    server.close()


@pytest.fixture(scope="session")
def dovecot_no_idle() -> Iterator[Dovecot]:
    server = new_server(idle=False)
    yield server
    server.close()
