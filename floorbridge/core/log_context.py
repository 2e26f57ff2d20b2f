"""What the current task is working on, for every log line it writes: the web request (its id,
also answered in X-Request-Id) or the outbox message being delivered (its idempotency key)."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
delivery_id: ContextVar[str | None] = ContextVar("delivery_id", default=None)
