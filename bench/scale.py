#!/usr/bin/env python3
"""Scale-out benchmark (issue 6): one fan-out over the three platforms with 1, 2 and 4 processes.

The service runs as deployed: N processes of `run.py serve` (every role, the default) on one fresh
PostgreSQL database, all started at once with the same configuration file (each gets its own HTTP
port and database address from the environment). Each chat platform is run by whichever process
holds its advisory lock; the others are standbys. The platforms are the Telegram and Discord fakes
of tests/fakes (a fresh pair per run; they enforce Telegram's 30 messages/s over the bot and 1/s
per chat, and Discord's 50 requests/s over the bot, with real 429s) and a real Synapse.

Matrix: the Synapse of tests/fakes/synapse.py has every rate limit raised out of the way, so lifted
for the bot it has no limit at all and a messages-per-second ratio would mean nothing. As
bench/fanout.py does, the bot gets a real limit on the homeserver, `override_ratelimit` 10 messages/s
(burst 10), answered with M_LIMIT_EXCEEDED (429) beyond it, and the service is configured to start at
that rate (`matrix.messages_per_second: 10`, halved on a 429 and won back slowly). Synapse is started
once and its rooms made once (about 16 s per 100 rooms here); each run logs the bot in on a new device,
since Synapse remembers transaction ids per device and a fresh database numbers its outbox (whose ids
are the transaction ids) from 1 again, and gives it a fresh sync state file.

The fan-out: once every process answers /readyz and every platform has answered a probe command
(so each one has an owner that is connected), the bench stores 3,000 messages in the outbox in one
transaction, as tests/resilience/test_kill_during_fanout.py does (SqlChatStore.enqueue, which
also sends the NOTIFY that wakes the owners, as a publish in another process does). They are split in
proportion to the platforms' limits, so that every platform has the same ~33 s of work: 1,000
Telegram chats, 1,667 Discord channels (guild text channels, 200 per guild) and 333 Matrix rooms.
That is the bench's only use of the library; the service processes are driven through their
configuration file, the run.py CLI, HTTP and the platforms. (Subscribing chats with commands and
publishing a change was not chosen: a guild channel is a group, whose subscription adds a pinned
schedule per channel to the fan-out, and discord.py keeps no cache of DM channels, so a DM costs a
second request per message.)

Measured for each process count:

- rate_ratio: the fan-out's messages per second at the platforms, from the first delivery to the
  last over all three platforms together ((n - 1) / (last - first)), divided by the sum of the
  enforced limits: 30 (Telegram's fake) + 50 (Discord's fake) + 10 (Synapse, as above) = 90
  messages/s. The whole fan-out is the window (no steady-state trimming), so a platform that starts
  late or drains last lowers it. Per platform the same against its own limit (as bench/fanout.py).
  Reference for noise: the 1-process run; each run shows its ratio to it (`vs_1_process`).
- 429 answers at the fakes (and those the service counted, /metrics), messages lost and duplicated.
- db_roundtrips_per_msg: the bench puts an asyncio TCP proxy (in a child process) between the
  service processes and PostgreSQL, one listening port per process (their database URL points at
  it), and counts the client -> server protocol messages that end a round trip: Sync ('S', the end
  of an extended-protocol exchange, which asyncpg uses for SQLAlchemy's statements, LISTEN and the
  advisory locks), simple Query ('Q', asyncpg's BEGIN/COMMIT/ROLLBACK), FunctionCall ('F') and Flush
  ('H': asyncpg prepares a statement with Parse, Describe, Flush and waits for the answer before
  it binds, a round trip that S and Q alone would miss; `by_message_type` and
  `sync_and_query_only_per_msg` give the split). The startup and SSLRequest messages have no type
  byte (the proxy answers SSLRequest 'N' itself, so the stream stays readable). The window starts
  just before the messages are stored and ends 1.5 s after the last delivery (the sends'
  bookkeeping settles); it counts every service process, standbys included, and is divided by the
  messages delivered. Also shown: the same less the idle rate measured during 5 s before the
  fan-out (`net`), the round trips per process, per kind of connection (pool, listen, lock) and per
  statement (SQLAlchemy's pool pre-ping shows as ";"), and the bench's own enqueue transaction (not
  in the figure).
- rss_mb_per_process: VmRSS from /proc/<pid>/status of each service process (each web process and the
  chat worker it started) at the end of its run (before SIGTERM); the summary gives the largest over
  every process of every run, the details the median too.
- To read the figures: which process ran each platform (`owners`, from each process's /metrics),
  the deliveries per platform in each 5 s of the fan-out (`delivered_per_5s`), and the CPU used
  during it by the machine, this process (with the fakes), the proxy, Synapse and each service
  process (`cpu_during_fanout`, shares of one core), since the machine is shared.

The service runs with its defaults except where the platforms need addresses, so Telegram sends
with `telegram.in_flight: 1` (one send awaiting its answer and its bookkeeping at a time);
`--telegram-in-flight N` changes that, and `--direct` connects the processes to PostgreSQL without
the proxy (no round-trip figures), to see what the proxy's hop costs.

Details of each run go to stderr as JSON; the last line on stdout is
{"rate_ratio": {"1": …, "2": …, "4": …}, "db_roundtrips_per_msg": …, "rss_mb_per_process": …},
where db_roundtrips_per_msg is the largest of the runs'.

Usage: .venv/bin/python bench/scale.py [--messages 3000] [--processes 1,2,4] [--idle-seconds 5]
                                       [--telegram-in-flight N] [--direct] [--keep]
"""

