#!/usr/bin/env python3
"""Feed serving and publishing benchmark (issue 2).

Builds a 500-session meeting, publishes it into a fresh SQLite database, then measures with wrk
(50 connections, 127.0.0.1) the requests per second floorbridge answers for a full GET of the
meeting feed and for a conditional GET answered 304, side by side in the same run with nginx
serving the same bytes as a static file. Both servers run one worker process (floorbridge is one
asyncio process; nginx gets `worker_processes 1` so the ratio compares like with like), and wrk
runs on the other core. Each figure is the median of several alternating rounds.

Also times publishing a changed 500-session version (diff, render every feed, store).
Last line: one JSON object with full_vs_nginx, not_modified_vs_nginx, publish_500_s.

Usage: .venv/bin/python bench/feeds.py [--rounds 5] [--duration 5] [--keep]
Needs nginx and wrk (Debian packages; installed with apt-get when missing and running as root).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/ is not a package path: its queue.py would shadow the standard library's queue.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from floorbridge.adapters.storage import open_store  # noqa: E402
from floorbridge.calendar.feeds import render_feeds  # noqa: E402
from floorbridge.core import usecases  # noqa: E402
from floorbridge.core.agenda import Document, Session, SessionStatus  # noqa: E402
from floorbridge.core.ids import MeetingId, SessionId  # noqa: E402
from floorbridge.core.meeting import Meeting  # noqa: E402

MEETING = MeetingId("bench-500")
TRACKS = ["Plenary", "High-Level Segment", "Action Line C1", "Action Line C5", "AI Governance", "Workshops"]
ROOMS = [f"Room {c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"] + [f"Hall {n}" for n in range(1, 7)]


def need(tool: str, package: str) -> str:
    found = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {package} with apt-get", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
        found = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if not found:
        sys.exit(f"{tool} is needed (Debian package {package})")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s (last: {last})")


def build_meeting() -> tuple[Meeting, list[Session]]:
    meeting = Meeting(
        id=MEETING, title="Benchmark meeting, 500 sessions", organiser="ITU", timezone="Europe/Zurich",
        start_date=date(2025, 10, 20), end_date=date(2025, 10, 31), venue="CICG, Geneva", city="Geneva",
    )
    rng = random.Random(500)
    sessions = []
    for i in range(500):
        day = meeting.start_date + timedelta(days=i % 12)
        slot = (i // 12) % 8
        start = meeting.localize(day, dtime(8 + slot, 0 if i % 2 else 30))
        sessions.append(
            Session(
                id=SessionId(f"s{i:04d}"),
                title=f"Session {i}: digital cooperation, item {rng.randint(1, 99)} — обсуждение, débat",
                start=start,
                end=start + timedelta(minutes=rng.choice((45, 60, 90))),
                track=TRACKS[i % len(TRACKS)],
                room=ROOMS[i % len(ROOMS)],
                remote_url=f"https://meet.example.org/s{i:04d}",
                description="Moderated discussion; statements limited to 3 minutes. " * 3,
                documents=(Document(f"Doc {i}", f"https://docs.example.org/{i}.docx"),),
                chairs=("Ms A. Chair", "Mr B. Vice-Chair"),
            )
        )
    return meeting, sessions


def changed(sessions: list[Session], round_no: int) -> list[Session]:
    """Move 20, cancel 5, rename 25 sessions: a busy day's agenda update."""
    out = list(sessions)
    for k in range(50):
        i = (round_no * 50 + k * 7) % 500
        s = out[i]
        if k < 20:
            out[i] = replace(s, start=s.start + timedelta(minutes=15), end=s.end + timedelta(minutes=15))
        elif k < 25:
            out[i] = replace(s, status=SessionStatus.CANCELLED)
        else:
            out[i] = replace(s, title=s.title + f" (r{round_no})")
    return out


async def prepare(db_url: str, public_url: str, publishes: int) -> tuple[list[float], bytes]:
    meeting, sessions = build_meeting()
    store = await open_store(db_url, migrate=True)

    def render(m: Meeting, v):  # type: ignore[no-untyped-def]
        return render_feeds(m, v, base_url=public_url)

    try:
        await usecases.import_agenda(store, MEETING, defined_meeting=meeting, sessions=sessions, deadlines=[],
                                     source="bench")
        await usecases.publish_agenda(store, MEETING, render, now=datetime.now(UTC))
        timings = []
        for r in range(publishes):
            await store.replace_working_copy(MEETING, changed(sessions, r + 1), None)
            t0 = time.perf_counter()
            await usecases.publish_agenda(store, MEETING, render, now=datetime.now(UTC) + timedelta(seconds=r + 1))
            timings.append(time.perf_counter() - t0)
        body = (await store.rendered_feeds(MEETING))["all"].body
        return timings, body
    finally:
        await store.close()


WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def wrk(wrk_bin: str, url: str, duration: int, headers: dict[str, str], expect: int) -> float:
    args = [wrk_bin, "-t1", "-c50", f"-d{duration}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    bad = WRK_NON2XX.search(out)
    if bad:
        raise RuntimeError(f"{url}: {bad.group(1)} answers were not 2xx/3xx:\n{out}")
    m = WRK_RPS.search(out)
    if not m:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    return float(m.group(1))


def probe(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], int]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), len(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--publishes", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    nginx_bin = need("nginx", "nginx-light")
    wrk_bin = need("wrk", "wrk")
    tmp = Path(tempfile.mkdtemp(prefix="fb-bench-"))
    tmp.chmod(0o755)  # nginx's workers run as an unprivileged user when it is started as root
    fb_port, ng_port = free_port(), free_port()
    public_url = f"http://127.0.0.1:{fb_port}"
    db_url = f"sqlite+aiosqlite:///{tmp}/bench.db"

    timings, body = asyncio.run(prepare(db_url, public_url, args.publishes))
    publish_s = statistics.median(timings)

    static = tmp / "www" / "ical"
    static.mkdir(parents=True)
    (static / f"{MEETING}.ics").write_bytes(body)
    (tmp / "nginx.conf").write_text(
        f"""daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ text/calendar ics; }}
    charset utf-8;
    charset_types text/calendar;
    server {{
        listen 127.0.0.1:{ng_port} reuseport;
        root {tmp}/www;
        etag on;
    }}
}}
"""
    )
    (tmp / "floorbridge.yaml").write_text(
        f"""server:
  host: 127.0.0.1
  port: {fb_port}
  public_url: {public_url}
logging:
  level: WARNING
database:
  url: {db_url}
meetings:
  seed: []
"""
    )
    procs = [
        subprocess.Popen([nginx_bin, "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "nginx-error.log")]),
        subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--config", str(tmp / "floorbridge.yaml"), "serve",
                          "--no-seed"], cwd=ROOT),
    ]
    try:
        fb_url = f"{public_url}/ical/{MEETING}.ics"
        ng_url = f"http://127.0.0.1:{ng_port}/ical/{MEETING}.ics"
        wait_http(fb_url)
        wait_http(ng_url)
        _fb_status, fb_headers, fb_len = probe(fb_url, {})
        _ng_status, ng_headers, ng_len = probe(ng_url, {})
        assert fb_len == ng_len == len(body), (fb_len, ng_len, len(body))
        fb_etag, ng_etag = fb_headers["ETag"], ng_headers["ETag"]
        assert probe(fb_url, {"If-None-Match": fb_etag})[0] == 304
        assert probe(ng_url, {"If-None-Match": ng_etag})[0] == 304

        results: dict[str, list[float]] = {k: [] for k in ("fb_full", "ng_full", "fb_304", "ng_304")}
        for r in range(args.rounds):
            order = [("fb", fb_url, fb_etag), ("ng", ng_url, ng_etag)]
            if r % 2:
                order.reverse()
            for name, url, etag in order:
                results[f"{name}_full"].append(wrk(wrk_bin, url, args.duration, {}, 200))
                results[f"{name}_304"].append(wrk(wrk_bin, url, args.duration, {"If-None-Match": etag}, 304))
            print(f"round {r + 1}: " + ", ".join(f"{k}={v[-1]:.0f}" for k, v in results.items()), file=sys.stderr)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in results.items()}
    full_ratio = med["fb_full"] / med["ng_full"]
    nm_ratio = med["fb_304"] / med["ng_304"]
    print(f"feed body: {len(body)} bytes, 500 sessions; wrk -t1 -c50 -d{args.duration}s, {args.rounds} rounds, medians")
    print(f"{'':24}{'floorbridge':>14}{'nginx':>14}{'ratio':>9}")
    print(f"{'full GET (req/s)':24}{med['fb_full']:>14.0f}{med['ng_full']:>14.0f}{full_ratio:>9.2f}")
    print(f"{'304 GET (req/s)':24}{med['fb_304']:>14.0f}{med['ng_304']:>14.0f}{nm_ratio:>9.2f}")
    print(f"publish 500 sessions (diff + render + store), median of {len(timings)}: {publish_s:.3f} s")
    print(json.dumps({"full_vs_nginx": round(full_ratio, 3), "not_modified_vs_nginx": round(nm_ratio, 3),
                      "publish_500_s": round(publish_s, 3)}))


if __name__ == "__main__":
    main()
