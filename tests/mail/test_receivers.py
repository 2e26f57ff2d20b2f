"""Mail through a real SMTP and LMTP exchange (the standard library's smtplib against our aiosmtpd
receivers on 127.0.0.1): what is acknowledged with 250 is in the database, archived or in the
quarantine; what is refused is refused before acknowledgement; LMTP answers once per recipient."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from floorbridge.adapters.mail.smtp import MailServer
from floorbridge.adapters.storage.mail import NewMail
from floorbridge.core.announcements import MailStatus, RelayState

from .conftest import DLT, WSIS, MailWorld, letter

BODY = ("Dear Sir/Madam,\n\nRequests for speaking slots in the high-level segment must be received no later "
        "than 30 April 2025.\n\nYours faithfully,\nITU\n")


def _send(port: int, raw: bytes, rcpts: list[str]) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.sendmail("list-bounces@itu.int", rcpts, raw)


async def test_a_letter_over_smtp_is_stored_before_250_and_relayed(world: MailWorld, smtp: MailServer) -> None:
    raw = letter(BODY)
    refused = await asyncio.to_thread(_send, smtp.port, raw, ["wsis-2025@lists.example.org"])
    assert refused == {}
    [mail] = await world.intake.store.listing(WSIS, archived=True)
    assert mail.status is MailStatus.ACCEPTED and mail.channel == "smtp"
    assert await world.intake.store.raw(mail.id) == raw  # the bytes as sent, nothing re-encoded
    assert mail.relay is RelayState.RELAYED  # the automatic list
    rows = [item for item, _, _ in await world.svc.outbox.rows() if item.outgoing.cause == f"announcement #{mail.id}"]
    assert {r.outgoing.chat.platform.value for r in rows} == {"telegram", "matrix"}
    english = next(r for r in rows if r.outgoing.chat.platform.value == "telegram").outgoing.message.plain()
    assert "request for speaking slots" in english and "tsbmail@itu.int" in english
    assert "30 April 2025" in english and "your time" in english  # Tokyo is ahead of Geneva
    assert f"/meetings/wsis-2025/announcements/{mail.id}" in str(rows[0].outgoing.message)


async def test_unknown_meeting_is_refused_at_rcpt_and_nothing_is_stored(world: MailWorld, smtp: MailServer) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(_send, smtp.port, letter(BODY), ["no-such-meeting@lists.example.org"])
    code, text = refused.value.recipients["no-such-meeting@lists.example.org"]
    assert code == 550 and b"no meeting named 'no-such-meeting'" in text
    assert await world.intake.store.count() == 0


def _send_without_size(port: int, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.mail("list-bounces@itu.int")  # no SIZE= declared: the cap is met during DATA
        client.rcpt("wsis-2025@lists.example.org")
        return client.data(raw)


async def test_a_message_over_the_cap_is_refused_and_never_acknowledged(world: MailWorld, smtp: MailServer) -> None:
    huge = letter(BODY + "x" * 300_000)
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # SIZE= announced at MAIL FROM
        await asyncio.to_thread(_send, smtp.port, huge, ["wsis-2025@lists.example.org"])
    assert refused.value.smtp_code == 552
    code, _ = await asyncio.to_thread(_send_without_size, smtp.port, huge)
    assert code == 552
    assert await world.intake.store.count() == 0


async def test_a_malformed_message_is_quarantined_not_lost(world: MailWorld, smtp: MailServer) -> None:
    garbage = b"\x00\x01 this is not mail at all \xff\xfe\r\n\r\nbody"
    await asyncio.to_thread(_send, smtp.port, garbage, ["wsis-2025+raw@lists.example.org"])
    [mail] = await world.intake.store.listing(WSIS, archived=False)
    assert mail.status is MailStatus.QUARANTINED and mail.reason.startswith("unreadable")
    assert await world.intake.store.raw(mail.id) == garbage + b"\r\n"  # smtplib ends the DATA with CRLF
    # The moderators' chat hears of it.
    notices = [i for i, _, _ in await world.svc.outbox.rows() if "waits for a moderator" in i.outgoing.cause]
    assert [n.outgoing.chat.chat_id for n in notices] == ["-100555"]


async def test_a_retried_delivery_is_counted_once(world: MailWorld, smtp: MailServer) -> None:
    raw = letter(BODY)
    for _ in range(3):
        await asyncio.to_thread(_send, smtp.port, raw, ["wsis-2025@lists.example.org"])
    [mail] = await world.intake.store.listing(WSIS, archived=True)
    assert mail.copies == 3
    assert await world.intake.store.count() == 1
    rows = [i for i, _, _ in await world.svc.outbox.rows() if i.outgoing.cause == f"announcement #{mail.id}"]
    assert len(rows) == 2  # one per subscribed chat, not one per copy


async def test_a_storage_failure_answers_451_and_the_retry_is_stored(world: MailWorld, smtp: MailServer) -> None:
    store = world.intake.store
    real = store.add_batch
    failures = [1]

    async def flaky(mails: list[NewMail]) -> object:
        if failures:
            failures.pop()
            raise OSError("disk full")
        return await real(mails)

    store.add_batch = flaky  # type: ignore[method-assign,assignment]
    raw = letter(BODY)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await asyncio.to_thread(_send, smtp.port, raw, ["wsis-2025@lists.example.org"])
    assert refused.value.smtp_code == 451
    assert await store.count() == 0
    await asyncio.to_thread(_send, smtp.port, raw, ["wsis-2025@lists.example.org"])
    assert await store.count() == 1


def _lmtp_exchange(port: int, raw: bytes, rcpts: list[str]) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """RCPT replies, then the replies after DATA: smtplib.LMTP reads only the first of those."""
    client = smtplib.LMTP("127.0.0.1", port, timeout=10)
    try:
        client.ehlo_or_helo_if_needed()
        client.mail("list-bounces@itu.int")
        rcpt_replies = [client.rcpt(r) for r in rcpts]
        accepted = sum(1 for code, _ in rcpt_replies if code == 250)
        first = client.data(raw)
        after = [first] + [client.getreply() for _ in range(accepted - 1)]
        return rcpt_replies, after
    finally:
        client.close()


async def test_lmtp_answers_once_per_accepted_recipient_in_order(world: MailWorld, lmtp: MailServer) -> None:
    raw = letter(BODY)
    rcpts = ["wsis-2025@lists.example.org", "nobody@lists.example.org", "fg-dlt-1@lists.example.org",
             "wsis-2025+copy@lists.example.org"]
    rcpt_replies, after = await asyncio.to_thread(_lmtp_exchange, lmtp.port, raw, rcpts)
    assert [code for code, _ in rcpt_replies] == [250, 550, 250, 250]
    assert [code for code, _ in after] == [250, 250, 250]
    assert b"<wsis-2025@lists.example.org>" in after[0][1] and b"<fg-dlt-1@lists.example.org>" in after[1][1]
    wsis = await world.intake.store.listing(WSIS, archived=True)
    dlt = await world.intake.store.listing(DLT, archived=True)  # fg-dlt-1 takes mail from any list
    assert len(wsis) == 1 and wsis[0].channel == "lmtp" and wsis[0].copies == 1  # two RCPTs, one meeting
    assert len(dlt) == 1
