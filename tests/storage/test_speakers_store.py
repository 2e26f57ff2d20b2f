"""SqlSpeakerStore on SQLite and PostgreSQL: a list comes back exactly as the core left it, a save
is all-or-nothing and moves the list from the version it started from, so of two savers from one
version exactly one wins (in one process and across engines), and big saves stay fast."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection

from floorbridge.adapters.storage import SqlAgendaStore, SqlOutbox, SqlSpeakerStore, create_engine, upgrade
from floorbridge.adapters.storage.engine import write_engines, writing
from floorbridge.adapters.storage.migrate import alembic_config
from floorbridge.adapters.storage.prepared import Prepared
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.errors import ConcurrentChange
from floorbridge.core.ids import MeetingId, SessionId
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.ports import SpeakerStore
from floorbridge.core.richtext import message, p
from floorbridge.core.speakers import (
    Actor,
    Channel,
    CloseList,
    Command,
    EndSpeech,
    Move,
    Next,
    Outcome,
    Participant,
    PauseSpeech,
    ReaddLast,
    Remove,
    ReopenList,
    RequestFloor,
    ResumeSpeech,
    SetBudget,
    SetTime,
    SpeakerList,
    SpeakerState,
    SpeechType,
    Withdraw,
)

from .conftest import MEETING, TABLES, Clock, geneva_meeting, in_utc

OPENING, WG = SessionId("opening"), SessionId("wg-data-1")
CHAIR = Actor("telegram:42", "Chair Ana", Channel.TELEGRAM, moderator=True)
GENEVA = timezone(timedelta(hours=2))  # the core may hand over any aware time; it comes back in UTC
T0 = datetime(2025, 10, 6, 9, 30, 0, 123456, tzinfo=GENEVA)


def person(n: int, channel: Channel = Channel.WEB, **changes: Any) -> Participant:
    base: dict[str, Any] = {"key": f"{channel}:{n}", "name": f"Délégué·e {n}", "delegation": f"Country {n % 7}",
                            "channel": channel}
    base.update(changes)
    return Participant(**base)


def note(text: str, key: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(ChatRef(Platform.TELEGRAM, "42"), message(p(text)), meeting_id=MEETING.id, dedup_key=key,
                           cause="list of speakers")


@pytest.fixture
async def speakers_store(store: SqlAgendaStore, clock: Clock) -> SqlSpeakerStore:
    await store.upsert_meeting(MEETING)
    s = SqlSpeakerStore(store.engine, clock=clock)
    as_port: SpeakerStore = s  # mypy checks SqlSpeakerStore against the Protocol here
    assert as_port is s
    return s


async def save(store: SqlSpeakerStore, lst: SpeakerList, commands: Sequence[tuple[Command, Actor]], now: datetime,
               messages: Sequence[OutgoingMessage] = ()) -> list[Outcome]:
    """Apply `commands` to `lst` and store the result as the floor service does: one save per batch."""
    base = lst.version
    outcomes = [lst.apply(c, a, now) for c, a in commands]
    changed = sorted({s.id for o in outcomes for s in o.changed})
    await store.save_changes(lst, base, [o.audit for o in outcomes], changed, messages)
    return outcomes


def request(n: int, channel: Channel = Channel.WEB, speech_type: SpeechType = SpeechType.CONTRIBUTION,
            **changes: Any) -> tuple[Command, Actor]:
    who = person(n, channel, **changes)
    return RequestFloor(who, speech_type, receipt=1000 + n), Actor(who.key, who.name, channel)


def chair(c: Command) -> tuple[Command, Actor]:
    return c, CHAIR


async def test_a_list_never_used_is_none_with_an_empty_trail(speakers_store: SqlSpeakerStore) -> None:
    assert await speakers_store.load_list(MEETING.id, OPENING) is None
    assert await speakers_store.lists_of(MEETING.id) == []
    assert await speakers_store.audit_trail(MEETING.id, OPENING) == []


async def test_a_list_comes_back_equal_after_every_step_of_a_real_session(speakers_store: SqlSpeakerStore) -> None:
    lst = SpeakerList(MEETING.id, OPENING)
    steps: list[list[tuple[Command, Actor]]] = [
        [chair(SetTime(120)), chair(SetBudget("Country 1", 300)), chair(SetBudget("Country 2", 600))],
        [request(1), request(2, Channel.TELEGRAM, notify="telegram:2"), request(3, Channel.ROOM, remote=False)],
        [request(4, Channel.MATRIX, SpeechType.POINT_OF_ORDER), request(5, Channel.DISCORD)],
        [chair(Next())],
        [chair(PauseSpeech())],
        [chair(ResumeSpeech())],
        [chair(Move(5, 1))],
        [chair(Remove(3))],
        [(Withdraw("web:1"), Actor("web:1", "Délégué·e 1", Channel.WEB))],
        [chair(Next())],
        [chair(PauseSpeech())],
        [chair(Next())],
        [chair(ReaddLast())],
        [chair(CloseList()), request(6, speech_type=SpeechType.POINT_OF_ORDER)],
        [chair(EndSpeech())],
        [chair(ReopenList()), chair(SetBudget("Country 2", None)), chair(SetTime(90))],
    ]
    now = T0
    for n, step in enumerate(steps):
        now += timedelta(seconds=17, microseconds=250_001 * n)
        await save(speakers_store, lst, step, now)
        loaded = await speakers_store.load_list(MEETING.id, OPENING)
        assert loaded == lst, f"after step {n}: {step}"
    assert loaded is not None
    states = {s.state for s in loaded.speakers.values()}
    assert {SpeakerState.DONE, SpeakerState.REMOVED, SpeakerState.WITHDRAWN, SpeakerState.WAITING} <= states
    assert loaded.closed is False and loaded.budgets == {"Country 1": 300} and loaded.seconds_per_speaker == 90
    assert loaded.last is not None and loaded.order and loaded.next_id == 8
    paused = [s for s in loaded.speakers.values() if s.paused_seconds]
    assert paused and all(isinstance(s.paused_seconds, float) for s in paused)
    moments = [m for s in loaded.speakers.values() for m in (s.requested_at, s.started_at, s.ended_at) if m]
    assert moments and all(in_utc(m) for m in moments)


async def test_a_running_and_a_paused_speech_come_back_as_they_were(speakers_store: SqlSpeakerStore) -> None:
    lst = SpeakerList(MEETING.id, WG)
    await save(speakers_store, lst, [request(1), request(2)], T0)
    await save(speakers_store, lst, [chair(Next())], T0 + timedelta(seconds=5))
    assert await speakers_store.load_list(MEETING.id, WG) == lst
    await save(speakers_store, lst, [chair(PauseSpeech())], T0 + timedelta(seconds=65, microseconds=1))
    loaded = await speakers_store.load_list(MEETING.id, WG)
    assert loaded == lst
    assert loaded is not None and loaded.current_speaker() is not None
    assert loaded.current_speaker() == lst.current_speaker()
    assert loaded.speakers[1].paused_at == T0 + timedelta(seconds=65, microseconds=1)


async def test_the_audit_trail_comes_back_in_version_order_with_its_actors(speakers_store: SqlSpeakerStore) -> None:
    lst = SpeakerList(MEETING.id, OPENING)
    outcomes = await save(speakers_store, lst, [request(1, Channel.TELEGRAM), request(2, Channel.ROOM)], T0)
    outcomes += await save(speakers_store, lst, [chair(Next()), chair(SetBudget("Country 1", 240))],
                           T0 + timedelta(minutes=1))
    outcomes += await save(speakers_store, lst, [chair(SetBudget("Country 1", None))], T0 + timedelta(minutes=2))
    trail = await speakers_store.audit_trail(MEETING.id, OPENING)
    assert trail == [o.audit for o in outcomes]
    assert [e.version for e in trail] == [1, 2, 3, 4, 5]
    assert trail[0].actor == Actor("telegram:1", "Délégué·e 1", Channel.TELEGRAM, moderator=False)
    assert trail[2].actor == CHAIR and trail[2].action == "next"
    assert trail[4].detail == {"delegation": "Country 1", "seconds": None}
    assert all(in_utc(e.at) for e in trail)
    assert await speakers_store.audit_trail(MEETING.id, WG) == []


async def test_lists_of_gives_every_list_of_the_meeting_and_no_other(
    store: SqlAgendaStore, speakers_store: SqlSpeakerStore
) -> None:
    other = geneva_meeting(id=MeetingId("wsis-20"))
    await store.upsert_meeting(other)
    opening, wg, elsewhere = (SpeakerList(MEETING.id, OPENING), SpeakerList(MEETING.id, WG),
                              SpeakerList(other.id, OPENING))
    await save(speakers_store, wg, [request(1), request(2), chair(Next())], T0)
    await save(speakers_store, opening, [request(3), chair(CloseList())], T0)
    await save(speakers_store, elsewhere, [request(4)], T0)
    assert await speakers_store.lists_of(MEETING.id) == [opening, wg]
    assert await speakers_store.lists_of(other.id) == [elsewhere]
    assert await speakers_store.lists_of(MeetingId("nobody")) == []


async def test_messages_are_enqueued_with_the_change_and_their_dedup_keys_honoured(
    store: SqlAgendaStore, speakers_store: SqlSpeakerStore
) -> None:
    lst = SpeakerList(MEETING.id, OPENING)
    await save(speakers_store, lst, [request(1)], T0, [note("you are number 1", "q-1"), note("hello")])
    await save(speakers_store, lst, [chair(Next())], T0, [note("you are number 1", "q-1"), note("floor", "f-1")])
    rows = await SqlOutbox(store.engine).rows()
    assert [item.outgoing.dedup_key for item, _, _ in rows] == ["q-1", None, "f-1"]
    assert rows[0][0].outgoing == note("you are number 1", "q-1")


async def test_a_save_with_only_messages_keeps_the_version(
    store: SqlAgendaStore, speakers_store: SqlSpeakerStore
) -> None:
    # The speaking timer stores its notices this way: base version = the list's version.
    lst = SpeakerList(MEETING.id, OPENING)
    await save(speakers_store, lst, [request(1), chair(Next())], T0)
    await speakers_store.save_changes(lst, lst.version, [], [], [note("30 seconds left", "w-1")])
    assert await speakers_store.load_list(MEETING.id, OPENING) == lst
    assert len(await SqlOutbox(store.engine).rows()) == 1
    assert len(await speakers_store.audit_trail(MEETING.id, OPENING)) == 2


async def table_counts(store: SqlAgendaStore) -> dict[str, int]:
    out = {}
    async with store.engine.connect() as conn:
        for table in ("speaker_lists", "speakers", "queue_audit", "outbox"):
            out[table] = (await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one()
    return out


async def test_a_save_from_a_stale_version_raises_and_writes_nothing(
    store: SqlAgendaStore, speakers_store: SqlSpeakerStore
) -> None:
    lst = SpeakerList(MEETING.id, OPENING)
    await save(speakers_store, lst, [request(1), request(2)], T0, [note("queued", "q")])
    stored = copy.deepcopy(lst)
    before = await table_counts(store)
    trail = await speakers_store.audit_trail(MEETING.id, OPENING)

    stale = copy.deepcopy(lst)
    stale.version = 7  # pretend it was read at version 7
    with pytest.raises(ConcurrentChange, match="no longer at version 7"):
        await save(speakers_store, stale, [request(3), chair(Next()), chair(SetBudget("Country 3", 60))],
                   T0 + timedelta(minutes=1), [note("floor", "f"), note("without a key")])
    fresh = SpeakerList(MEETING.id, OPENING)  # a second creator of the same list (base version 0)
    with pytest.raises(ConcurrentChange):
        await save(speakers_store, fresh, [request(9)], T0 + timedelta(minutes=2), [note("number 1", "n")])

    assert await speakers_store.load_list(MEETING.id, OPENING) == stored
    assert await speakers_store.audit_trail(MEETING.id, OPENING) == trail
    assert await table_counts(store) == before
    assert [i.outgoing.dedup_key for i, _, _ in await SqlOutbox(store.engine).rows()] == ["q"]


async def test_an_unknown_changed_speaker_is_refused_before_anything_is_written(
    store: SqlAgendaStore, speakers_store: SqlSpeakerStore
) -> None:
    lst = SpeakerList(MEETING.id, OPENING)
    lst.apply(*request(1), T0)
    with pytest.raises(ValueError, match=r"\[5\]"):
        await speakers_store.save_changes(lst, 0, [], [1, 5], [note("x")])
    assert await table_counts(store) == {"speaker_lists": 0, "speakers": 0, "queue_audit": 0, "outbox": 0}


async def race(stores: Sequence[SqlSpeakerStore], lst: SpeakerList, commands: Sequence[tuple[Command, Actor]],
               now: datetime) -> tuple[list[SpeakerList], list[BaseException | None]]:
    """Each store saves its own copy of `lst` changed by one of `commands`, all from the same version."""
    copies = [copy.deepcopy(lst) for _ in commands]
    results = await asyncio.gather(
        *(save(s, c, [cmd], now, [note(f"from saver {i}", f"saver-{i}")])
          for i, (s, c, cmd) in enumerate(zip(stores, copies, commands, strict=True))),
        return_exceptions=True,
    )
    return copies, [r if isinstance(r, BaseException) else None for r in results]


async def assert_exactly_one_won(store: SqlAgendaStore, reader: SqlSpeakerStore, copies: list[SpeakerList],
                                 errors: list[BaseException | None]) -> None:
    winners = [i for i, e in enumerate(errors) if e is None]
    assert len(winners) == 1, errors
    assert all(isinstance(e, ConcurrentChange) for e in errors if e is not None), errors
    won = copies[winners[0]]
    assert await reader.load_list(won.meeting_id, won.session_id) == won
    trail = await reader.audit_trail(won.meeting_id, won.session_id)
    assert [e.version for e in trail] == list(range(1, won.version + 1))
    keys = [i.outgoing.dedup_key for i, _, _ in await SqlOutbox(store.engine).rows()]
    assert [k for k in keys if k and k.startswith("saver-")] == [f"saver-{winners[0]}"]


async def test_two_tasks_saving_from_one_version_make_exactly_one_change(
    store: SqlAgendaStore, speakers_store: SqlSpeakerStore
) -> None:
    lst = SpeakerList(MEETING.id, OPENING)
    await save(speakers_store, lst, [request(1), request(2), request(3)], T0)
    copies, errors = await race([speakers_store] * 2, lst, [chair(Next()), chair(Remove(2))], T0 + timedelta(minutes=1))
    await assert_exactly_one_won(store, speakers_store, copies, errors)


async def test_two_tasks_creating_one_list_make_exactly_one_change(
    store: SqlAgendaStore, speakers_store: SqlSpeakerStore
) -> None:
    copies, errors = await race([speakers_store] * 2, SpeakerList(MEETING.id, WG), [request(1), request(2)], T0)
    await assert_exactly_one_won(store, speakers_store, copies, errors)


@pytest.fixture
async def two_engines(store_url: str, speakers_store: SqlSpeakerStore) -> AsyncIterator[list[SqlSpeakerStore]]:
    """Two engines on one database, as two processes have (the store fixture migrated it)."""
    engines = [create_engine(store_url), create_engine(store_url)]
    try:
        yield [SqlSpeakerStore(e) for e in engines]
    finally:
        for e in engines:
            await e.dispose()


async def test_two_engines_saving_from_one_version_make_exactly_one_change(
    store: SqlAgendaStore, speakers_store: SqlSpeakerStore, two_engines: list[SqlSpeakerStore]
) -> None:
    lst = SpeakerList(MEETING.id, OPENING)
    await save(speakers_store, lst, [request(n) for n in range(1, 6)], T0)
    for round_ in range(5):  # several rounds: each time exactly one process wins
        copies, errors = await race(two_engines, lst, [chair(Next()), chair(Move(lst.order[-1], 1))],
                                    T0 + timedelta(minutes=round_ + 1))
        winner = next(i for i, e in enumerate(errors) if e is None)
        lst = copies[winner]
        assert sum(e is None for e in errors) == 1, errors
        assert await speakers_store.load_list(MEETING.id, OPENING) == lst


async def test_two_engines_creating_one_list_make_exactly_one_change(
    store: SqlAgendaStore, speakers_store: SqlSpeakerStore, two_engines: list[SqlSpeakerStore]
) -> None:
    copies, errors = await race(two_engines, SpeakerList(MEETING.id, WG), [request(1), request(2)], T0)
    await assert_exactly_one_won(store, speakers_store, copies, errors)


async def test_saving_500_new_speakers_takes_one_statement_each(
    store: SqlAgendaStore, speakers_store: SqlSpeakerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    lst = SpeakerList(MEETING.id, OPENING)
    await save(speakers_store, lst, [chair(SetTime(60))], T0)  # the list exists: this measures an update
    base = lst.version
    outcomes = [lst.apply(*request(n, list(Channel)[n % 5]), T0 + timedelta(milliseconds=n)) for n in range(500)]
    messages = [note(f"you are number {n}", f"queued-{n}") for n in range(500)]
    statements: list[str] = []

    def count(conn: Connection, cursor: Any, sql: str, params: Any, context: Any, executemany: bool) -> None:
        statements.append(sql.split("(")[0].strip())

    # The list's own statements run on the driver's cursor (prepared.py), which SQLAlchemy's events do not see.
    def counted(run: Any) -> Any:
        def wrapper(self: Prepared, conn: Connection, values: Any) -> Any:
            statements.append(self.sql.split("(")[0].strip())
            return run(self, conn, values)
        return wrapper

    monkeypatch.setattr(Prepared, "execute", counted(Prepared.execute))
    monkeypatch.setattr(Prepared, "execute_many", counted(Prepared.execute_many))
    # On SQLite the save runs through the plain driver on the same file (write_engines).
    engines = write_engines(store.engine) or (store.engine.sync_engine,)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        await speakers_store.save_changes(lst, base, [o.audit for o in outcomes],
                                          [s.id for o in outcomes for s in o.changed], messages)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert sum(s.startswith("INSERT INTO speakers") for s in statements) == 1, statements
    assert sum(s.startswith("INSERT INTO queue_audit") for s in statements) == 1, statements
    assert sum(s.startswith("INSERT INTO outbox") for s in statements) == 1, statements
    loaded = await speakers_store.load_list(MEETING.id, OPENING)
    assert loaded == lst and len(loaded.order) == 500
    assert len(await speakers_store.audit_trail(MEETING.id, OPENING)) == 501
    assert len(await SqlOutbox(store.engine).rows()) == 500


async def test_a_speaker_changed_twice_in_one_save_is_written_once(speakers_store: SqlSpeakerStore) -> None:
    lst = SpeakerList(MEETING.id, OPENING)
    await save(speakers_store, lst, [request(1), request(2)], T0)
    base = lst.version
    first = lst.apply(*chair(Next()), T0 + timedelta(seconds=1))
    second = lst.apply(*chair(PauseSpeech()), T0 + timedelta(seconds=30))
    await speakers_store.save_changes(lst, base, [first.audit, second.audit], [1, 1, 1], [])
    assert await speakers_store.load_list(MEETING.id, OPENING) == lst


async def test_another_process_follows_the_list_by_the_speakers_that_changed(
    speakers_store: SqlSpeakerStore, two_engines: list[SqlSpeakerStore]
) -> None:
    """A second process holding a copy of a 300-speaker list reads only the rows written since its
    version, and ends with the list exactly as stored, every step of a session."""
    writer, follower = two_engines
    lst = SpeakerList(MEETING.id, OPENING)
    await save(writer, lst, [request(n) for n in range(300)], T0)
    held = await follower.refresh(SpeakerList(MEETING.id, OPENING))  # a copy older than any version
    assert held == lst
    steps = [[chair(Next())], [request(300), request(301)], [chair(Move(lst.order[-1], 1))],
             [(Withdraw("web:7"), Actor("web:7", "Délégué·e 7", Channel.WEB))], [chair(EndSpeech())]]
    for n, step in enumerate(steps):
        await save(writer, lst, step, T0 + timedelta(minutes=n + 1))
        queried: list[str] = []

        def speakers_query(conn: Any, cursor: Any, sql: str, params: Any, context: Any, executemany: bool,
                           queried: list[str] = queried) -> None:
            if "FROM speakers" in sql:
                queried.append(sql)

        engine = follower._engine.sync_engine
        event.listen(engine, "before_cursor_execute", speakers_query)
        try:
            refreshed = await follower.refresh(held)
        finally:
            event.remove(engine, "before_cursor_execute", speakers_query)
        assert refreshed == lst, f"after step {n}: {step}"
        assert refreshed.version == lst.version and held.version < lst.version
        assert len(queried) == 1 and "changed_in" in queried[0], queried  # not the whole list
        held = refreshed
    assert await follower.refresh(held) is held  # nothing changed: nothing but the list row read


# ---------------------------------------------------------------- the migration


def _downgrade(connection: Connection, target: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, target)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


NEW_TABLES = {"speaker_lists", "speakers", "queue_audit", "slot_calls", "slot_requests", "console_accounts",
              "console_sessions", "login_links"}

LATER_TABLES = {"mail_messages", "chat_threads"}  # 0004, which goes first on the way down


async def test_revision_0003_downgrades_to_0002_and_upgrades_again(empty_url: str) -> None:
    await upgrade(empty_url)
    engine = create_engine(empty_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) >= NEW_TABLES
        async with writing(engine) as conn:
            await conn.run_sync(_downgrade, "0002")
        async with engine.connect() as conn:
            left = await conn.run_sync(_tables)
        assert not NEW_TABLES & left
        assert left == {*TABLES, "alembic_version"} - NEW_TABLES - LATER_TABLES
        await upgrade(empty_url)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == {*TABLES, "alembic_version"}
    finally:
        await engine.dispose()

