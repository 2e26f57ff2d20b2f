"""The moderators' review of mail from chat: what the console's mail page does.

    mail                            what waits: the quarantine, relays to approve, deadlines to confirm
    mail N                          message #N: sender, state, the deadlines found
    mail N release                  take it out of the quarantine into the archive
    mail N relay | decline          relay it to the chats, or keep it in the archive only
    mail N accept K [KIND] [DATE]   accept the K-th deadline (corrected: kind and/or YYYY-MM-DD)
    mail N reject K                 reject the K-th deadline

Quarantined mail may be spam or carry personal details: the review runs in a private chat or in
one of the meeting's moderators' chats, for its moderators and secretariat only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING

from floorbridge.core.announcements import DeadlineState, MailStatus, RelayState, StoredMail
from floorbridge.core.chats import ChatRef, Staff
from floorbridge.core.deadline import DeadlineKind
from floorbridge.core.errors import ConcurrentChange, InvalidInput, NotFound
from floorbridge.core.ids import MeetingId
from floorbridge.core.ports import MailDesk
from floorbridge.core.richtext import Block, Button, Part, b, code, i, link, message, p, ul

from .announcements import deadline_parts, letter_blocks
from .events import Reply
from .i18n import Translator
from .present import Viewer
from .slot_dialogue import MeetingOf

if TYPE_CHECKING:
    from .conversation import Context

MAX_LISTED = 15
KIND_WORDS = {k.value: k for k in DeadlineKind} | {"visa": DeadlineKind.VISA_SUPPORT,
                                                   "speaking": DeadlineKind.SPEAKING_SLOT,
                                                   "contribution": DeadlineKind.CONTRIBUTIONS}


def _say(*blocks: Block, buttons: Sequence[Sequence[Button]] = ()) -> list[Reply]:
    return [Reply(message(*blocks, buttons=buttons))]


class MailReview:
    """The `mail` command; the conversation routes it here."""

    def __init__(self, staff: Staff, staff_chats: Mapping[MeetingId, Sequence[ChatRef]], *,
                 meeting_of: MeetingOf) -> None:
        self.desk: MailDesk | None = None  # set by the service that owns the mail intake
        self.staff = staff
        self.staff_chats = staff_chats
        self._meeting_of = meeting_of

    async def handle(self, ctx: Context) -> list[Reply]:
        t = ctx.t
        if self.desk is None:
            return _say(p(t._("Mail is not received here.")))
        found = await self._meeting_of(ctx)
        if isinstance(found, Reply):
            return [found]
        meeting, _version = found
        if self.staff.role(meeting.id, ctx.incoming.user) is None:
            return _say(p(t._("Only the moderators and the secretariat of {meeting} review its mail.")
                          .format(meeting=meeting.title)))
        if ctx.incoming.is_group and ctx.incoming.chat not in self.staff_chats.get(meeting.id, ()):
            return _say(p(t._("Mail can hold personal details: review it in a private chat or in the moderators' "
                              "chat.")))
        viewer = Viewer(t, meeting, ctx.profile.timezone)
        desk = self.desk
        if not ctx.args:
            return await self._waiting(t, desk, meeting.id, meeting.title)
        word, rest = ctx.args[0].lstrip("#"), ctx.args[1:]
        if not word.isdigit() or len(word) > 18:
            return _say(p(t._("{word} is not a message number: send {example}.")
                          .format(word=word[:30], example="mail 12")))
        try:
            mail = await desk.get(meeting.id, int(word))
        except NotFound:
            return _say(p(t._("{meeting} has no message #{id}.").format(meeting=meeting.title, id=word)))
        if not rest:
            return self._show(viewer, desk, mail)
        by = f"{ctx.incoming.user.platform.value}:{ctx.incoming.user.user_id}"
        verb = rest[0].lower()
        try:
            if verb == "release":
                mail = await desk.release(meeting.id, mail.id, by)
            elif verb == "relay":
                mail = await desk.relay(meeting.id, mail.id, by)
            elif verb == "decline":
                mail = await desk.decline(meeting.id, mail.id, by)
            elif verb in ("accept", "reject"):
                decided = self._deadline_args(t, mail, rest[1:], accept=verb == "accept")
                if isinstance(decided, str):
                    return _say(p(decided))
                deadline_id, kind, due = decided
                mail = await desk.decide_deadline(meeting.id, mail.id, deadline_id, accept=verb == "accept",
                                                  by=by, kind=kind, due=due)
            else:
                return _say(p(t._("{word} is not something to do with a message: use release, relay, decline, "
                                  "accept or reject.").format(word=verb[:30])))
        except InvalidInput as exc:
            return _say(p(t._("Refused: {reason}.").format(reason="; ".join(str(x) for x in exc.problems))))
        except (ConcurrentChange, NotFound):
            return _say(p(t._("Message #{id} changed meanwhile; look at it again.").format(id=mail.id)),
                        buttons=[[Button(t._("Show #{id}").format(id=mail.id), f"mail {mail.id}")]])
        return [Reply(message(p("✅ ", b(t._("Done."))), *self._show(viewer, desk, mail)[0].message.blocks,
                              buttons=self._buttons(t, mail)))]

    # ---------------------------------------------------------------- looking

    async def _waiting(self, t: Translator, desk: MailDesk, meeting_id: MeetingId, title: str) -> list[Reply]:
        waiting = await desk.waiting(meeting_id)
        if not waiting:
            return _say(p(t._("No mail of {meeting} waits for a moderator.").format(meeting=title)))
        rows: list[list[Part]] = []
        buttons: list[list[Button]] = []
        for mail in waiting[:MAX_LISTED]:
            rows.append([code(f"#{mail.id}"), " ", b(mail.subject[:100] or t._("(no subject)")), " — ",
                         self._state(t, mail)])
            buttons.append([Button(t._("Show #{id}").format(id=mail.id), f"mail {mail.id}")])
        blocks: list[Block] = [p(b(t._("Mail waiting for a moderator: {meeting}").format(meeting=title))), ul(rows)]
        if len(waiting) > MAX_LISTED:
            more = len(waiting) - MAX_LISTED
            blocks.append(p(i(t.n_("… and {n} more", "… and {n} more", more).format(n=more))))
        return _say(*blocks, buttons=buttons)

    @staticmethod
    def _state(t: Translator, mail: StoredMail) -> str:
        if mail.status is MailStatus.QUARANTINED:
            return t._("quarantined: {reason}").format(reason=mail.reason[:200])
        proposed = sum(1 for d in mail.deadlines if d.state is DeadlineState.PROPOSED)
        parts = []
        if mail.relay is RelayState.WAITING:
            parts.append(t._("waits for approval"))
        elif mail.relay is RelayState.RELAYED:
            parts.append(t._("relayed"))
        else:
            parts.append(t._("not relayed"))
        if proposed:
            parts.append(t.n_("{n} deadline to confirm", "{n} deadlines to confirm", proposed).format(n=proposed))
        return ", ".join(parts)

    def _buttons(self, t: Translator, mail: StoredMail) -> list[list[Button]]:
        rows: list[list[Button]] = []
        if mail.status is MailStatus.QUARANTINED:
            rows.append([Button(t._("Release"), f"mail {mail.id} release")])
        if mail.relay is RelayState.WAITING:
            rows.append([Button(t._("Relay"), f"mail {mail.id} relay"),
                         Button(t._("Do not relay"), f"mail {mail.id} decline")])
        for n, d in enumerate(mail.deadlines, start=1):
            if d.state is DeadlineState.PROPOSED:
                rows.append([Button(t._("Accept deadline {n}").format(n=n), f"mail {mail.id} accept {n}"),
                             Button(t._("Reject deadline {n}").format(n=n), f"mail {mail.id} reject {n}")])
        return rows

    def _show(self, viewer: Viewer, desk: MailDesk, mail: StoredMail) -> list[Reply]:
        t = viewer.t
        url = desk.archive_url(mail.meeting_id or MeetingId(""), mail.id)
        head = p(code(f"#{mail.id}"), " · ", self._state(t, mail), " · DKIM ", mail.dkim or "?")
        if mail.parsed is None:
            blocks: list[Block] = [head, p(b(t._("The message could not be read.")))]
        elif mail.status is MailStatus.QUARANTINED:
            blocks = [head, p(b(mail.parsed.subject or t._("(no subject)"))),
                      p(t._("From: {sender}").format(sender=mail.parsed.sender)),
                      p(mail.parsed.first_paragraph or "")]
        else:
            blocks = [head, *[blk for blk in letter_blocks(viewer, mail, url)]]
        if mail.deadlines:
            lines: list[list[Part]] = []
            for n, d in enumerate(mail.deadlines, start=1):
                state = {DeadlineState.PROPOSED: t._("to confirm"), DeadlineState.ACCEPTED: t._("accepted"),
                         DeadlineState.REJECTED: t._("rejected")}[d.state]
                lines.append([f"{n}. ", *deadline_parts(viewer, d, mail.subject)[:3],
                              f" · {d.found.confidence:.2f} · ", i(state), " — ", d.found.excerpt[:160]])
            blocks += [p(b(t._("Deadlines found:"))), ul(lines),
                       p(i(t._("To correct one, send {example}.").format(example=f"mail {mail.id} accept 1 "
                                                                                   "registration 2025-04-30")))]
        if mail.archived:
            blocks.append(p(link(url, t._("The archived copy"))))
        return _say(*blocks, buttons=self._buttons(t, mail))

    @staticmethod
    def _deadline_args(t: Translator, mail: StoredMail, words: list[str], *,
                       accept: bool) -> tuple[str, DeadlineKind | None, date | None] | str:
        if not words or not words[0].isdigit() or not 1 <= int(words[0]) <= len(mail.deadlines):
            return t._("Say which deadline, by its number in {example}.").format(example=f"mail {mail.id}")
        deadline_id = mail.deadlines[int(words[0]) - 1].id
        kind: DeadlineKind | None = None
        due: date | None = None
        for word in words[1:] if accept else ():
            if word.lower() in KIND_WORDS:
                kind = KIND_WORDS[word.lower()]
                continue
            try:
                due = date.fromisoformat(word)
            except ValueError:
                kinds = ", ".join(k.value for k in DeadlineKind)
                return t._("{word} is neither a kind ({kinds}) nor a date like 2025-04-30.").format(
                    word=word[:30], kinds=kinds)
        return deadline_id, kind, due
