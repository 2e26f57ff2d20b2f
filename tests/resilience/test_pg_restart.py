"""PostgreSQL restarted under load: the service recovers by itself.

The service runs as deployed on a fresh PostgreSQL database, in two processes: `run.py serve`
(role all: web, bots, delivery) and `run.py serve --role web` (a second web server on the same
database). While a fan-out of 1,800 messages goes out to the Telegram and Discord fakes and a real
Synapse, and delegates keep asking for the floor through both web servers' API and calendar apps
keep fetching the feeds, PostgreSQL is restarted for real (`pg_ctlcluster … restart`, as root or
through `sudo -n`; where neither works, every session of the service's database is ended with
pg_terminate_backend instead, which the service sees the same way: its connections close, its
locks are freed — the test says which it did in its output; FLOORBRIDGE_TEST_PG_TERMINATE_ONLY=1
asks for that fallback, for a run that must not disturb others using the server).

Afterwards, without anyone restarting the service:
- neither process exited; /readyz said "not ready" while the database was away and "ready" again
  after; the feeds were served throughout (from memory);
- both web APIs accept floor requests again within 10 s of the server being back, and every
  request that was acknowledged (201) is in the list, as both processes show it;
- the platforms' locks are held again (pg_locks) and their bots and delivery run again: the
  Discord bot identified on the gateway again, the Telegram bot answers a command;
- every message is delivered, none twice on Discord (nonces) or Matrix (transaction ids); on
  Telegram, which has no idempotency key, at most one (`telegram.in_flight` is 1: the send in
  flight when the database went away went out, its "sent" could not be stored, and it goes again);
- LISTEN/NOTIFY works again: a request for the floor made through one web server reaches the
  other's open live page, and a message written to the outbox by another process (this test) is
  delivered at once, long before the delivery's next poll.

PostgreSQL's restart ends every session on this machine: other tests using PostgreSQL at that
moment fail. The suite runs tests one after the other, so it only matters when several runs share
the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from floorbridge.adapters.storage import SqlChatStore, open_store
from floorbridge.adapters.storage.ownership import lock_key
from floorbridge.core.chats import ChatRef, Platform
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.richtext import message, p
from tests.resilience.support import (
    Platforms,
    discord_channels,
    discord_sent,
    duplicates,
    enqueue_fanout,
    free_port,
    matrix_received,
    matrix_rooms,
    serve,
    service_env,
    stop,
    telegram_sent,
    write_config,
)
from tests.storage.conftest import PG_ADMIN_DSN, pg_url

pytestmark = [pytest.mark.timeout(600), pytest.mark.postgres]

TELEGRAM, DISCORD, ROOMS, PER_ROOM = 600, 900, 25, 12  # 1,800 messages; Telegram's 30 a second is the slowest
MATRIX = ROOMS * PER_ROOM
MARK = "Fan-out message"
PROBE = "After-restart message"
MEETING, SESSION = "wsis-2025", "hls-statements-1"
FLOOR = f"/api/v1/meetings/{MEETING}/sessions/{SESSION}/speakers"
POLL_SECONDS = 60  # the delivery's poll: a message delivered much sooner was woken by NOTIFY
# Set to 1 to end the sessions instead of restarting the server (while developing, when others use it).
ONLY_TERMINATE = "FLOORBRIDGE_TEST_PG_TERMINATE_ONLY"
BACK_WITHIN = 10.0  # seconds after the server is back for each web API to accept a request again


def _restart_command() -> list[str]:
    """pg_ctlcluster for the newest cluster named main (Debian's layout), through sudo when not root;
    empty when there is no way."""
    versions = sorted((d.name for d in Path("/etc/postgresql").glob("*") if (d / "main").is_dir()),
                      key=lambda v: [int(x) for x in v.split(".") if x.isdigit()])
    if not versions or not shutil.which("pg_ctlcluster"):
        return []
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"]
    if os.geteuid() == 0:
        return command
    return ["sudo", "-n", *command] if shutil.which("sudo") else []


async def _restart_postgres(database: str) -> str:
    """Restart the local cluster for real; what was done, for the test's output."""
    command = [] if os.environ.get(ONLY_TERMINATE) == "1" else _restart_command()
    if command:
        proc = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        if proc.returncode == 0:
            return " ".join(command)
        print(f"{' '.join(command)} failed ({proc.returncode}): {out.decode(errors='replace')}")
    # The fallback: the service's sessions end as in a restart; the server itself stays up.
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                            "AND pid <> pg_backend_pid()", database)
    finally:
        await admin.close()
    return "pg_terminate_backend of every session of the service's database (no way to restart the server)"


