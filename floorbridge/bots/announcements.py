"""How a circular letter is relayed into the meeting's chats, and how its moderators hear of one
that waits for them.

A relay is concise: subject, sender, the first paragraph, the deadlines found (in the reader's
zone too), the attachments by name, and a link to the archived copy. Letters of one mail thread
carry the same thread key, so the platforms keep them together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from floorbridge.core.announcements import DeadlineState, MailDeadline, ParsedMail, StoredMail
from floorbridge.core.chats import ChatProfile, ChatRef, NoticeKind, Subscription
from floorbridge.core.deadline import Deadline
from floorbridge.core.ids import DeadlineId, MeetingId
from floorbridge.core.meeting import Meeting
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.richtext import Block, Button, Part, b, code, i, link, message, p, ul

from .i18n import Translator, translator
from .present import Viewer

MAX_ATTACHMENTS_SHOWN = 5


def thread_key(meeting_id: MeetingId, parsed: ParsedMail) -> str:
    key = f"mail:{meeting_id}:{parsed.thread_root or parsed.message_id}"
    return key[:255]


def as_deadline(md: MailDeadline, subject: str, url: str = "") -> Deadline:
    """The meeting deadline an accepted one is published as."""
    f = md.found
    return Deadline(DeadlineId(md.id), f.kind, subject[:200] or md.id, f.due, source="mail",
                    description=f.excerpt, url=url)


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def deadline_parts(viewer: Viewer, md: MailDeadline, subject: str) -> list[Part]:
    t = viewer.t
    parts: list[Part] = [b(viewer.kind_label(md.found.kind)), " — ", viewer.due_for_reader(as_deadline(md, subject))]
    if md.state is DeadlineState.PROPOSED:
        parts += [" ", i(t._("(to be confirmed)"))]
    return parts


def letter_blocks(viewer: Viewer, mail: StoredMail, url: str) -> list[Block]:
    """The relayed announcement's body, for delegates and for moderators alike."""
    t = viewer.t
    parsed = mail.parsed
    assert parsed is not None  # only readable messages are archived
    blocks: list[Block] = [
        p(b(t._("Announcement: {meeting}").format(meeting=viewer.meeting.title))),
        p(b(parsed.subject or t._("(no subject)"))),
        p(t._("From: {sender}").format(sender=parsed.sender)),
    ]
    if parsed.first_paragraph:
        blocks.append(p(parsed.first_paragraph))
    shown = [d for d in mail.deadlines if d.state is not DeadlineState.REJECTED]
    if shown:
        blocks.append(p(b(t._("Deadlines in this letter:"))))
        blocks.append(ul([deadline_parts(viewer, d, parsed.subject) for d in shown]))
    if parsed.attachments:
        names = [f"{a.filename} ({size_text(a.size)})" for a in parsed.attachments[:MAX_ATTACHMENTS_SHOWN]]
        more = len(parsed.attachments) - len(names)
        text = ", ".join(names) + (f", … +{more}" if more > 0 else "")
        blocks.append(p(i(t.n_("Attachment (not relayed): {names}", "Attachments (not relayed): {names}",
                               len(parsed.attachments)).format(names=text))))
    blocks.append(p(link(url, t._("Read the whole letter"))))
    return blocks


def relay_messages(
    meeting: Meeting,
    mail: StoredMail,
    url: str,
    subscribers: Iterable[tuple[Subscription, ChatProfile]],
) -> list[OutgoingMessage]:
    """One message per chat that follows the meeting's announcements."""
    assert mail.parsed is not None
    key = thread_key(meeting.id, mail.parsed)
    out: list[OutgoingMessage] = []
    for sub, profile in subscribers:
        if not sub.active or not sub.wants(NoticeKind.ANNOUNCEMENTS):
            continue
        viewer = Viewer(translator(profile.language), meeting, profile.timezone)
        t = viewer.t
        out.append(OutgoingMessage(
            sub.chat,
            message(*letter_blocks(viewer, mail, url), buttons=[[Button(t._("Deadlines"), "deadlines")]]),
            meeting_id=meeting.id,
            dedup_key=f"mail:{mail.id}:{sub.chat}",
            cause=f"announcement #{mail.id}",
            thread_key=key,
        ))
    return out


def _review_line(t: Translator, mail: StoredMail) -> list[Part]:
    parts: list[Part] = [code(f"#{mail.id}"), " ", b(mail.subject[:120] or t._("(no subject)"))]
    if mail.sender:
        parts += [" — ", mail.sender[:120]]
    return parts


def waiting_notice(
    meeting: Meeting,
    mail: StoredMail,
    moderator_chats: Sequence[ChatRef],
    language: str = "en",
) -> list[OutgoingMessage]:
    """Tell the moderators' chats that a message waits for them: quarantined, to approve for
    relay, or with deadlines to confirm. Nothing when nothing waits."""
    t = translator(language)
    what: list[str] = []
    if mail.status.value == "quarantined":
        what.append(t._("Quarantined: {reason}").format(reason=mail.reason[:300]))
    if mail.relay.value == "waiting":
        what.append(t._("Waits for approval before it is relayed."))
    proposed = sum(1 for d in mail.deadlines if d.state is DeadlineState.PROPOSED)
    if proposed:
        what.append(t.n_("{n} deadline to confirm.", "{n} deadlines to confirm.", proposed).format(n=proposed))
    if not what:
        return []
    buttons: list[list[Button]] = [[Button(t._("Show #{id}").format(id=mail.id), f"mail {mail.id}")]]
    return [
        OutgoingMessage(
            target,
            message(p(b(t._("Mail for {meeting}").format(meeting=meeting.title))), p(*_review_line(t, mail)),
                    ul([[w] for w in what]), buttons=buttons),
            meeting_id=meeting.id,
            dedup_key=f"mail-review:{mail.id}:{target}",
            cause=f"mail #{mail.id} waits for a moderator",
        )
        for target in moderator_chats
    ]
