"""The seed letters (ITU and WIPO circular letters, in Russian) as the lists really send them — in
several charsets and transfer encodings, some HTML-only, one lying about its charset — through a
real SMTP exchange: each must yield its deadlines."""

from __future__ import annotations

import asyncio
import base64
import html
import smtplib
from datetime import date

import pytest

from floorbridge.adapters.mail.smtp import MailServer
from floorbridge.core.announcements import DeadlineState, MailStatus
from floorbridge.core.deadline import DeadlineKind

from .conftest import DLT, LIST_AUTO, WSIS, MailWorld, letter, seed_text

K = DeadlineKind
SEEDS = {
    # The ITU-T FG DLT letter: contributions and registration by 10 October, visa support by 17 September.
    "000": (DLT, {(K.CONTRIBUTIONS, date(2017, 10, 10)), (K.REGISTRATION, date(2017, 10, 10)),
                  (K.VISA_SUPPORT, date(2017, 9, 17))}),
    "001": (DLT, set()),  # a WIPO meeting report: no deadline in it
    "002": (WSIS, {(K.SPEAKING_SLOT, date(2024, 2, 29))}),  # CL-24/2, WSIS+20 Forum 2024
    "003": (WSIS, {(K.SPEAKING_SLOT, date(2025, 4, 30))}),  # CL-25/18, WSIS+20 High-Level Event 2025
}


def _encodable(text: str, charset: str) -> str:
    """What a mail client in that charset sends: characters it lacks become their nearest ASCII."""
    replacements = {"–": "-", "—": "-", "«": '"', "»": '"', "’": "'", "“": '"', "”": '"', "…": "...", "\u00a0": " ",
                    "№": "N", "−": "-"}
    out = "".join(replacements.get(ch, ch) for ch in text)
    return out.encode(charset, errors="replace").decode(charset)


def _lying(text: str) -> bytes:
    """windows-1251 bytes declared as ISO-8859-1, 8bit: what a badly configured list server sends."""
    body = _encodable(text, "cp1251").replace("\n", "\r\n").encode("cp1251")
    head = (b"From: ITU <tsbmail@itu.int>\r\nTo: x@lists.example.org\r\nSubject: CL\r\n"
            b"Message-ID: <lying@itu.int>\r\nDate: Fri, 31 Jan 2025 16:00:00 +0000\r\n"
            b"List-Id: <" + LIST_AUTO.encode() + b">\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
    return head + body


def _html_only(text: str) -> bytes:
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))
    page = f"<html><head><style>p{{margin:0}}</style></head><body>{paragraphs}</body></html>"
    encoded = base64.encodebytes(page.encode("utf-8"))
    head = (b"From: ITU <tsbmail@itu.int>\r\nTo: x@lists.example.org\r\nSubject: =?utf-8?b?"
            + base64.b64encode("Циркулярное письмо".encode()) + b"?=\r\n"
            b"Message-ID: <html@itu.int>\r\nDate: Fri, 31 Jan 2025 16:00:00 +0000\r\n"
            b"List-Id: <" + LIST_AUTO.encode() + b">\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    return head + encoded.replace(b"\n", b"\r\n")


VARIANTS = {
    "utf-8 quoted-printable": lambda t: letter(t, charset="utf-8", cte="quoted-printable"),
    "koi8-r base64": lambda t: letter(_encodable(t, "koi8-r"), charset="koi8-r", cte="base64"),
    "windows-1251 quoted-printable": lambda t: letter(_encodable(t, "cp1251"), charset="windows-1251",
                                                      cte="quoted-printable"),
    "utf-8 8bit": lambda t: letter(t, charset="utf-8", cte="8bit"),
    "windows-1251 declared as iso-8859-1": _lying,
    "html only, base64": _html_only,
}


def _send(port: int, raw: bytes, meeting: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("list-bounces@itu.int", [f"{meeting}@lists.example.org"], raw)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("name", list(SEEDS))
async def test_each_seed_letter_yields_its_deadlines(world: MailWorld, smtp: MailServer, name: str,
                                                     variant: str) -> None:
    meeting, expected = SEEDS[name]
    raw = VARIANTS[variant](seed_text(name))
    await asyncio.to_thread(_send, smtp.port, raw, meeting)
    [mail] = await world.intake.store.listing(meeting, archived=True)
    assert mail.status is MailStatus.ACCEPTED
    assert mail.parsed is not None and "Женев" in mail.parsed.text  # read in the right charset
    assert {(d.found.kind, d.found.due) for d in mail.deadlines} == expected
    if variant == "windows-1251 declared as iso-8859-1":
        assert any("charset" in r for r in mail.parsed.repairs)


async def test_the_2025_letter_puts_its_deadline_into_the_published_feed(world: MailWorld,
                                                                         smtp: MailServer) -> None:
    await asyncio.to_thread(_send, smtp.port, VARIANTS["koi8-r base64"](seed_text("003")), WSIS)
    [mail] = await world.intake.store.listing(WSIS, archived=True)
    [slot] = mail.deadlines
    assert slot.state is DeadlineState.ACCEPTED  # confident, and not passed on 1 February 2025
    version = await world.svc.store.latest_version(WSIS)
    assert version is not None and slot.id in {d.id for d in version.deadlines}
    feed = (await world.svc.store.rendered_feeds(WSIS))["deadlines"].body
    assert b"DTSTART;VALUE=DATE:20250430" in feed and slot.id.encode() in feed