async def _until_postgres_answers(within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        await conn.close()
        return


async def _query(database: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}", timeout=5)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _outbox_counts(database: str) -> dict[str, Counter[str]]:
    rows = await _query(database, "SELECT platform, status, count(*) AS n FROM outbox GROUP BY platform, status")
    out: dict[str, Counter[str]] = {}
    for row in rows:
        out.setdefault(row["platform"], Counter())[row["status"]] = int(row["n"])
    return out


@dataclass
class Traffic:
    """Delegates asking for the floor through each web server, calendar apps fetching a feed, and a
    probe of /readyz, all the time. Each answer is kept with its time (monotonic)."""

    session: aiohttp.ClientSession
    bases: dict[str, str]
    asked: list[tuple[str, str, int, float]] = field(default_factory=list)  # (process, name, status, time)
    feeds: list[tuple[str, int, float]] = field(default_factory=list)
    ready: list[tuple[str, int, float]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        for label, base in self.bases.items():
            self._tasks += [asyncio.create_task(self._ask(label, base)), asyncio.create_task(self._feed(label, base)),
                            asyncio.create_task(self._ready(label, base))]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def status(self, method: str, url: str, **kwargs: Any) -> int:
        try:
            async with self.session.request(method, url, timeout=aiohttp.ClientTimeout(total=5), **kwargs) as r:
                await r.read()
                return r.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    async def _ask(self, label: str, base: str) -> None:
        for n in range(1_000_000):
            name = f"Delegate {label}-{n}"
            status = await self.status("POST", base + FLOOR + "/requests", json={"name": name, "delegation": "Ghana"})
            self.asked.append((label, name, status, time.monotonic()))
            await asyncio.sleep(0.2)  # a steady pace, five a second per web server

    async def _feed(self, label: str, base: str) -> None:
        while True:
            self.feeds.append((label, await self.status("GET", f"{base}/ical/{MEETING}.ics"), time.monotonic()))
            await asyncio.sleep(0.1)

    async def _ready(self, label: str, base: str) -> None:
        while True:
            self.ready.append((label, await self.status("GET", base + "/readyz"), time.monotonic()))
            await asyncio.sleep(0.05)


class LivePage:
    """A browser's live view of the list of speakers (server-sent events): the names it has shown."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self._session, self._url = session, base + FLOOR + "/events"
        self.names: set[str] = set()
        self.events = 0
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._read(first))
        await asyncio.wait_for(first, 10)

    async def _read(self, first: asyncio.Future[None]) -> None:
        async with self._session.get(self._url, timeout=aiohttp.ClientTimeout(total=None)) as response:
            assert response.status == 200
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    body = json.loads(line[len("data: "):])
                    self.names |= {s["name"] for s in body["waiting"]}
                    self.events += 1
                    if not first.done():
                        first.set_result(None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def _until(condition: Any, within: float, what: str, pause: float = 0.1) -> float:
    """Poll `condition` until it holds; the time it took. Fails with `what` at the deadline."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            pytest.fail(f"not within {within} s: {what}")
        await asyncio.sleep(pause)
    return time.monotonic() - started


async def test_postgresql_restarted_under_load_the_service_recovers_by_itself(
        platforms: Platforms, pg_database: str, tmp_path: Path) -> None:
    tg, dc, hs = platforms
    channels = discord_channels(dc, DISCORD + 1)  # the last one for the probe
    bot, alice, rooms = await matrix_rooms(hs, ROOMS + 1)  # the last one for the probe
    url = pg_url(pg_database)
    await enqueue_fanout(url, telegram=TELEGRAM, channels=channels[:DISCORD],
                         rooms=[r for r in rooms[:ROOMS] for _ in range(PER_ROOM)], mark=MARK, dedup="fanout",
                         seed=11)  # (and migrates the fresh database)

    ports = {"all": free_port(), "web": free_port()}
    configs = {role: write_config(tmp_path / f"fb-{role}.yaml", platforms, bot, port=port, database=url,
                                  state_file=tmp_path / "matrix-state.json", poll_seconds=POLL_SECONDS,
                                  matrix_per_second=25, seed_meetings=True, public_url=True)
               for role, port in ports.items()}
    env = service_env(platforms, bot)
    logs = {role: tmp_path / f"service-{role}.log" for role in ports}
    bases = {role: f"http://127.0.0.1:{port}" for role, port in ports.items()}

    processes: dict[str, subprocess.Popen[bytes]] = {}
    session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())  # each request a new delegate
    traffic = Traffic(session, bases)
    pages: list[LivePage] = []

    async def until_ready(role: str) -> None:
        starting = Traffic(session, {role: bases[role]})
        starting.start()
        try:
            await _until(lambda: any(s == 200 for _, s, _ in starting.ready), 90,
                         f"the {role} process is ready; see {logs[role]}")
        finally:
            await starting.stop()

    try:
        processes["all"] = serve(configs["all"], env, logs["all"])  # migrates (nothing to do) and seeds
        await until_ready("all")
        processes["web"] = serve(configs["web"], env, logs["web"], "--role", "web", "--no-seed")
        await until_ready("web")
        traffic.start()

        # Under load: every platform is sending, none is done.
        async def sent_now() -> dict[str, int]:
            return {pf: c["sent"] for pf, c in (await _outbox_counts(pg_database)).items()}

        deadline = time.monotonic() + 120
        while (state := await sent_now()).get("telegram", 0) < TELEGRAM // 5 or state.get(
                "discord", 0) < DISCORD // 5 or state.get("matrix", 0) < MATRIX // 5:
            assert time.monotonic() < deadline, f"the fan-out did not get going: {state}; see {logs['all']}"
            await asyncio.sleep(0.2)
        totals = {"telegram": TELEGRAM, "discord": DISCORD, "matrix": MATRIX}
        assert all(state[pf] < total for pf, total in totals.items()), state  # every platform mid-way
        identifies = len(dc.identifies)

        restarted_at = time.monotonic()
        how = await _restart_postgres(pg_database)
        print(f"PostgreSQL: {how}")
        restarted = how.startswith(("pg_ctlcluster", "sudo"))
        await _until_postgres_answers(60)
        back_at = time.monotonic()

        # Each web API accepts requests again, soon.
        for label in bases:
            await _until(lambda label=label: any(lb == label and s == 201 and t > back_at
                                                 for lb, _, s, t in traffic.asked),
                         BACK_WITHIN, f"{label} accepts floor requests again; see {logs[label]}")

        # A change made through one web server reaches the other's open live page (LISTEN/NOTIFY).
        for viewer, writer in (("all", "web"), ("web", "all")):
            page = LivePage(session, bases[viewer])
            pages.append(page)
            await page.open()
            name = f"Live delegate via {writer}"
            status = await traffic.status("POST", bases[writer] + FLOOR + "/requests",
                                           json={"name": name, "delegation": "Kenya"})
            assert status == 201
            await _until(lambda page=page, name=name: name in page.names, 5,
                         f"a request made through {writer} shows on {viewer}'s live page")

        # Delivery resumes by itself: every message goes out.
        await _until(lambda: len(telegram_sent(tg, MARK)) == TELEGRAM and len(discord_sent(dc, MARK)) == DISCORD, 180,
                     f"every Telegram and Discord message delivered; see {logs['all']}", pause=0.5)
        counts: dict[str, Counter[str]] = {}

        async def matrix_done() -> bool:
            counts.update(await _outbox_counts(pg_database))
            return counts.get("matrix", Counter())["sent"] == MATRIX

        deadline = time.monotonic() + 120
        while not await matrix_done():
            assert time.monotonic() < deadline, f"matrix not delivered: {counts}; see {logs['all']}"
            await asyncio.sleep(0.5)

        # The locks are held again, by the process that delivers, which also runs the bots again.
        keys = [lock_key(pf.value) for pf in (Platform.TELEGRAM, Platform.DISCORD, Platform.MATRIX)]
        held = await _query(pg_database, "SELECT l.objid::bigint AS key FROM pg_locks l JOIN pg_stat_activity a "
                                         "USING (pid) WHERE l.locktype = 'advisory' AND l.granted AND a.datname = $1 "
                                         "AND l.objid::bigint = ANY($2::bigint[])", pg_database, keys)
        assert sorted(r["key"] for r in held) == sorted(keys)  # (the web process holds none: it has no bots)
        assert len(dc.identifies) > identifies  # the Discord bot connected to the gateway again
        tg.push_message(777, 4242, "/help")
        await _until(lambda: any(s.chat_id == 777 for s in tg.sent), 15,
                     f"the Telegram bot answers a command; see {logs['all']}")

        # Rows written by another process wake the delivery at once (NOTIFY), not at its next poll.
        await asyncio.sleep(1)  # the last fetches are over: the next poll is POLL_SECONDS away
        store = await open_store(url)
        try:
            written = time.monotonic()
            await SqlChatStore(store.engine).enqueue([
                OutgoingMessage(ChatRef(Platform.TELEGRAM, "20000"), message(p(f"{PROBE} telegram")), dedup_key="p:t"),
                OutgoingMessage(ChatRef(Platform.DISCORD, channels[-1]), message(p(f"{PROBE} discord")),
                                dedup_key="p:d"),
                OutgoingMessage(ChatRef(Platform.MATRIX, rooms[-1]), message(p(f"{PROBE} matrix")), dedup_key="p:m"),
            ])
        finally:
            await store.close()
        matrix_probe: list[tuple[str, str]] = []
        while not (telegram_sent(tg, PROBE) and discord_sent(dc, PROBE) and matrix_probe):
            assert time.monotonic() - written < 3, (
                f"a message written by another process is not delivered at once: telegram {telegram_sent(tg, PROBE)}, "
                f"discord {discord_sent(dc, PROBE)}, matrix {matrix_probe}")
            await asyncio.sleep(0.05)
            matrix_probe = await matrix_received(hs, alice, rooms[-1:], PROBE, limit=5)
        probe_took = time.monotonic() - written
        await asyncio.sleep(3)  # a message sent twice would arrive now
        recovered_in = time.monotonic() - restarted_at

        # Every acknowledged request for the floor is in the list, as each process shows it.
        await traffic.stop()
        acknowledged = {name for _, name, status, _ in traffic.asked if status == 201}
        for label, base in bases.items():
            async with session.get(base + FLOOR) as r:
                listed = {s["name"] for s in (await r.json())["waiting"]}
            assert acknowledged <= listed, (label, len(acknowledged - listed), sorted(acknowledged - listed)[:10])
    finally:
        await traffic.stop()
        for page in pages:
            await page.close()
        alive = {role: proc.poll() is None for role, proc in processes.items()}
        codes = dict(zip(processes, await stop(list(processes.values())), strict=True))
        await session.close()

    print(f"recovered and delivered everything {recovered_in:.1f} s after the restart began; "
          f"the server was back after {back_at - restarted_at:.1f} s; the probe took {probe_took:.2f} s; "
          f"floor requests answered {dict(Counter((lb, s) for lb, _, s, _ in traffic.asked))}; "
          f"telegram sent twice: {duplicates(telegram_sent(tg, MARK))}")
    # Neither process exited on its own, and each stops cleanly when asked.
    assert alive == {"all": True, "web": True}, (alive, logs)
    assert codes == {"all": 0, "web": 0}, codes

    # /readyz: not ready while the database was away, ready again after; feeds served throughout.
    for label in bases:
        during = [s for lb, s, t in traffic.ready if lb == label and restarted_at <= t <= back_at + 0.5]
        after = [s for lb, s, t in traffic.ready if lb == label and t > back_at + BACK_WITHIN]
        if restarted:  # (sessions ended on a server that stays up are replaced at once: nothing to see)
            assert 503 in during, (label, Counter(during))
        assert after and set(after) == {200}, (label, Counter(after))
        feeds = Counter(s for lb, s, _ in traffic.feeds if lb == label)
        assert set(feeds) == {200}, (label, feeds)

    # Every message delivered; none twice on Discord and Matrix, at most one on Telegram.
    tg_counts, dc_counts = telegram_sent(tg, MARK), discord_sent(dc, MARK)
    matrix_counts = Counter(body for _, body in await matrix_received(hs, alice, rooms[:ROOMS], MARK,
                                                                      limit=PER_ROOM * 3))
    assert len(tg_counts) == TELEGRAM and len(dc_counts) == DISCORD and len(matrix_counts) == MATRIX
    assert duplicates(dc_counts) == 0, "discord duplicates"
    assert duplicates(matrix_counts) == 0, "matrix duplicates"
    assert duplicates(tg_counts) <= 1, "telegram duplicates"
