"""`run.py serve` with a chat platform enabled, as deployed: the web process starts its chat worker
in a process of its own and supervises it. Tested with the Telegram fake: a delegate's request
from Telegram lands in the web process's list, the chair's "next" from Telegram is a "you have the
floor" on Telegram, /metrics shows the worker's platform, a killed worker is started again, and a
killed web process takes its worker with it (nothing is left sending on its own)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.chat.conftest import eventually
from tests.fakes.telegram_api import FakeTelegram
from tests.resilience.support import free_port

ROOT = Path(__file__).resolve().parent.parent
HLS = "hls-statements-1"
LIST = f"/api/v1/meetings/wsis-2025/sessions/{HLS}/speakers"
CHAIR, AMINA, BORIS, CHAIRS_ROOM = 42, 1001, 1002, -100999
WEBHOOK_SECRET = "wh-s3cret_token"


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    base: str
    fake: FakeTelegram
    log: Path

    def worker(self) -> int | None:
        found = [p for p in children(self.process.pid) if "--role worker" in command_line(p)]
        return found[0] if found else None


async def running(client: aiohttp.ClientSession, base: str) -> set[str]:
    async with client.get(base + "/metrics") as r:
        text = await r.text()
    return {line.split('"')[1] for line in text.splitlines()
            if line.startswith("floorbridge_platform_running{") and line.endswith(" 1.0")}


@pytest.fixture
def telegram_mode() -> dict[str, str]:
    return {}


@pytest.fixture
async def service(tmp_path: Path, telegram_mode: dict[str, str]) -> AsyncIterator[Service]:
    port = free_port()
    async with FakeTelegram() as fake:
        config = tmp_path / "floorbridge.yaml"
        config.write_text(json.dumps({
            "server": {"port": port, "public_url": f"http://127.0.0.1:{port}"},
            "logging": {"level": "INFO", "format": "text"},
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/fb.db"},
            "meetings": {"seed": [str(ROOT / "config/meetings/wsis-2025.yaml")],
                         "staff": {"wsis-2025": {"moderators": [f"telegram:{CHAIR}"]}}},
            # Sent only when woken: the notices the web process writes must reach the worker at once.
            "bots": {"delivery_poll_seconds": 60},
            "telegram": {"enabled": True, "base_url": fake.base_url, **telegram_mode},
        }))
        log = tmp_path / "serve.log"
        env = {**os.environ, "FLOORBRIDGE_TELEGRAM_TOKEN": fake.token,
               "FLOORBRIDGE_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET}
        process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--config", str(config), "serve"],  # noqa: ASYNC220 (kept running while the test talks to it)
                                   cwd=tmp_path, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        svc = Service(process, f"http://127.0.0.1:{port}", fake, log)
        try:
            async with aiohttp.ClientSession() as client:
                await eventually(lambda: _ready(client, svc.base), 60, "the web process ready")
                await eventually(lambda: _has_telegram(client, svc.base), 60, "the worker running Telegram")
            yield svc
        finally:
            worker = svc.worker()
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                await eventually(lambda: process.poll() is not None, 30, "the service stopped")
            assert worker is None or not alive(worker), "the worker outlived its web process"


async def _ready(client: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with client.get(base + "/readyz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def _has_telegram(client: aiohttp.ClientSession, base: str) -> bool:
    try:
        return "telegram" in await running(client, base)
    except aiohttp.ClientError:
        return False


async def test_the_web_process_runs_the_chat_in_its_worker_and_supervises_it(service: Service) -> None:
    fake, base = service.fake, service.base
    worker = service.worker()
    assert worker is not None, "no chat worker among the web process's children"
    assert "--link" in command_line(worker)

    async with aiohttp.ClientSession() as client:
        # A Telegram delegate and a web delegate ask; one list, in the order the server received them.
        fake.push_message(AMINA, AMINA, f"/floor {HLS} Kenya", first_name="Amina")
        await fake.wait_for(lambda: fake.said(AMINA, "number 1"), timeout=20)
        async with client.post(base + LIST + "/requests", json={"name": "Wanjiru", "delegation": "Web"}) as r:
            assert r.status == 201
            assert (await r.json())["speaker"]["position"] == 2
        async with client.get(base + LIST) as r:
            listed = await r.json()
        assert [(s["name"], s["channel"]) for s in listed["waiting"]] == [("Amina", "telegram"), ("Wanjiru", "web")]

        # The chair's "next" from Telegram: the web process stores it, the worker sends the notice.
        fake.push_message(CHAIRS_ROOM, CHAIR, f"/chair next {HLS}", chat_type="supergroup", title="Chairs")
        await fake.wait_for(lambda: fake.said(AMINA, "Your time:"), timeout=20)
        assert "telegram" in await running(client, base)

        # The worker dies: the web process starts another, which takes the chat up again.
        os.kill(worker, signal.SIGKILL)
        await eventually(lambda: (service.worker() or worker) != worker, 20, "a new worker started")
        await eventually(lambda: _has_telegram(client, base), 20, "Telegram running again")
        fake.push_message(BORIS, BORIS, f"/floor {HLS} Ruritania", first_name="Boris")
        await fake.wait_for(lambda: fake.said(BORIS, "number 2"), timeout=30)
        assert service.process.poll() is None
    assert "the chat worker stopped; starting it again" in service.log.read_text()


def nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def autogroup_scheduling() -> bool:
    return Path("/proc/self/autogroup").exists()


def autogroup_of(pid: int) -> tuple[str, str] | None:
    """(the autogroup's name, its nice value), or None where the process is in none of its own: a
    kernel without autogroup scheduling has no such file, and a process in the root group (one
    started by init without a session of its own, as CI runs the tests) shows it empty."""
    try:
        text = Path(f"/proc/{pid}/autogroup").read_text()
    except FileNotFoundError:
        return None
    if not text.strip():
        return None
    name, _, nice = text.split()
    return name, nice


async def test_the_worker_yields_the_cpu_in_a_session_of_its_own_and_ctrl_c_stops_both(service: Service) -> None:
    web, worker = service.process.pid, service.worker()
    assert worker is not None
    # Its own session: where Linux shares the CPU between sessions first, its lower priority holds
    # against the other sessions too, not only against the web process.
    assert os.getsid(worker) == worker != os.getsid(web)
    assert (nice_of(web), nice_of(worker)) == (0, 10)  # bots.worker_nice's default
    if autogroup_scheduling():
        group, web_group = autogroup_of(worker), autogroup_of(web)
        # The web process may be in the root group (None) where its parent never had a session.
        assert group is not None and group[1] == "10" and (web_group is None or web_group[0] != group[0]), \
            (group, web_group)
    assert "cannot lower the chat worker's session priority" not in service.log.read_text()

    # A terminal's Ctrl-C reaches the web process alone (the worker is not in its process group):
    # the web process stops its worker on the way out.
    service.process.send_signal(signal.SIGINT)
    await eventually(lambda: service.process.poll() is not None, 30, "the web process stopped")
    assert service.process.returncode == 0
    await eventually(lambda: not alive(worker), 10, "the worker stopped with it")
    assert "the chat worker did not stop in time" not in service.log.read_text()


async def test_a_killed_web_process_takes_its_worker_with_it(service: Service) -> None:
    worker = service.worker()
    assert worker is not None
    service.process.kill()
    await eventually(lambda: service.process.poll() is not None, 10, "the web process gone")
    await eventually(lambda: not alive(worker), 10, "the worker gone with it")


@pytest.mark.parametrize("telegram_mode", [{"mode": "webhook"}])
async def test_telegrams_webhook_reaches_the_bot_in_the_worker(service: Service) -> None:
    """In webhook mode Telegram posts each update to the web server, which hands it to the bot in the
    worker as it came, the secret-token header included."""
    fake, base = service.fake, service.base
    assert fake.webhook_url == base + "/telegram/webhook"
    fake.push_message(AMINA, AMINA, f"/floor {HLS} Kenya", first_name="Amina")
    await fake.wait_for(lambda: fake.said(AMINA, "number 1"), timeout=20)
    assert fake.webhook_attempts and all(a.status == 200 for a in fake.webhook_attempts)
    async with aiohttp.ClientSession() as client:
        forged = {"update_id": 99, "message": {"message_id": 1, "date": 0, "chat": {"id": BORIS, "type": "private"},
                                               "from": {"id": BORIS, "is_bot": False, "first_name": "B"},
                                               "text": f"/floor {HLS}"}}
        async with client.post(base + "/telegram/webhook", json=forged,
                               headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as r:
            assert r.status == 403
        async with client.get(base + LIST) as r:
            assert [s["name"] for s in (await r.json())["waiting"]] == ["Amina"]
