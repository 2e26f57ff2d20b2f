"""The intake's rules, the quarantine and its review (console desk and chat), deadlines into the
meeting's published deadlines and feed, moderated relays, and mail threads."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dkim
import icalendar
import pytest

from floorbridge.bots.events import Incoming
from floorbridge.core.announcements import DeadlineState, MailStatus, RelayState
from floorbridge.core.chats import ChatProfile, ChatRef, Platform, UserRef
from floorbridge.core.deadline import DeadlineKind
from floorbridge.core.errors import InvalidInput

from .conftest import LIST_AUTO, LIST_MODERATED, MODERATORS, WSIS, MailWorld, letter

BODY = ("Dear Sir/Madam,\n\nRequests for speaking slots in the high-level segment must be received no later "
        "than 30 April 2025.\n\nRegistration closes on 15 June 2025.\n\nYours faithfully,\nITU\n")
MODERATOR = UserRef(Platform.TELEGRAM, "42")
DELEGATE = UserRef(Platform.TELEGRAM, "1001")


async def _receive(world: MailWorld, raw: bytes) -> int:
    receipt = await world.intake.receive(raw, channel="http", meeting_id=WSIS)
    return receipt.id


async def _chat(world: MailWorld, text: str, *, user: UserRef = MODERATOR, chat: ChatRef | None = None,
                group: bool = False) -> str:
    chat = chat or ChatRef(Platform.TELEGRAM, user.user_id)
    if await world.svc.chats.get_profile(chat) is None:
        await world.svc.chats.save_profile(ChatProfile(chat, is_group=group, meeting_id=WSIS, started=True))
    replies = await world.svc.chat.conversation.handle(Incoming(chat, user, text, is_group=group))
    return "\n".join(r.message.plain() for r in replies)


@pytest.mark.parametrize(("change", "reason"), [
    ({"list_id": "other.lists.example.org"}, "List-Id 'other.lists.example.org' is not one of the meeting's lists"),
    ({"list_id": None}, "no List-Id header is not one of the meeting's lists"),
    ({"sender": "Mallory <ceo@itu-int.example.com>"}, "sender ceo@itu-int.example.com is not on the meeting's "
                                                      "sender allowlist"),
])
async def test_rules_quarantine_with_the_reason(world: MailWorld, change: dict[str, object], reason: str) -> None:
    mail = await world.intake.get(WSIS, await _receive(world, letter(BODY, **change)))  # type: ignore[arg-type]
    assert mail.status is MailStatus.QUARANTINED
    assert mail.reason.startswith(reason)
    assert mail.relay is RelayState.NONE and mail.deadlines == ()
    assert await world.intake.store.listing(WSIS, archived=True) == []


async def test_a_released_message_is_archived_its_deadlines_found_and_relayed(world: MailWorld) -> None:
    mail_id = await _receive(world, letter(BODY, list_id="other.lists.example.org"))
    with pytest.raises(InvalidInput):
        await world.intake.relay(WSIS, mail_id, "telegram:42")  # not waiting for approval: quarantined
    released = await world.intake.release(WSIS, mail_id, "telegram:42")
    assert released.status is MailStatus.RELEASED
    assert {(d.found.kind, d.found.due) for d in released.deadlines} >= {
        (DeadlineKind.SPEAKING_SLOT, date(2025, 4, 30))}
    # The unknown list has no mode: the meeting's default (moderated) applies.
    assert released.relay is RelayState.WAITING
    with pytest.raises(InvalidInput):
        await world.intake.release(WSIS, mail_id, "telegram:42")


async def test_same_message_id_different_content_is_quarantined(world: MailWorld) -> None:
    first = await _receive(world, letter(BODY, message_id="<cl-25-18@itu.int>"))
    second = await _receive(world, letter(BODY + "\nP.S. corrected\n", message_id="<cl-25-18@itu.int>"))
    assert second != first
    mail = await world.intake.get(WSIS, second)
    assert mail.status is MailStatus.QUARANTINED
    assert mail.reason.startswith(f"duplicate: message #{first} in the archive has the same Message-ID")


async def test_dkim_required_accepts_a_valid_aligned_signature_only(strict_world: MailWorld) -> None:
    world = strict_world
    raw = letter(BODY)
    signature = dkim.sign(raw, world.key.selector, world.key.domain, world.key.private_pem,
                          include_headers=[b"from", b"subject", b"date", b"message-id", b"list-id"])
    good = await world.intake.get(WSIS, await _receive(world, signature + raw))
    assert good.status is MailStatus.ACCEPTED and good.dkim == "pass (itu.int)"
    unsigned = await world.intake.get(WSIS, await _receive(world, letter(BODY)))
    assert unsigned.status is MailStatus.QUARANTINED and unsigned.reason.startswith("DKIM required: none")
    tampered = signature + letter(BODY).replace(b"30 April", b"30 March")
    bad = await world.intake.get(WSIS, await _receive(world, tampered))
    assert bad.status is MailStatus.QUARANTINED and "DKIM required: fail" in bad.reason
    # A valid signature of another domain on a letter "from" ITU (a spoofed From).
    spoofed_raw = letter(BODY, sender="ITU <tsbmail@itu.int>")
    other = dkim.sign(spoofed_raw, world.key.selector, b"evil.example", world.key.private_pem)
    spoofed = await world.intake.get(WSIS, await _receive(world, other + spoofed_raw))
    assert spoofed.status is MailStatus.QUARANTINED


async def test_confident_deadlines_are_published_with_alarms_and_reminders(world: MailWorld) -> None:
    mail = await world.intake.get(WSIS, await _receive(world, letter(BODY, subject="CL-25/18 speaking slots")))
    slot = next(d for d in mail.deadlines if d.found.kind is DeadlineKind.SPEAKING_SLOT)
    assert slot.state is DeadlineState.ACCEPTED and slot.decided_by == "auto"
    version = await world.svc.store.latest_version(WSIS)
    assert version is not None
    published = {d.id: d for d in version.deadlines}
    assert published[slot.id].due == date(2025, 4, 30) and published[slot.id].source == "mail"
    assert "CL-25/18" in version.comment
    feed = (await world.svc.store.rendered_feeds(WSIS))["deadlines"]
    cal = icalendar.Calendar.from_ical(feed.body)
    event = next(e for e in cal.walk("VEVENT") if slot.id in str(e["UID"]))
    assert event.decoded("DTSTART") == date(2025, 4, 30)
    assert event.walk("VALARM")
    # Re-importing the agenda file keeps the mail's deadline.
    await world.svc.import_file(WSIS, Path("config/meetings/wsis-2025.yaml"))
    working = await world.svc.store.working_copy(WSIS)
    assert slot.id in {d.id for d in working.deadlines}


async def test_moderators_confirm_correct_and_reject_deadlines(world: MailWorld) -> None:
    body = "Please register by 15 June 2025 on the website.\n"  # a weak cue: below the threshold
    mail = await world.intake.get(WSIS, await _receive(world, letter(body, list_id=LIST_MODERATED)))
    [found] = mail.deadlines
    assert found.state is DeadlineState.PROPOSED
    assert mail.relay is RelayState.WAITING
    corrected = await world.intake.decide_deadline(WSIS, mail.id, found.id, accept=True, by="telegram:42",
                                                   kind=DeadlineKind.REGISTRATION, due=date(2025, 6, 16))
    assert corrected.deadlines[0].state is DeadlineState.ACCEPTED
    version = await world.svc.store.latest_version(WSIS)
    assert version is not None and {d.id: d.due for d in version.deadlines}[found.id] == date(2025, 6, 16)
    rejected = await world.intake.decide_deadline(WSIS, mail.id, found.id, accept=False, by="telegram:42")
    assert rejected.deadlines[0].state is DeadlineState.REJECTED
    version = await world.svc.store.latest_version(WSIS)
    assert version is not None and found.id not in {d.id for d in version.deadlines}


async def test_moderated_relay_from_chat_and_refused_to_delegates(world: MailWorld) -> None:
    mail_id = await _receive(world, letter(BODY, list_id=LIST_MODERATED, subject="<b>Hi</b> @everyone"))
    assert "Only the moderators" in await _chat(world, "mail", user=DELEGATE)
    assert "personal details" in await _chat(world, "mail", chat=ChatRef(Platform.TELEGRAM, "-100999"),
                                             group=True)
    listing = await _chat(world, "mail", chat=MODERATORS, group=True)
    assert f"#{mail_id}" in listing and "waits for approval" in listing
    shown = await _chat(world, f"mail {mail_id}")
    assert "Deadlines found:" in shown and "30 April 2025" in shown
    done = await _chat(world, f"mail {mail_id} relay")
    assert "Done." in done
    mail = await world.intake.get(WSIS, mail_id)
    assert mail.relay is RelayState.RELAYED and mail.decided_by == "telegram:42"
    rows = [i for i, _, _ in await world.svc.outbox.rows() if i.outgoing.cause == f"announcement #{mail_id}"]
    assert len(rows) == 2
    assert "does not wait for approval (it is relayed)" in await _chat(world, f"mail {mail_id} relay")


async def test_replies_of_one_mail_thread_share_a_thread_key(world: MailWorld) -> None:
    first = await _receive(world, letter(BODY, message_id="<root@itu.int>", list_id=LIST_AUTO))
    reply = await _receive(world, letter("Correction: the room is C2.\n", message_id="<r1@itu.int>",
                                         in_reply_to="<root@itu.int>", subject="Re: speaking slots"))
    other = await _receive(world, letter("Another letter.\n", message_id="<other@itu.int>"))
    rows = {i.outgoing.cause: i.outgoing.thread_key for i, _, _ in await world.svc.outbox.rows()
            if i.outgoing.chat.platform is Platform.TELEGRAM}
    assert rows[f"announcement #{first}"] == rows[f"announcement #{reply}"] == "mail:wsis-2025:root@itu.int"
    assert rows[f"announcement #{other}"] != rows[f"announcement #{first}"]


async def test_html_only_letters_are_relayed_as_text_and_attachments_listed(world: MailWorld) -> None:
    html = ("<html><body><script>alert(1)</script><p>Dear colleagues,</p><p>Registration must be completed "
            "<b>no later than 15 June 2025</b>.</p><img src='https://tracker.example/x.png'></body></html>")
    raw = letter("", html=html, attachment=("CL-25-18.pdf", b"%PDF-1.4 " + b"0" * 5000))
    mail = await world.intake.get(WSIS, await _receive(world, raw))
    assert mail.parsed is not None and "alert" not in mail.parsed.text
    assert [a.filename for a in mail.parsed.attachments] == ["CL-25-18.pdf"]
    rows = {i.outgoing.chat.platform: i.outgoing.message.plain() for i, _, _ in await world.svc.outbox.rows()
            if i.outgoing.cause == f"announcement #{mail.id}"}
    assert "Attachment (not relayed): CL-25-18.pdf (5 KB)" in rows[Platform.TELEGRAM]
    assert "Вложение (не пересылается): CL-25-18.pdf (5 KB)" in rows[Platform.MATRIX]  # that room reads Russian


async def test_deadlines_stored_but_not_published_before_a_crash_are_published_at_start(world: MailWorld) -> None:
    published: list[str] = []
    real_publish = world.intake._publish

    async def crash(meeting_id: object, comment: str) -> object:
        published.append(comment)
        raise OSError("the process died here")

    world.intake._publish = crash  # type: ignore[assignment]
    with pytest.raises(OSError):
        await _receive(world, letter(BODY))
    [mail] = await world.intake.store.listing(WSIS, archived=True)  # the message itself is safe
    slot = next(d for d in mail.deadlines if d.state is DeadlineState.ACCEPTED)
    version = await world.svc.store.latest_version(WSIS)
    assert version is not None and slot.id not in {d.id for d in version.deadlines}
    world.intake._publish = real_publish  # type: ignore[assignment]
    assert await world.intake.reconcile() >= 1
    version = await world.svc.store.latest_version(WSIS)
    assert version is not None and slot.id in {d.id for d in version.deadlines}
    assert await world.intake.reconcile() == 0


async def test_the_moderators_list_holds_only_what_waits_for_them(world: MailWorld) -> None:
    held = await _receive(world, letter(BODY, list_id="other.lists.example.org"))
    waiting = await _receive(world, letter("Please register by 15 June 2025.\n", list_id=LIST_MODERATED))
    passed = await _receive(world, letter("Please register by 15 January 2025.\n", list_id=LIST_AUTO))
    done = await _receive(world, letter("Nothing to decide here.\n", list_id=LIST_AUTO))
    assert [m.id for m in await world.intake.waiting(WSIS)] == [held, waiting]
    assert (await world.intake.get(WSIS, passed)).deadlines[0].state is DeadlineState.PROPOSED  # passed: not asked
    assert done not in [m.id for m in await world.intake.waiting(WSIS)]
    await world.intake.relay(WSIS, waiting, "telegram:42")
    assert [m.id for m in await world.intake.waiting(WSIS)] == [held, waiting]  # its deadline still waits
    [deadline] = (await world.intake.get(WSIS, waiting)).deadlines
    await world.intake.decide_deadline(WSIS, waiting, deadline.id, accept=False, by="telegram:42")
    await world.intake.release(WSIS, held, "telegram:42")
    released = await world.intake.get(WSIS, held)
    assert released.relay is RelayState.WAITING  # the refused list's relay waits for approval
    assert [m.id for m in await world.intake.waiting(WSIS)] == [held]
