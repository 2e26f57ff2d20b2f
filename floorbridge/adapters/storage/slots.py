"""SqlSlotStore: floorbridge.core.ports.SlotStore on SQLite or PostgreSQL.

A request's `updated_at` is its optimistic-concurrency token: `update_request` only replaces the
row still carrying the `updated_at` the caller read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from floorbridge.core.errors import ConcurrentChange, NotFound
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.slots import Mode, ProtocolRank, SlotCall, SlotForm, SlotRequest, SlotStatus, Stakeholder
from floorbridge.core.tokens import token_hash

from .engine import reading, writing
from .outbox import insert_outbox
from .statements import upsert, utc_now
from .tables import slot_calls, slot_requests


class SqlSlotStore:
    """Every method runs in its own transaction; a request and its messages are written together."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    # calls

    async def save_call(self, call: SlotCall) -> None:
        values = {
            "meeting_id": call.meeting_id,
            "call_id": call.id,
            "title": call.title,
            "deadline": call.deadline,
            "sessions": list(call.sessions),
            "minutes": call.minutes,
            "one_per_delegation": call.one_per_delegation,
            "modes": sorted(m.value for m in call.modes),
            "languages": list(call.languages),
        }
        async with writing(self._engine) as conn:
            await upsert(conn, slot_calls, values, ["meeting_id", "call_id"])

    async def get_call(self, meeting_id: MeetingId, call_id: str) -> SlotCall | None:
        query = select(slot_calls).where(slot_calls.c.meeting_id == meeting_id, slot_calls.c.call_id == call_id)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return _call(row) if row is not None else None

    async def calls(self, meeting_id: MeetingId) -> list[SlotCall]:
        """The meeting's calls, earliest deadline first (then by id)."""
        query = (
            select(slot_calls)
            .where(slot_calls.c.meeting_id == meeting_id)
            .order_by(slot_calls.c.deadline, slot_calls.c.call_id)
        )
        async with reading(self._engine) as conn:
            return [_call(r) for r in (await conn.execute(query)).all()]

    # requests

    async def add_request(self, request: SlotRequest, messages: Sequence[OutgoingMessage]) -> None:
        """Insert a new request; ConcurrentChange when its ref (or feed token) is already taken."""
        try:
            async with writing(self._engine) as conn:
                await conn.execute(slot_requests.insert().values(**_request_row(request)))
                await insert_outbox(conn, messages, self._clock())
        except IntegrityError as exc:
            async with reading(self._engine) as conn:
                call = (
                    await conn.execute(
                        select(slot_calls.c.call_id).where(
                            slot_calls.c.meeting_id == request.meeting_id, slot_calls.c.call_id == request.call_id
                        )
                    )
                ).scalar()
            if call is None:
                raise NotFound(f"{request.meeting_id} has no speaking-slot call {request.call_id!r}") from exc
            raise ConcurrentChange(f"speaking-slot request {request.ref} already exists") from exc

    async def update_request(
        self, request: SlotRequest, expected_updated_at: datetime | None, messages: Sequence[OutgoingMessage]
    ) -> None:
        same = (
            slot_requests.c.updated_at.is_(None)
            if expected_updated_at is None
            else slot_requests.c.updated_at == expected_updated_at
        )
        values = {k: v for k, v in _request_row(request).items() if k != "ref"}
        async with writing(self._engine) as conn:
            result = await conn.execute(
                update(slot_requests).where(slot_requests.c.ref == request.ref, same).values(**values)
            )
            if not result.rowcount:
                exists = (
                    await conn.execute(select(slot_requests.c.ref).where(slot_requests.c.ref == request.ref))
                ).scalar()
                if exists is None:
                    raise NotFound(f"there is no speaking-slot request {request.ref!r}")
                raise ConcurrentChange(
                    f"speaking-slot request {request.ref} was changed by someone else; look at it again"
                )
            await insert_outbox(conn, messages, self._clock())

    async def get_request(self, ref: str) -> SlotRequest | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(select(slot_requests).where(slot_requests.c.ref == ref))).first()
        return _request(row) if row is not None else None

    async def requests(self, meeting_id: MeetingId, call_id: str | None = None) -> list[SlotRequest]:
        """The meeting's requests (of one call), in order of receipt."""
        query = select(slot_requests).where(slot_requests.c.meeting_id == meeting_id)
        if call_id is not None:
            query = query.where(slot_requests.c.call_id == call_id)
        query = query.order_by(slot_requests.c.received_at, slot_requests.c.ref)
        async with reading(self._engine) as conn:
            return [_request(r) for r in (await conn.execute(query)).all()]

    async def request_by_feed_token(self, token: str) -> SlotRequest | None:
        if not token:
            return None
        async with reading(self._engine) as conn:
            found = select(slot_requests).where(slot_requests.c.feed_token_hash == token_hash(token))
            row = (await conn.execute(found)).first()
        return _request(row) if row is not None else None

    async def requests_of(self, requester: str) -> list[SlotRequest]:
        """Everything `requester` filed, in every meeting, in order of receipt."""
        query = (
            select(slot_requests)
            .where(slot_requests.c.requester == requester)
            .order_by(slot_requests.c.received_at, slot_requests.c.ref)
        )
        async with reading(self._engine) as conn:
            return [_request(r) for r in (await conn.execute(query)).all()]


def _call(r: Any) -> SlotCall:
    return SlotCall(
        meeting_id=MeetingId(r.meeting_id),
        id=r.call_id,
        title=r.title,
        deadline=r.deadline,
        sessions=tuple(SessionId(s) for s in r.sessions),
        minutes=r.minutes,
        one_per_delegation=bool(r.one_per_delegation),
        modes=frozenset(Mode(m) for m in r.modes),
        languages=tuple(r.languages),
    )


def _request_row(request: SlotRequest) -> dict[str, Any]:
    form = request.form
    return {
        "ref": request.ref,
        "call_id": request.call_id,
        "meeting_id": request.meeting_id,
        "requester": request.requester,
        "name": form.name,
        "title": form.title,
        "delegation": form.delegation,
        "stakeholder": form.stakeholder.value,
        "rank": int(form.rank),
        "session_id": form.session,
        "mode": form.mode.value,
        "language": form.language,
        "received_at": request.received_at,
        "status": request.status.value,
        "reason": request.reason,
        "approved_session": request.approved_session,
        "slot_order": request.order,
        "slot_start": request.slot_start,
        "slot_minutes": request.slot_minutes,
        "updated_at": request.updated_at,
        "notify": request.notify,
        "feed_token": request.feed_token or None,
        "feed_token_hash": token_hash(request.feed_token) if request.feed_token else None,
    }


def _request(r: Any) -> SlotRequest:
    return SlotRequest(
        ref=r.ref,
        call_id=r.call_id,
        meeting_id=MeetingId(r.meeting_id),
        requester=r.requester,
        form=SlotForm(
            name=r.name,
            title=r.title,
            delegation=r.delegation,
            stakeholder=Stakeholder(r.stakeholder),
            rank=ProtocolRank(r.rank),
            session=SessionId(r.session_id),
            mode=Mode(r.mode),
            language=r.language,
        ),
        received_at=r.received_at,
        status=SlotStatus(r.status),
        reason=r.reason,
        approved_session=SessionId(r.approved_session) if r.approved_session is not None else None,
        order=r.slot_order,
        slot_start=r.slot_start,
        slot_minutes=r.slot_minutes,
        updated_at=r.updated_at,
        notify=r.notify,
        feed_token=r.feed_token or "",
    )
