"""The mail receivers the configuration enables (SMTP, LMTP, IMAP mailboxes), started and stopped
with the service."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from floorbridge.core.ids import MeetingId

from ..settings import Settings
from .imap import ImapAccount, ImapPoller
from .intake import MailIntake
from .smtp import MailServer

log = logging.getLogger("floorbridge.mail")


def _deliver_to(intake: MailIntake, meeting_id: MeetingId) -> Callable[[bytes], Awaitable[None]]:
    async def deliver(raw: bytes) -> None:
        await intake.receive(raw, channel="imap", meeting_id=meeting_id)  # raises: the message stays unseen

    return deliver


class MailReceivers:
    def __init__(self, intake: MailIntake, settings: Settings) -> None:
        mail = settings.mail
        self.servers: list[MailServer] = []
        if mail.smtp.enabled:
            self.servers.append(MailServer(intake, mail.smtp.host, mail.smtp.port, lmtp=False))
        if mail.lmtp.enabled:
            self.servers.append(MailServer(intake, mail.lmtp.host, mail.lmtp.port, lmtp=True))
        self.pollers: list[ImapPoller] = []
        for n, box in enumerate(mail.imap):
            secret = settings.secret(f"imap:{n}")
            if secret is None:  # refused at load; kept for settings built in code
                log.warning("IMAP mailbox without a password: not polled", extra={"mailbox": n})
                continue
            account = ImapAccount(box.host, box.port, box.username, secret.get_secret_value(), box.mailbox,
                                  tls=box.tls, poll_seconds=box.poll_seconds)
            self.pollers.append(ImapPoller(account, _deliver_to(intake, MeetingId(box.meeting)),
                                           name=f"{box.meeting}:{box.username}@{box.host}",
                                           max_bytes=intake.max_bytes))

    async def start(self) -> None:
        for server in self.servers:
            await server.start()
        for poller in self.pollers:
            await poller.start()

    async def stop(self) -> None:
        for poller in self.pollers:
            await poller.stop()
        for server in self.servers:
            await server.stop()
