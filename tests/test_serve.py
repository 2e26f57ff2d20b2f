"""`run.py serve` as `make run` starts it: migrates, seeds the demo meetings, serves their feeds."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import icalendar
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = _port()
    config = tmp_path / "floorbridge.yaml"
    config.write_text(
        f"server:\n  port: {port}\n  public_url: http://127.0.0.1:{port}\n"
        f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/serve.db\n"
        "meetings:\n  poll_seconds: 0.2\n"
        "feeds:\n  deadline_alarms: [P3D, PT1H]\n"
    )
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--config", str(config), "serve"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            proc.kill()
            pytest.fail(f"server did not start:\n{proc.communicate()[0]}")
        yield base, config
    finally:
        proc.terminate()
        try:
            out = proc.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
        assert proc.returncode == 0, f"server did not stop cleanly on SIGTERM:\n{out}"


def test_serves_both_demo_meetings(server: tuple[str, Path]) -> None:
    base, _ = server
    status, _, body = get(base + "/api/v1/meetings")
    assert status == 200
    ids = {m["id"] for m in json.loads(body)["meetings"]}
    assert ids == {"wsis-2025", "fg-dlt-1"}
    for meeting in ids:
        status, headers, feed = get(f"{base}/ical/{meeting}.ics")
        assert status == 200 and headers["Content-Type"] == "text/calendar; charset=utf-8"
        assert icalendar.Calendar.from_ical(feed).walk("VEVENT")
        status, _, deadlines = get(f"{base}/ical/{meeting}/deadlines.ics")
        assert status == 200 and icalendar.Calendar.from_ical(deadlines).walk("VEVENT")
    # The reminders are the configured ones: 09:00 three days before and on the day.
    _, _, deadlines = get(f"{base}/ical/fg-dlt-1/deadlines.ics")
    visa = next(e for e in icalendar.Calendar.from_ical(deadlines).walk("VEVENT") if "visa" in str(e["UID"]))
    assert [str(a["DESCRIPTION"]) for a in visa.walk("VALARM")] == [
        "Deadline: Requests for visa support letters (in 3 days)",
        "Deadline: Requests for visa support letters (today)",
    ]
    status, _, page = get(base + "/meetings/wsis-2025")
    assert status == 200 and b"webcal://127.0.0.1" in page


def test_a_version_published_from_the_cli_is_served_without_restart(server: tuple[str, Path], tmp_path: Path) -> None:
    base, config = server
    _, headers, _ = get(f"{base}/ical/fg-dlt-1.ics")
    demo = (ROOT / "config" / "meetings" / "fg-dlt-1.yaml").read_text(encoding="utf-8")
    changed = tmp_path / "fg-dlt-1.yaml"
    changed.write_text(demo.replace('"09:30"', '"10:00"', 1), encoding="utf-8")
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "--config", str(config), "import-agenda",
                           "fg-dlt-1", str(changed), "--publish"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, _, _ = get(f"{base}/ical/fg-dlt-1.ics", {"If-None-Match": headers["ETag"]})
        if status == 200:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the new version was not served within 10 s")
    versions = json.loads(get(f"{base}/api/v1/meetings/fg-dlt-1/versions")[2])["versions"]
    assert [v["number"] for v in versions] == [1, 2]


def test_readiness_and_metrics(server: tuple[str, Path]) -> None:
    base, _ = server
    status, _, body = get(base + "/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready", "problems": [], "role": "all"}
    _, headers, _ = get(f"{base}/ical/wsis-2025.ics")
    assert get(f"{base}/ical/wsis-2025.ics", {"If-None-Match": headers["ETag"]})[0] == 304
    status, headers, text = get(base + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    metrics = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.decode().splitlines()
               if line and not line.startswith("#")}
    assert metrics['floorbridge_feed_responses_total{status="200"}'] >= 1
    assert metrics['floorbridge_feed_responses_total{status="304"}'] >= 1
    assert 0 < metrics["floorbridge_feed_not_modified_ratio"] < 1
    assert metrics["process_resident_memory_bytes"] > 10_000_000
