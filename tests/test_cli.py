"""The commands an operator types, run as they would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "meetings" / "fg-dlt-1.yaml"


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--config", str(config), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "floorbridge.yaml"
    path.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/cli.db\nlogging:\n  format: text\n")
    return path


def test_help_lists_the_subcommands() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "run.py"), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0
    for cmd in ("serve", "migrate", "import-agenda", "publish", "check-config", "changelog"):
        assert cmd in out.stdout


def test_import_publish_and_changelog(config: Path, tmp_path: Path) -> None:
    imported = run(config, "import-agenda", "fg-dlt-1", str(DEMO))
    assert imported.returncode == 0, imported.stderr
    assert "imported" in imported.stdout
    published = run(config, "publish", "fg-dlt-1", "--comment", "first release")
    assert published.returncode == 0, published.stderr
    assert "published version 1 of fg-dlt-1" in published.stdout
    again = run(config, "publish", "fg-dlt-1")
    assert again.returncode == 1 and "equals version 1" in again.stderr

    # move the first session by editing a copy of the file, re-import, publish v2
    text = DEMO.read_text(encoding="utf-8")
    changed = tmp_path / "fg-dlt-1.yaml"
    changed.write_text(text.replace('"09:30"', '"10:00"', 1), encoding="utf-8")
    assert run(config, "import-agenda", "fg-dlt-1", str(changed), "--publish").returncode == 0
    log = run(config, "changelog", "fg-dlt-1")
    assert log.returncode == 0, log.stderr
    changes = json.loads(log.stdout)
    assert changes["from_version"] == 1 and changes["to_version"] == 2
    assert [c["kind"] for c in changes["changes"]] == ["moved-time"]


def test_a_bad_agenda_is_refused_whole_and_changes_nothing(config: Path, tmp_path: Path) -> None:
    assert run(config, "import-agenda", "fg-dlt-1", str(DEMO), "--publish").returncode == 0
    bad = tmp_path / "broken.csv"
    bad.write_text("id,title,date,start,end,room\n"
                   "a,Opening,2017-10-17,09:30,10:00,Popov\n"
                   "b,Lunch,2017-10-17,14:00,13:00,Popov\n", encoding="utf-8")
    result = run(config, "import-agenda", "fg-dlt-1", str(bad))
    assert result.returncode == 2
    assert "broken.csv:3" in result.stderr and "not after start" in result.stderr
    # the working copy still equals version 1: nothing was half-written
    nothing = run(config, "publish", "fg-dlt-1")
    assert nothing.returncode == 1 and "equals version 1" in nothing.stderr


def test_check_config_reports_key_and_line(tmp_path: Path, config: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  port: 8080\n  hots: 0.0.0.0\n")
    result = run(config, "check-config", str(bad))
    assert result.returncode == 2
    assert "bad.yaml:3" in result.stderr and "hots" in result.stderr
    good = run(config, "check-config", str(ROOT / "config" / "floorbridge.example.yaml"))
    assert good.returncode == 0, good.stderr
    assert "OK" in good.stdout


@pytest.mark.postgres
@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1:5432/floorbridge_never_created", 'database "floorbridge_never_created" does not exist'),
    ("127.0.0.1:1/floorbridge", "Connect call failed"),  # nothing listens there
])
def test_a_database_that_cannot_be_opened_is_refused_at_start_with_the_reason(
        tmp_path: Path, address: str, reason: str) -> None:
    config = tmp_path / "fb.yaml"
    config.write_text(f"database: {{url: 'postgresql+asyncpg://postgres@{address}'}}\nmeetings: {{seed: []}}\n")
    env = {**os.environ, "FLOORBRIDGE_DATABASE_PASSWORD": "s3cret-pw"}
    for command in (["migrate"], ["serve", "--role", "worker"]):
        result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--config", str(config), *command],
                                capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
        assert result.returncode == 2, (command, result.stderr)
        assert "database url: cannot open postgresql+asyncpg://postgres:***@" in result.stderr
        assert reason in result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        assert "s3cret-pw" not in result.stderr + result.stdout
