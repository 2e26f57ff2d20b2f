"""SMTP and LMTP receivers (aiosmtpd) that a list server delivers to.

A recipient names its meeting by its local part: wsis-2025@lists.example.org, also
wsis-2025+anything@…; an unknown one is refused at RCPT (550), so the sender's server keeps the
message and bounces it. After DATA the message is stored once per meeting before the reply: 250
means it is in the database (archive or quarantine). A storage failure answers 451 and the sender
retries; an identical copy of what was stored meanwhile is only counted. SMTP gives one reply;
LMTP one per accepted recipient, in their order (RFC 2033 §4.2). A message over the size cap is
refused during DATA (552) and never acknowledged. Lines longer than RFC 5321's 1,000 octets
(8bit text from clients that do not wrap) are accepted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from floorbridge.core.ids import MeetingId

from .intake import MailIntake, Receipt

log = logging.getLogger("floorbridge.mail.smtp")

MAX_RECIPIENTS = 50


def meeting_of(address: str) -> str:
    local = address.rpartition("@")[0] if "@" in address else address
    return local.split("+", 1)[0].strip().lower()


def _describe(address: str, receipt: Receipt) -> str:
    if receipt.status.value == "quarantined":
        return f"<{address}> kept in quarantine as #{receipt.id}: {receipt.reason[:200]}"
    return f"<{address}> stored as #{receipt.id}" + ("" if receipt.new else " (a copy already received)")


class MailHandler:
    """aiosmtpd's handler hooks, for SMTP (`lmtp=False`) and LMTP."""

    def __init__(self, intake: MailIntake, *, lmtp: bool) -> None:
        self._intake = intake
        self._lmtp = lmtp
        self.channel = "lmtp" if lmtp else "smtp"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        meeting = meeting_of(address)
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        if not meeting or await self._intake.meeting(meeting) is None:
            return f"550 5.1.1 <{address}>: no meeting named {meeting[:64]!r} here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        stored: dict[str, Receipt | None] = {}
        replies: list[str] = []
        for address in envelope.rcpt_tos:
            meeting = meeting_of(address)
            if meeting not in stored:
                try:
                    stored[meeting] = await self._intake.receive(raw, channel=self.channel,
                                                                 meeting_id=MeetingId(meeting))
                except Exception:
                    log.exception("could not store a received message", extra={"meeting": meeting})
                    stored[meeting] = None
            receipt = stored[meeting]
            if receipt is None:
                replies.append(f"451 4.3.0 <{address}> cannot be stored now; try again later")
            else:
                replies.append(f"250 2.0.0 {_describe(address, receipt)}")
        if self._lmtp:
            return "\r\n".join(replies)
        if all(r.startswith("250") for r in replies):
            return "250 2.0.0 " + "; ".join(r[10:] for r in replies)[:400]
        return "451 4.3.0 The message cannot be stored now; try again later"


# RFC 5321 allows 1,000 octets a line; mail clients that send 8bit text unwrapped go far beyond it.
# Refusing them would bounce real letters, so lines up to this are taken (commands included).
LINE_LIMIT = 1 << 16


class _Smtp(SMTP):
    line_length_limit = LINE_LIMIT


class _Lmtp(LMTP):
    line_length_limit = LINE_LIMIT


class MailServer:
    """One listening SMTP or LMTP server inside the running event loop."""

    def __init__(self, intake: MailIntake, host: str, port: int, *, lmtp: bool, hostname: str = "floorbridge"):
        self._handler = MailHandler(intake, lmtp=lmtp)
        self._factory: Any = _Lmtp if lmtp else _Smtp
        self._host, self._port = host, port
        self._hostname = hostname
        self._max = intake.max_bytes
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    def _protocol(self) -> SMTP:
        server: SMTP = self._factory(self._handler, data_size_limit=self._max, enable_SMTPUTF8=True,
                                     decode_data=False, hostname=self._hostname, ident="floorbridge", timeout=120)
        return server

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self._host, self._port)
        log.info("mail receiver listening", extra={"protocol": self._handler.channel, "port": self.port})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