from __future__ import annotations

import os
import sys

# bench/ would lead sys.path and its queue.py shadow the standard library's `queue`.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import asyncio
import contextlib
import functools
import json
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fakes

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ADMIN_DSN = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"
MARK = "Scale fan-out"
MATRIX_LIMIT = 10  # messages/s, burst as many: the bot's limit on Synapse (see above)
GUILD_CHANNELS = 200
PROBE_TELEGRAM_CHAT = 9_999
SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102


# ------------------------------------------------------------------------------------------------
# The counting proxy (runs in a child process: `scale.py --proxy-child LABELS`)


def statement_label(query: str) -> str:
    """A short name for a statement: its verb and table (or function), and FOR UPDATE/SKIP LOCKED."""
    s = " ".join(query.split())
    if not s:
        return "(empty)"
    verb = s.split(" ", 1)[0].upper()
    if verb in {"BEGIN", "COMMIT", "ROLLBACK", "LISTEN", "UNLISTEN", "SHOW", "SET", "RESET", "SAVEPOINT",
                "RELEASE", "NOTIFY"}:
        return s[:48]
    if verb == "UPDATE":
        found = re.match(r"UPDATE\s+([\w.\"]+)", s, re.IGNORECASE)
    else:
        found = re.search(r"\b(?:FROM|INTO)\s+([A-Za-z_\"][\w.\"]*)", s, re.IGNORECASE)
    function = re.search(r"\b(pg_\w+|nextval|set_config)\s*\(", s)
    if found:
        label = f"{verb} {found.group(1)}"
    elif function:
        label = f"{verb} {function.group(1)}"
    else:
        label = s[:48]
    upper = s.upper()
    if "FOR UPDATE" in upper:
        label += " FOR UPDATE"
    if "SKIP LOCKED" in upper:
        label += " SKIP LOCKED"
    if "PG_NOTIFY" in upper and "pg_notify" not in label:
        label += " +pg_notify"
    return label


class _Tally:
    """The counts of one listening port (one client process)."""

    def __init__(self) -> None:
        self.roundtrips = 0
        self.by_kind: Counter[str] = Counter()
        self.connections: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()
        self.by_message: Counter[str] = Counter()

    def as_json(self) -> dict[str, Any]:
        return {"roundtrips": self.roundtrips, "by_kind": dict(self.by_kind), "connections": dict(self.connections),
                "statements": dict(self.statements), "by_message": dict(self.by_message)}


