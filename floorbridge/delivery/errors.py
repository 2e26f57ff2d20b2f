"""How a platform adapter tells the delivery engine what became of a send."""

from __future__ import annotations


class DeliveryError(Exception):
    """Base of the outcomes other than success."""


class RateLimited(DeliveryError):
    """The platform said 429: wait exactly `retry_after` seconds. `whole_platform` when the limit is
    global (Discord's global bucket, Telegram's flood control on the bot) rather than this chat's."""

    def __init__(self, retry_after: float, *, whole_platform: bool = False, detail: str = "") -> None:
        self.retry_after = max(0.0, retry_after)
        self.whole_platform = whole_platform
        super().__init__(detail or f"rate limited for {self.retry_after:g} s")


class TemporaryFailure(DeliveryError):
    """5xx, timeouts, connection refused: retry later with back-off."""


class PermanentFailure(DeliveryError):
    """The chat is gone, the bot was blocked or kicked: never retry; stop that chat's subscription."""


class MessageRejected(DeliveryError):
    """The platform refused this message (malformed, too long): the chat is fine, so only this row
    fails, with the reason kept for the operators. Retrying would fail the same way."""
