"""The Matrix adapter: matrix-nio, "!" commands, auto-join on invites from allowed servers.

Two clients share the bot's access token: one long-polls /sync (nio may retry there as it
likes), the other sends for the delivery engine with nio's own retries switched off, so an
M_LIMIT_EXCEEDED reaches the engine, which waits exactly as long as the homeserver asked.
Transaction ids are the outbox ids: the homeserver deduplicates them per access token, so a
send retried after a restart (same token, same device) never posts twice. The sync position
and device id are kept in a small state file so a restart neither replays old commands nor
forgets where it was.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    InviteMemberEvent,
    JoinError,
    MatrixRoom,
    RoomMessageText,
    RoomSendError,
    RoomSendResponse,
    SyncError,
    SyncResponse,
    WhoamiResponse,
)

from floorbridge.bots.events import Incoming
from floorbridge.core.chats import ChatRef, Platform, UserRef
from floorbridge.core.outbox import ChatThread, OutboxItem
from floorbridge.core.tasks import cancel_and_wait
from floorbridge.delivery.errors import MessageRejected, PermanentFailure, RateLimited, TemporaryFailure

from ..chat_bridge import ReplyQueue
from .render import COMMAND_PREFIX, render

log = logging.getLogger("floorbridge.matrix")

_GONE = {"M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_TOKEN"}
_REJECTED = {"M_TOO_LARGE", "M_BAD_JSON", "M_NOT_JSON", "M_INVALID_PARAM"}


def server_of(matrix_id: str) -> str:
    return matrix_id.split(":", 1)[1] if ":" in matrix_id else ""


class MatrixAdapter:
    platform = Platform.MATRIX

    def __init__(
        self,
        homeserver: str,
        user_id: str,
        access_token: str,
        *,
        replies: ReplyQueue,
        state_file: Path,
        allowed_servers: tuple[str, ...] = (),
        sync_timeout_ms: int = 30_000,
    ) -> None:
        self._replies = replies
        self._state_file = state_file
        self._allowed = {s.lower() for s in allowed_servers} or {server_of(user_id).lower()}
        self._sync_timeout = sync_timeout_ms
        self.user_id = user_id
        self.syncing = AsyncClient(homeserver, user_id, config=AsyncClientConfig(store_sync_tokens=False))
        self.sending = AsyncClient(
            homeserver, user_id, config=AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0)
        )
        for client in (self.syncing, self.sending):
            client.access_token = access_token
        self.syncing.add_event_callback(self._on_message, RoomMessageText)
        self.syncing.add_event_callback(self._on_invite, InviteMemberEvent)
        self._since: str | None = None
        self._started_ms = 0
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    # ---------------------------------------------------------------- lifetime

    def _load_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("user_id") == self.user_id else {}

    def _save_state(self) -> None:
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"user_id": self.user_id, "device_id": self.syncing.device_id,
                                   "since": self._since}))
        tmp.replace(self._state_file)

    async def start(self) -> None:
        who = await self.sending.whoami()
        if not isinstance(who, WhoamiResponse):
            raise RuntimeError(f"matrix: the access token is not accepted by the homeserver ({who})")
        if who.user_id != self.user_id:
            raise RuntimeError(f"matrix: the access token belongs to {who.user_id}, not {self.user_id}")
        state = self._load_state()
        for client in (self.syncing, self.sending):
            client.device_id = who.device_id or state.get("device_id") or ""
            client.user_id = self.user_id
        self._since = state.get("since")
        self._started_ms = int(time.time() * 1000)
        self._task = asyncio.create_task(self._sync_forever(), name="matrix-sync")
        async with asyncio.timeout(60):
            await self.ready.wait()
        log.info("matrix connected", extra={"user": self.user_id, "device": self.syncing.device_id})

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await self.syncing.close()
        await self.sending.close()

    async def _sync_forever(self) -> None:
        failures = 0
        while True:
            try:
                response = await self.syncing.sync(timeout=self._sync_timeout, since=self._since,
                                                   full_state=self._since is None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                response = SyncError(repr(exc))
            if isinstance(response, SyncResponse):
                failures = 0
                self._since = response.next_batch
                self._save_state()
                self.ready.set()
                continue
            failures += 1
            wait = min(60.0, 2.0 ** min(failures, 6))
            log.warning("matrix sync failed", extra={"error": str(response), "retry_in": wait})
            await asyncio.sleep(wait)

    # ---------------------------------------------------------------- incoming

    async def _on_invite(self, room: MatrixRoom, event: InviteMemberEvent) -> None:
        if event.state_key != self.user_id or event.membership != "invite":
            return
        if server_of(event.sender).lower() not in self._allowed:
            log.info("invite refused (server not allowed)", extra={"room": room.room_id, "from": event.sender})
            return
        result = await self.syncing.join(room.room_id)
        if isinstance(result, JoinError):
            log.warning("join failed", extra={"room": room.room_id, "error": result.message})

    async def _on_message(self, room: MatrixRoom, event: RoomMessageText) -> None:
        if event.sender == self.user_id or not event.body.startswith(COMMAND_PREFIX):
            return
        if event.server_timestamp < self._started_ms - 5_000 and not self.ready.is_set():
            return  # history delivered by the first sync: not addressed to this run
        incoming = Incoming(
            chat=ChatRef(Platform.MATRIX, room.room_id),
            user=UserRef(Platform.MATRIX, event.sender),
            text=event.body[len(COMMAND_PREFIX):],
            is_group=(room.joined_count or room.member_count) > 2,
            user_name=room.user_name(event.sender) or event.sender,
        )
        await self._replies.handle(incoming)

    # ---------------------------------------------------------------- outgoing (delivery.Sender)

    async def _send_content(self, room_id: str, content: dict[str, Any], tx_id: str) -> str:
        try:
            response = await self.sending.room_send(room_id, "m.room.message", content, tx_id=tx_id,
                                                    ignore_unverified_devices=True)
        except (OSError, TimeoutError) as exc:
            raise TemporaryFailure(repr(exc)) from exc
        if isinstance(response, RoomSendResponse):
            return str(response.event_id)
        assert isinstance(response, RoomSendError | ErrorResponse)
        raise _outcome(response)

    async def _send_all(self, item: OutboxItem, relates_to: dict[str, Any] | None = None) -> list[str]:
        ids: list[str] = []
        for n, content in enumerate(render(item.outgoing.message)):
            if relates_to is not None:
                content = {**content, "m.relates_to": relates_to}
            ids.append(await self._send_content(item.outgoing.chat.chat_id, content, f"{item.idempotency_key}-{n}"))
        return ids

    async def send(self, item: OutboxItem) -> str:
        return (await self._send_all(item))[-1]

    async def send_in_thread(self, item: OutboxItem, thread: ChatThread | None) -> tuple[str, ChatThread]:
        """The later messages are in the root's thread (m.thread); clients without threads show
        them as replies to the root (the fallback)."""
        if thread is None:
            ids = await self._send_all(item)
            return ids[-1], ChatThread(ids[0])
        root = thread.root_message_id
        relation = {"rel_type": "m.thread", "event_id": root, "is_falling_back": True,
                    "m.in_reply_to": {"event_id": root}}
        return (await self._send_all(item, relation))[-1], thread

    async def put_pinned(self, item: OutboxItem, existing: str | None) -> str:
        room_id = item.outgoing.chat.chat_id
        content = render(item.outgoing.message)[0]
        if existing is not None:
            edit = {
                "msgtype": "m.text",
                "body": "* " + content["body"],
                "m.new_content": content,
                "m.relates_to": {"rel_type": "m.replace", "event_id": existing},
            }
            await self._send_content(room_id, edit, f"{item.idempotency_key}-edit")
            return existing
        event_id = await self._send_content(room_id, content, f"{item.idempotency_key}-0")
        pins: list[str] = []
        current = await self.sending.room_get_state_event(room_id, "m.room.pinned_events")
        if hasattr(current, "content") and isinstance(current.content, dict):
            pins = [p for p in current.content.get("pinned", []) if isinstance(p, str)]
        result = await self.sending.room_put_state(room_id, "m.room.pinned_events", {"pinned": [event_id, *pins]})
        if isinstance(result, ErrorResponse):
            log.warning("cannot pin (the bot needs the power level for m.room.pinned_events)",
                        extra={"room": room_id, "error": result.message})
        return event_id


def _outcome(response: ErrorResponse) -> Exception:
    code = str(response.status_code or "")
    status = getattr(getattr(response, "transport_response", None), "status", 0) or 0
    text = f"{code or status} {response.message}"
    if code == "M_LIMIT_EXCEEDED" or status == 429:
        retry_ms = getattr(response, "retry_after_ms", None) or 1000
        return RateLimited(retry_ms / 1000, whole_platform=True, detail=text)
    if code in _REJECTED or status == 413:
        return MessageRejected(text)
    if code in _GONE or status in (403, 404):
        return PermanentFailure(text)
    return TemporaryFailure(text)