class _Stream:
    """Reads one connection's client -> server messages (after start-up) and counts its round trips."""

    def __init__(self, tally: _Tally) -> None:
        self.tally = tally
        self.kind = "pool"
        self.own = 0  # round trips of this connection (moved along when its kind is learnt)
        self.prepared: dict[str, str] = {}
        self.bound: str | None = None
        self.parsed: str | None = None
        self.buf = bytearray()
        tally.connections[self.kind] += 1

    def _classify(self, query: str) -> None:
        if self.kind != "pool":
            return
        kind = None
        if "pg_try_advisory_lock" in query:
            kind = "lock"  # ownership.py: a connection of its own per platform
        elif query.lstrip().upper().startswith("LISTEN"):
            kind = "listen"  # live.py
        if kind is not None:
            t = self.tally
            t.connections[self.kind] -= 1
            t.by_kind[self.kind] -= self.own
            self.kind = kind
            t.connections[kind] += 1
            t.by_kind[kind] += self.own

    def _roundtrip(self, label: str, message: str) -> None:
        self.own += 1
        self.tally.roundtrips += 1
        self.tally.by_message[message] += 1
        self.tally.by_kind[self.kind] += 1
        self.tally.statements[label] += 1

    def feed(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        start = 0
        while len(buf) - start >= 5:
            kind = buf[start]
            length = int.from_bytes(buf[start + 1 : start + 5], "big")
            end = start + 1 + length
            if end > len(buf):
                break
            self._message(kind, bytes(buf[start + 5 : end]))
            start = end
        del buf[:start]

    def _message(self, kind: int, body: bytes) -> None:
        if kind == ord("Q"):
            query = body.rstrip(b"\0").decode("utf-8", "replace")
            self._classify(query)
            self._roundtrip(statement_label(query), "Q")
        elif kind == ord("P"):
            name_end = body.index(0)
            query = body[name_end + 1 : body.index(0, name_end + 1)].decode("utf-8", "replace")
            self._classify(query)
            label = statement_label(query)
            self.prepared[body[:name_end].decode("utf-8", "replace")] = label
            self.parsed = label
        elif kind == ord("B"):
            portal_end = body.index(0)
            name = body[portal_end + 1 : body.index(0, portal_end + 1)].decode("utf-8", "replace")
            self.bound = self.prepared.get(name, "(statement prepared before counting)")
        elif kind == ord("S"):
            if self.bound is not None:
                label = self.bound
            elif self.parsed is not None:
                label = f"prepare: {self.parsed}"
            else:
                label = "(sync)"
            self._roundtrip(label, "S")
            self.bound = self.parsed = None
        elif kind == ord("H"):  # asyncpg's prepare: Parse, Describe, Flush, then it waits for the answer
            self._roundtrip(f"prepare: {self.parsed}" if self.parsed is not None else "(flush)", "H")
            self.parsed = None
        elif kind == ord("F"):
            self._roundtrip("(function call)", "F")


class CountingProxy:
    def __init__(self, labels: list[str], upstream: tuple[str, int]) -> None:
        self.labels = labels
        self.upstream = upstream
        self.tallies = {label: _Tally() for label in labels}
        self.servers: list[asyncio.Server] = []
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        for label in self.labels:
            server = await asyncio.start_server(functools.partial(self._handle, label), "127.0.0.1", 0)
            self.servers.append(server)
            self.ports[label] = server.sockets[0].getsockname()[1]

    async def _handle(self, label: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        stream: _Stream | None = None

        async def to_client() -> None:
            try:
                while data := await up_reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()

        async def to_server() -> None:
            nonlocal stream
            try:
                while True:  # start-up: untyped messages
                    head = await reader.readexactly(8)
                    length, code = struct.unpack("!ii", head)
                    rest = await reader.readexactly(length - 8)
                    if code in (SSL_REQUEST, GSS_REQUEST):
                        writer.write(b"N")  # no encryption: the client goes on in the clear
                        await writer.drain()
                        continue
                    up_writer.write(head + rest)
                    if code != CANCEL_REQUEST:
                        stream = _Stream(self.tallies[label])
                    break
                while data := await reader.read(65536):
                    up_writer.write(data)
                    if stream is not None:
                        stream.feed(data)
                    await up_writer.drain()
            finally:
                up_writer.close()

        await asyncio.gather(to_client(), to_server(), return_exceptions=True)

    def snapshot(self) -> dict[str, Any]:
        return {label: tally.as_json() for label, tally in self.tallies.items()}


def proxy_child(labels: list[str]) -> None:
    """Prints {"ports": {label: port}}, then answers each line on stdin with a snapshot (JSON line)."""

    async def go() -> None:
        proxy = CountingProxy(labels, (PG_HOST, PG_PORT))
        await proxy.start()
        print(json.dumps({"ports": proxy.ports}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.readline():
            print(json.dumps(proxy.snapshot()), flush=True)

    asyncio.run(go())


class ProxyProcess:
    """The parent's handle on the proxy child."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self.ports: dict[str, int] = {}
        self.pid = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--proxy-child", ",".join(self.labels),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._proc.stdout is not None
        self.pid = self._proc.pid
        line = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        self.ports = json.loads(line)["ports"]

    def url(self, label: str, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.ports[label]}/{database}"

    async def snapshot(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        async with self._lock:
            self._proc.stdin.write(b"snap\n")
            await self._proc.stdin.drain()
            return dict(json.loads(await asyncio.wait_for(self._proc.stdout.readline(), 30)))

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                async with asyncio.timeout(10):
                    await self._proc.wait()
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()


def delta(after: Any, before: Any) -> Any:
    """after - before, for nested dicts of counts (keys missing in `before` count from 0)."""
    if isinstance(after, dict):
        out = {k: delta(v, (before or {}).get(k)) for k, v in after.items()}
        return {k: v for k, v in out.items() if v}
    return after - (before or 0)


# ------------------------------------------------------------------------------------------------
# Helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait(condition: Any, timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not done within {timeout:.0f} s")
        await asyncio.sleep(0.25)


def rate(times: list[float]) -> float:
    times = sorted(times)
    if len(times) < 2 or times[-1] == times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


def rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def children(pid: int) -> list[int]:
    """A process's children (a `serve` process's chat worker)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pid: int | str) -> float | None:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of every core together, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return float(sum(values) - idle), float(sum(values))


class CpuWindow:
    """CPU used over a window by the machine and by named processes."""

    def __init__(self, pids: dict[str, int | str]) -> None:
        self.pids = pids
        self.t0 = time.monotonic()
        self.machine0 = machine_cpu()
        self.load = os.getloadavg()[0]
        self.cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def result(self) -> dict[str, Any]:
        seconds = time.monotonic() - self.t0
        busy, total = machine_cpu()
        out: dict[str, Any] = {
            "machine_busy": round((busy - self.machine0[0]) / max(total - self.machine0[1], 1.0), 3),
            "cores": os.cpu_count(), "loadavg_1m_before": round(self.load, 2),
        }
        for name, pid in self.pids.items():
            before, after = self.cpu0[name], cpu_seconds(pid)
            if before is not None and after is not None:
                out[f"{name}_core_share"] = round((after - before) / seconds, 3)
        return out


def timeline(times: dict[str, list[float]], start: float, step: float = 5.0) -> dict[str, list[int]]:
    """Deliveries per platform in each `step` seconds from `start`."""
    end = max((t for ts in times.values() for t in ts), default=start)
    buckets = int((end - start) // step) + 1
    out = {}
    for name, ts in times.items():
        counts = [0] * buckets
        for t in ts:
            counts[max(0, int((t - start) // step))] += 1
        out[name] = counts
    return out


def metric_values(text: str, name: str) -> dict[str, float]:
    """{platform: value} of one labelled metric in Prometheus text."""
    out = {}
    for m in re.finditer(rf'^{name}\{{platform="(\w+)"\}} ([0-9.e+-]+)$', text, re.MULTILINE):
        out[m.group(1)] = float(m.group(2))
    return out


def split(messages: int, limits: dict[str, float]) -> dict[str, int]:
    """Messages per platform in proportion to its limit (the remainder to Discord)."""
    total = sum(limits.values())
    counts = {p: round(messages * limit / total) for p, limit in limits.items() if p != "discord"}
    counts["discord"] = messages - sum(counts.values())
    return counts


class MatrixWatcher:
    """Alice's /sync: every m.room.message the bot sends into her rooms, with Synapse's timestamp."""

    FILTER = json.dumps({
        "presence": {"types": []}, "account_data": {"types": []},
        "room": {"timeline": {"types": ["m.room.message"], "limit": 500}, "state": {"types": []},
                 "ephemeral": {"types": []}, "account_data": {"types": []}},
    })

    def __init__(self, hs: Any, user: Any, bot_id: str) -> None:
        self.hs, self.user, self.bot_id = hs, user, bot_id
        self.events: list[tuple[str, str, float]] = []  # (room, body, wall-clock seconds)
        self.limited = 0
        self._since: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        first = await self.hs.request("GET", "/_matrix/client/v3/sync", token=self.user,
                                      params={"timeout": "0", "filter": self.FILTER})
        self._since = first["next_batch"]
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                body = await self.hs.request("GET", "/_matrix/client/v3/sync", token=self.user,
                                             params={"since": self._since or "", "timeout": "5000",
                                                     "filter": self.FILTER})
            except Exception as exc:  # Synapse busy: try again
                print(f"matrix sync: {exc!r}", file=sys.stderr)
                await asyncio.sleep(1)
                continue
            self._since = body["next_batch"]
            for room_id, room in body.get("rooms", {}).get("join", {}).items():
                timeline = room.get("timeline", {})
                self.limited += bool(timeline.get("limited"))
                for event in timeline.get("events", []):
                    if event.get("sender") == self.bot_id and event.get("type") == "m.room.message":
                        self.events.append((room_id, event["content"].get("body", ""),
                                            event["origin_server_ts"] / 1000))


# ------------------------------------------------------------------------------------------------
# One run


class Run:
    def __init__(self, processes: int, args: argparse.Namespace, hs: Any, bot: Any, alice: Any,
                 rooms: list[str], probe_room: str, watcher: MatrixWatcher) -> None:
        self.n = processes
        self.args = args
        self.hs, self.bot, self.alice, self.rooms, self.probe_room = hs, bot, alice, rooms, probe_room
        self.watcher = watcher
        self.tmp = Path(tempfile.mkdtemp(prefix=f"fb-scale-{processes}p-"))
        self.database = f"fb_scale_{processes}p_{secrets.token_hex(4)}"
        self.direct_url = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{self.database}"
        self.procs: list[asyncio.subprocess.Process] = []
        self.http_ports: list[int] = []
        self.exit_codes: list[int | None] = []

    async def cli(self, env: dict[str, str], *step: str) -> None:
        done = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "run.py"), "--config", str(self.config), *step, env=env, cwd=self.tmp,
            stdout=subprocess.DEVNULL, stderr=(self.tmp / "cli.log").open("ab"))
        if await done.wait():
            raise RuntimeError(f"run.py {step[0]} failed; see {self.tmp / 'cli.log'}")

    def write_config(self, tg: Any, dc: Any) -> None:
        config: dict[str, Any] = {
            "server": {"host": "127.0.0.1", "port": 8080},  # each process: FLOORBRIDGE_PORT
            "logging": {"level": "WARNING", "format": "text"},
            "database": {"url": self.direct_url},
            "meetings": {"seed": []},
            "telegram": {"enabled": True, "base_url": tg.base_url},
            "discord": {"enabled": True, "api_url": dc.api_url, "gateway_url": dc.gateway_url},
            "matrix": {"enabled": True, "homeserver": self.hs.url, "user_id": self.bot.user_id,
                       "messages_per_second": MATRIX_LIMIT, "state_file": str(self.tmp / "matrix-state.json")},
        }
        if self.args.telegram_in_flight:
            config["telegram"]["in_flight"] = self.args.telegram_in_flight
        self.config = self.tmp / "floorbridge.yaml"
        self.config.write_text(json.dumps(config))  # JSON is YAML

    async def stop_processes(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                async with asyncio.timeout(30):
                    await proc.wait()
            except TimeoutError:
                print(f"pid {proc.pid} ignored SIGTERM for 30 s: killed", file=sys.stderr)
                proc.kill()
                await proc.wait()
            self.exit_codes.append(proc.returncode)

    async def go(self) -> dict[str, Any]:
        import aiohttp
        import asyncpg

        from floorbridge.adapters.storage import SqlChatStore, open_store
        from floorbridge.core.chats import ChatRef, Platform
        from floorbridge.core.outbox import OutgoingMessage
        from floorbridge.core.richtext import message, p
        from tests.fakes.discord_api import FakeDiscord
        from tests.fakes.telegram_api import FakeTelegram

        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
        try:
            await admin.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await admin.close()
        tg, dc = FakeTelegram(), FakeDiscord()
        await tg.start()
        await dc.start()
        labels = [f"p{i + 1}" for i in range(self.n)] + ["enqueue"]
        proxy = ProxyProcess(labels)
        await proxy.start()
        limits = {"telegram": float(tg.global_per_second), "discord": float(dc.global_per_second),
                  "matrix": float(MATRIX_LIMIT)}
        counts = split(self.args.messages, limits)
        if counts["matrix"] > len(self.rooms):
            raise RuntimeError("not enough Matrix rooms")
        try:
            telegram_chats = [str(10_000 + i) for i in range(counts["telegram"])]
            guilds = [dc.add_guild(f"delegates {g}") for g in range((counts["discord"] + GUILD_CHANNELS - 1)
                                                                     // GUILD_CHANNELS + 1)]
            discord_channels = [dc.add_channel(guilds[i // GUILD_CHANNELS], f"chan-{i}")
                                for i in range(counts["discord"])]
            probe_channel = dc.add_channel(guilds[-1], "probe")
            probe_user = dc.add_user("probe")
            matrix_rooms = self.rooms[: counts["matrix"]]
            device = await self.hs.login(self.bot)  # a new device: see the module's docstring
            self.write_config(tg, dc)
            env = {**os.environ, "FLOORBRIDGE_TELEGRAM_TOKEN": tg.token, "FLOORBRIDGE_DISCORD_TOKEN": dc.token,
                   "FLOORBRIDGE_MATRIX_TOKEN": device.access_token}
            env.pop("FLOORBRIDGE_DATABASE_URL", None)
            await self.cli(env, "migrate")
            await self.cli(env, "import-agenda", "wsis-2025", str(ROOT / "config/meetings/wsis-2025.yaml"),
                           "--publish", "--comment", "scale bench")
            print(f"[{self.n}p] starting {self.n} process(es)…", file=sys.stderr)
            t_start = time.monotonic()
            for i in range(self.n):
                port = free_port()
                self.http_ports.append(port)
                penv = {**env, "FLOORBRIDGE_PORT": str(port), "FLOORBRIDGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
                        "FLOORBRIDGE_DATABASE_URL": self.direct_url if self.args.direct
                        else proxy.url(f"p{i + 1}", self.database)}
                self.procs.append(await asyncio.create_subprocess_exec(
                    sys.executable, str(ROOT / "run.py"), "--config", str(self.config), "serve", "--no-seed",
                    cwd=self.tmp, env=penv, stdout=(self.tmp / f"p{i + 1}.log").open("ab"),
                    stderr=subprocess.STDOUT))
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

                async def all_ready() -> bool:
                    for i, proc in enumerate(self.procs):
                        if proc.returncode is not None:
                            log = (self.tmp / f"p{i + 1}.log").read_text(errors="replace")[-3000:]
                            raise RuntimeError(f"process p{i + 1} exited ({proc.returncode}):\n{log}")
                        try:
                            async with http.get(f"http://127.0.0.1:{self.http_ports[i]}/readyz") as r:
                                if r.status != 200:
                                    return False
                        except aiohttp.ClientError:
                            return False
                    return True

                await wait(all_ready, 120, "the processes' /readyz")
                ready_s = time.monotonic() - t_start
                await self.probe(tg, dc, probe_channel, probe_user, guilds[-1])
                probed_s = time.monotonic() - t_start
                print(f"[{self.n}p] ready in {ready_s:.1f} s, every platform answering in {probed_s:.1f} s",
                      file=sys.stderr)
                await asyncio.sleep(2)

                # The idle rate of round trips: every process up, nothing to send.
                idle_a = await proxy.snapshot()
                t_idle = time.monotonic()
                await asyncio.sleep(self.args.idle_seconds)
                idle_b = await proxy.snapshot()
                idle_s = time.monotonic() - t_idle
                idle = delta(idle_b, idle_a)
                idle_rt = sum(idle.get(f"p{i + 1}", {}).get("roundtrips", 0) for i in range(self.n))

                # The fan-out.
                targets = ([ChatRef(Platform.TELEGRAM, c) for c in telegram_chats]
                           + [ChatRef(Platform.DISCORD, c) for c in discord_channels]
                           + [ChatRef(Platform.MATRIX, r) for r in matrix_rooms])
                random.Random(7).shuffle(targets)
                tag = secrets.token_hex(3)
                outgoing = [OutgoingMessage(chat, message(p(f"{MARK} {i} for {chat.chat_id}")),
                                            dedup_key=f"scale:{tag}:{i}") for i, chat in enumerate(targets)]
                tg_before, dc_before, mx_before = len(tg.sent), len(dc.created), len(self.watcher.events)
                store = await open_store(proxy.url("enqueue", self.database))
                try:
                    chats = SqlChatStore(store.engine)
                    print(f"[{self.n}p] fan-out of {len(outgoing)} messages {counts}…", file=sys.stderr)
                    window_a = await proxy.snapshot()
                    cpu = CpuWindow({"bench_with_fakes": "self", "proxy": proxy.pid, "synapse": self.hs.pid or 0,
                                     **{f"p{i + 1}": proc.pid for i, proc in enumerate(self.procs)}})
                    t0 = time.monotonic()
                    await chats.enqueue(outgoing)
                    enqueue_s = time.monotonic() - t0
                finally:
                    await store.close()

                def tg_times() -> list[tuple[float, str]]:
                    return [(s.at, str(s.chat_id)) for s in tg.sent[tg_before:]
                            if MARK in (s.plain_text or s.text or "")]

                def dc_times() -> list[tuple[float, str]]:
                    return [(c["time"], str(c["channel_id"])) for c in dc.created[dc_before:]
                            if c["source"] == "rest" and (MARK in c["content"] or MARK in json.dumps(c["payload"]))]

                wall_minus_mono = time.time() - time.monotonic()

                def mx_times() -> list[tuple[float, str]]:
                    return [(ts - wall_minus_mono, room) for room, body, ts in self.watcher.events[mx_before:]
                            if MARK in body]

                def delivered() -> dict[str, int]:
                    return {"telegram": len({c for _, c in tg_times()}), "discord": len({c for _, c in dc_times()}),
                            "matrix": len({c for _, c in mx_times()})}

                async def all_out() -> bool:
                    now = delivered()
                    return all(now[k] >= counts[k] for k in counts)

                expected = len(outgoing) / sum(limits.values())
                timeout = 4 * expected + 120
                progress = asyncio.create_task(self.progress(delivered, counts))
                try:
                    await wait(all_out, timeout, "the fan-out")
                except TimeoutError as exc:
                    print(f"[{self.n}p] {exc}: {delivered()} of {counts}", file=sys.stderr)
                finally:
                    progress.cancel()
                done_at = time.monotonic()
                await asyncio.sleep(1.5)  # the last sends' bookkeeping
                window_b = await proxy.snapshot()
                window_s = time.monotonic() - t0
                cpu_use = cpu.result()
                await asyncio.sleep(2.0)  # anything late or sent twice shows up now

                # Observations at the platforms.
                per_platform: dict[str, Any] = {}
                all_times: list[float] = []
                first_times: dict[str, list[float]] = {}
                targets_of = {"telegram": telegram_chats, "discord": discord_channels, "matrix": matrix_rooms}
                http_429 = {"telegram": tg.http_429, "discord": dc.http_429, "matrix": None}
                for name, times in (("telegram", tg_times()), ("discord", dc_times()), ("matrix", mx_times())):
                    seen = Counter(c for _, c in times)
                    first: dict[str, float] = {}
                    for at, chat in sorted(times):
                        first.setdefault(chat, at)
                    all_times += first.values()
                    first_times[name] = list(first.values())
                    r = rate(list(first.values()))
                    per_platform[name] = {
                        "messages": len(first),
                        "rate_per_s": round(r, 2),
                        "limit_per_s": limits[name],
                        "rate_ratio": round(r / limits[name], 3),
                        "first_after_enqueue_s": round(min(first.values()) - t0, 2) if first else None,
                        "last_after_enqueue_s": round(max(first.values()) - t0, 2) if first else None,
                        "http_429_at_platform": http_429[name],
                        "lost": sum(1 for c in targets_of[name] if seen[c] == 0),
                        "duplicates": sum(n - 1 for n in seen.values() if n > 1),
                    }

                # Each process: what it ran (its sends), the 429s it honoured, its memory.
                processes = []
                for i, proc in enumerate(self.procs):
                    # Each `serve` is a web process and the chat worker it started: both count.
                    info: dict[str, Any] = {"label": f"p{i + 1}", "pid": proc.pid, "rss_mb": rss_mb(proc.pid),
                                            "worker_rss_mb": [rss_mb(c) for c in children(proc.pid)]}
                    try:
                        async with http.get(f"http://127.0.0.1:{self.http_ports[i]}/metrics") as resp:
                            text = await resp.text()
                        sends = metric_values(text, "floorbridge_sends_total")
                        info["sent"] = {k: int(v) for k, v in sends.items() if v}
                        info["http_429_honoured"] = {k: int(v) for k, v in
                                                     metric_values(text, "floorbridge_http_429_total").items() if v}
                    except aiohttp.ClientError as exc:
                        info["metrics_error"] = repr(exc)
                    processes.append(info)
            per_platform["matrix"]["http_429_at_platform"] = sum(
                p.get("http_429_honoured", {}).get("matrix", 0) for p in processes)

            window = delta(window_b, window_a)
            service = {f"p{i + 1}": window.get(f"p{i + 1}", {}) for i in range(self.n)}
            roundtrips = sum(s.get("roundtrips", 0) for s in service.values())
            by_kind: Counter[str] = Counter()
            by_message: Counter[str] = Counter()
            statements: Counter[str] = Counter()
            for s in service.values():
                by_kind.update(s.get("by_kind", {}))
                by_message.update(s.get("by_message", {}))
                statements.update(s.get("statements", {}))
            idle_statements: Counter[str] = Counter()
            for i in range(self.n):
                idle_statements.update(idle.get(f"p{i + 1}", {}).get("statements", {}))
            messages = sum(v["messages"] for v in per_platform.values())
            idle_per_s = idle_rt / idle_s if idle_s else 0.0
            total_rate = rate(all_times)
            limit_sum = sum(limits.values())
            rss = [mb for p in processes for mb in (p["rss_mb"], *p["worker_rss_mb"]) if mb is not None]
            owners = {name: [p["label"] for p in processes if p.get("sent", {}).get(name)] for name in limits}
            return {
                "processes": self.n,
                "messages": messages,
                "split": counts,
                "rate_per_s": round(total_rate, 2),
                "limit_sum_per_s": limit_sum,
                "rate_ratio": round(total_rate / limit_sum, 3),
                "fanout_s": round(max(all_times) - min(all_times), 2) if all_times else None,
                "enqueue_s": round(enqueue_s, 3),
                "all_delivered_after_s": round(done_at - t0, 2),
                "platforms": per_platform,
                "delivered_per_5s": timeline(first_times, t0),
                "cpu_during_fanout": cpu_use,
                "owners": owners,
                "startup": {"ready_s": round(ready_s, 1), "platforms_answering_s": round(probed_s, 1)},
                "db": {"direct": True, "window_s": round(window_s, 2)} if self.args.direct else {
                    "window_s": round(window_s, 2),
                    "roundtrips": roundtrips,
                    "roundtrips_per_msg": round(roundtrips / messages, 3) if messages else None,
                    "idle_roundtrips_per_s": round(idle_per_s, 2),
                    "net_roundtrips_per_msg": round((roundtrips - idle_per_s * window_s) / messages, 3)
                    if messages else None,
                    "per_process": {k: v.get("roundtrips", 0) for k, v in service.items()},
                    "by_connection_kind": dict(by_kind.most_common()),
                    "by_message_type": dict(by_message.most_common()),
                    "sync_and_query_only_per_msg": round((by_message["S"] + by_message["Q"]) / messages, 3)
                    if messages else None,
                    "connections_opened": {k: v.get("connections", {}) for k, v in service.items()
                                           if v.get("connections")},
                    "statements": dict(statements.most_common(25)),
                    "idle_statements_per_s": {k: round(v / idle_s, 2) for k, v in idle_statements.most_common(12)},
                    "enqueue_transaction_roundtrips": window.get("enqueue", {}).get("roundtrips", 0),
                },
                "memory": {"rss_mb": rss, "max_mb": max(rss) if rss else None,
                           "median_mb": statistics.median(rss) if rss else None},
                "matrix_sync_limited": self.watcher.limited,
                "logs": str(self.tmp),
            }
        finally:
            await self.stop_processes()
            await proxy.stop()
            await dc.stop()
            await tg.stop()
            admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await admin.close()

    async def progress(self, delivered: Any, counts: dict[str, int]) -> None:
        while True:
            await asyncio.sleep(10)
            print(f"[{self.n}p]   delivered {delivered()} of {counts}", file=sys.stderr)

    async def probe(self, tg: Any, dc: Any, channel: str, user: str, guild: str) -> None:
        """A command on each platform, answered: each has an owner, connected."""

        async def telegram_answered() -> bool:
            return any(s.chat_id == PROBE_TELEGRAM_CHAT for s in tg.sent)

        async def telegram() -> None:
            tg.push_message(PROBE_TELEGRAM_CHAT, PROBE_TELEGRAM_CHAT, "/help")
            await wait(telegram_answered, 120, "the Telegram probe")

        async def discord() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    iid = dc.push_slash_command(guild, channel, user, "help")
                except (KeyError, ValueError):  # the bot has not registered its commands yet
                    await asyncio.sleep(0.5)
                    continue
                until = time.monotonic() + 5
                while time.monotonic() < until:
                    if any(r.get("data") for r in dc.interaction_responses.get(iid, [])):
                        return
                    await asyncio.sleep(0.1)
            raise TimeoutError("the Discord probe was not answered within 120 s")

        async def matrix() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                before = len(self.watcher.events)
                await self.hs.send_text(self.alice, self.probe_room, "!help")
                until = time.monotonic() + 5
                while time.monotonic() < until:
                    if any(room == self.probe_room for room, _, _ in self.watcher.events[before:]):
                        return
                    await asyncio.sleep(0.1)
            raise TimeoutError("the Matrix probe was not answered within 120 s")

        await asyncio.gather(telegram(), discord(), matrix())


# ------------------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    from tests.fakes.synapse import Synapse

    counts = args.processes
    tmp = Path(tempfile.mkdtemp(prefix="fb-scale-synapse-"))
    hs = Synapse(tmp / "synapse")
    await hs.start()
    results: list[dict[str, Any]] = []
    try:
        rooms_needed = split(args.messages, {"telegram": 30.0, "discord": 50.0, "matrix": float(MATRIX_LIMIT)})
        n_rooms = rooms_needed["matrix"]
        print(f"creating {n_rooms} Matrix rooms…", file=sys.stderr)
        t = time.monotonic()
        bot = await hs.register("floorbridge")
        alice = await hs.register("alice")
        turns = asyncio.Semaphore(4)

        async def room(name: str) -> str:
            async with turns:
                room_id = await hs.create_room(alice, name=name, invite=[bot.user_id])
                await hs.join(bot, room_id)
                return room_id

        rooms = list(await asyncio.gather(*(room(f"room {i}") for i in range(n_rooms))))
        probe_room = await room("probe")
        await asyncio.sleep(1.5)
        await hs.override_ratelimit(bot, MATRIX_LIMIT, MATRIX_LIMIT)
        print(f"  {time.monotonic() - t:.0f} s", file=sys.stderr)
        watcher = MatrixWatcher(hs, alice, bot.user_id)
        await watcher.start()
        try:
            for n in counts:
                await asyncio.sleep(3)  # the bot's Synapse bucket refills; the previous processes are gone
                run = Run(n, args, hs, bot, alice, rooms, probe_room, watcher)
                t = time.monotonic()
                try:
                    result = await run.go()
                except Exception as exc:  # the other process counts still run
                    result = {"processes": n, "error": repr(exc), "logs": str(run.tmp)}
                    print(f"[{n}p] failed: {exc!r}; logs in {run.tmp}", file=sys.stderr)
                result["run_s"] = round(time.monotonic() - t, 1)
                result["exit_codes"] = run.exit_codes  # after SIGTERM
                results.append(result)
                print(json.dumps(result), file=sys.stderr)
                if not args.keep and "error" not in result:
                    shutil.rmtree(run.tmp, ignore_errors=True)
        finally:
            await watcher.stop()
    finally:
        await hs.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--processes", default="1,2,4", help="process counts, one run each (default 1,2,4)")
    parser.add_argument("--idle-seconds", type=float, default=5.0,
                        help="the quiet window before the fan-out that gives the idle rate of round trips")
    parser.add_argument("--keep", action="store_true", help="keep the logs and Synapse's directory")
    parser.add_argument("--direct", action="store_true",
                        help="the processes connect to PostgreSQL directly, without the counting proxy: the rates "
                             "without its extra hop, and no round-trip figures")
    parser.add_argument("--telegram-in-flight", type=int, default=0,
                        help="telegram.in_flight for the service (default: the service's default, 1)")
    parser.add_argument("--proxy-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.proxy_child is not None:
        proxy_child(args.proxy_child.split(","))
        return
    args.processes = [int(x) for x in args.processes.split(",") if x.strip()]
    t = time.monotonic()
    every = asyncio.run(bench(args))
    results = [r for r in every if "error" not in r]
    reference = next((r for r in results if r["processes"] == 1), None)
    print("\nprocesses  rate/limit  vs 1p   429s(tg,dc,mx)   lost  dups  db rt/msg (net)  rss MB (max)",
          file=sys.stderr)
    for r in results:
        plat = r["platforms"]
        vs = round(r["rate_ratio"] / reference["rate_ratio"], 3) if reference and reference["rate_ratio"] else None
        r["vs_1_process"] = vs
        print(f"{r['processes']:>9}  {r['rate_ratio']:>10}  {vs!s:>5}  "
              f"{plat['telegram']['http_429_at_platform']},{plat['discord']['http_429_at_platform']},"
              f"{plat['matrix']['http_429_at_platform']:<10}  "
              f"{sum(v['lost'] for v in plat.values()):>4}  {sum(v['duplicates'] for v in plat.values()):>4}  "
              f"{r['db'].get('roundtrips_per_msg')} ({r['db'].get('net_roundtrips_per_msg')})  "
              f"{r['memory']['max_mb']}", file=sys.stderr)
    print(f"total {time.monotonic() - t:.0f} s", file=sys.stderr)
    rss = [mb for r in results for mb in r["memory"]["rss_mb"]]
    per_msg = [r["db"]["roundtrips_per_msg"] for r in results if r["db"].get("roundtrips_per_msg") is not None]
    print(json.dumps({
        "rate_ratio": {str(r["processes"]): r.get("rate_ratio") for r in every},
        "db_roundtrips_per_msg": max(per_msg) if per_msg else None,
        "rss_mb_per_process": max(rss) if rss else None,
    }))


if __name__ == "__main__":
    main()
