"""Secrets never reach a log line, an error page or the command line's output: a known secret is
put where it could leak (an exception's message, a traceback, a URL, the environment) and the
output is searched for it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from floorbridge.adapters.logs import JsonFormatter, RedactingHandler, RedactSecrets, configure_logging
from floorbridge.adapters.settings import load_settings
from floorbridge.adapters.web.keys import WebOptions
from floorbridge.adapters.web.server import create_app
from floorbridge.adapters.web.snapshot import Snapshots
from floorbridge.core.errors import InvalidInput
from tests.fakes.telegram_api import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
BOT_TOKEN = "987654:WRONG-secret-token-value-xyz"
SECRETS = {
    "FLOORBRIDGE_TELEGRAM_TOKEN": BOT_TOKEN,
    "FLOORBRIDGE_DISCORD_TOKEN": "discord-SECRET-d1d2d3d4",
    "FLOORBRIDGE_MATRIX_TOKEN": "syt_matrix_SECRET_m1m2m3",
    "FLOORBRIDGE_DATABASE_PASSWORD": "pg-SECRET-p4ssw0rd",
    "FLOORBRIDGE_MAIL_HMAC_SECRET": "hmac-SECRET-k3y",
    "FLOORBRIDGE_TELEGRAM_WEBHOOK_SECRET": "hook-SECRET-w3bh00k",
}
LINK_TOKEN = "LoginLinkSECRETtoken_0123456789abcdef"
FEED_TOKEN = "FeedSECRETtoken_0123456789abcdefABCDEF"
ESCAPED = 'quote"and\\slash-SECRET'  # JSON escapes both characters


def leaked(text: str) -> list[str]:
    found = [v for v in (*SECRETS.values(), LINK_TOKEN, FEED_TOKEN) if v in text]
    return found + (["WRONG-secret"] if "WRONG-secret" in text else [])


def _handler(stream: io.StringIO, fmt: str) -> logging.Handler:
    handler = RedactingHandler(stream, [BOT_TOKEN, ESCAPED])
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactSecrets([BOT_TOKEN]))
    return handler


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_traceback_quoting_a_token_is_redacted(fmt: str) -> None:
    stream = io.StringIO()
    log = logging.getLogger(f"floorbridge.test-secrets-{fmt}")
    log.addHandler(_handler(stream, fmt))
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        try:
            # What python-telegram-bot raises when the server refuses the token.
            raise RuntimeError(f"The token `{BOT_TOKEN}` was rejected by the server.")
        except RuntimeError:
            log.exception("platform failed to start")
        try:
            raise ValueError(ESCAPED)
        except ValueError:
            log.exception("escaped in JSON")
        log.warning("GET http://127.0.0.1:9/bot111:OtherBotsToken-abc/getMe")  # a token we were not told
        log.warning("sync https://matrix.example.org/_matrix/client/v3/sync?since=s1&access_token=syt_abc_def")
        log.info('127.0.0.1 "GET /console/login/%s HTTP/1.1" 200; "GET /ical/slot/%s.ics HTTP/1.1" 200',
                 LINK_TOKEN, FEED_TOKEN)
    finally:
        log.handlers.clear()
    out = stream.getvalue()
    assert "Traceback" in out  # the trace is kept, only the secret goes
    assert not leaked(out) and "slash-SECRET" not in out, out
    assert "OtherBotsToken" not in out and "syt_abc_def" not in out
    assert "/bot***/getMe" in out and "access_token=***" in out
    assert "/console/login/*** " in out and "/ical/slot/***.ics" in out


def test_an_uncaught_exception_is_logged_redacted() -> None:
    code = ("from floorbridge.adapters.logs import configure_logging\n"
            f"configure_logging('INFO', 'json', [{BOT_TOKEN!r}])\n"
            f"raise RuntimeError('connect to https://api.telegram.org/bot' + {BOT_TOKEN!r} + '/getMe failed')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["level"] == "critical" and "RuntimeError" in line["exc"]
    assert not leaked(done.stderr + done.stdout), done.stderr


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(path: Path, text: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.2)
    raise AssertionError(f"{text!r} did not appear in:\n{path.read_text(errors='replace')[-4000:]}")


async def test_serve_keeps_a_refused_telegram_token_and_url_tokens_out_of_its_log(tmp_path: Path) -> None:
    """The real thing: `run.py serve` with a Telegram token the (fake) server refuses, so that
    python-telegram-bot's InvalidToken, which quotes the token, ends up in a logged traceback; and
    web requests whose paths hold a login link's or a feed's token, for the access log."""
    port = _port()
    async with FakeTelegram() as tg:  # its token differs from ours: getMe answers 401
        config = tmp_path / "floorbridge.yaml"
        config.write_text(json.dumps({
            "server": {"port": port, "public_url": f"http://127.0.0.1:{port}"},
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/fb.db", "echo": True},  # every statement
            "logging": {"level": "DEBUG"},
            "meetings": {"seed": []},
            "telegram": {"enabled": True, "base_url": tg.base_url},
        }))
        out = tmp_path / "serve.log"
        with out.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "run.py"), "--config", str(config), "serve",
                cwd=ROOT, env={**os.environ, **SECRETS}, stdout=sink, stderr=subprocess.STDOUT)
        try:
            await asyncio.to_thread(_wait_for, out, "InvalidToken", 60)  # logged with its traceback
            await asyncio.to_thread(_wait_for, out, '"serving"', 30)
            async with aiohttp.ClientSession() as client:
                for path in (f"/console/login/{LINK_TOKEN}", f"/ical/slot/{FEED_TOKEN}.ics",
                             f"/ical/personal/{FEED_TOKEN}.ics", f"/nowhere?token={FEED_TOKEN}"):
                    async with client.get(f"http://127.0.0.1:{port}{path}") as r:
                        body = await r.text()
                        assert not leaked(body) and "Traceback" not in body
            await asyncio.to_thread(_wait_for, out, "/nowhere?token=***", 10)
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
    text = out.read_text(errors="replace")
    assert "InvalidToken" in text and "/console/login/***" in text and "/ical/slot/***.ics" in text
    # Echoed, its values left out (the engine hides them; the log filter would too).
    assert "WHERE chats.feed_token_hash = ?" in text and "[SQL parameters hidden due to hide_parameters=True]" in text
    assert all(line.startswith("{") for line in text.splitlines()), "a line bypassed the JSON (redacting) handler"
    assert not leaked(text), [line for line in text.splitlines() if leaked(line)][:3]


@pytest.fixture
def secret_env() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in SECRETS}
    os.environ.update(SECRETS)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_the_configuration_summary_and_help_show_no_secret(tmp_path: Path) -> None:
    config = tmp_path / "floorbridge.yaml"
    config.write_text(json.dumps({
        "database": {"url": "postgresql+asyncpg://floorbridge@db.example.org/floorbridge"},
        "telegram": {"enabled": True, "mode": "webhook"}, "discord": {"enabled": True},
        "matrix": {"enabled": True, "user_id": "@bot:example.org"},
    }))
    env = {**os.environ, **SECRETS}
    outputs = []
    for args in (["check-config", str(config)], ["--help"], ["serve", "--help"], ["--config", str(config), "migrate",
                                                                                  "--help"]):
        done = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    assert "token: set" in outputs[0] and "password: set" in outputs[0]
    assert not leaked("\n".join(outputs)), outputs


def test_a_password_in_the_database_url_is_refused_without_repeating_it(tmp_path: Path) -> None:
    config = tmp_path / "floorbridge.yaml"
    config.write_text("database:\n  url: postgresql+asyncpg://fb:pg-SECRET-p4ssw0rd@db.example.org/fb\n")
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "check-config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "password" in done.stderr
    assert not leaked(done.stdout + done.stderr), done.stderr


# ---------------------------------------------------------------- error pages


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError(f"could not reach postgresql://fb:{SECRETS['FLOORBRIDGE_DATABASE_PASSWORD']}@db/fb")


async def test_error_pages_hold_no_secret_and_no_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def form(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.post())))

    snapshots = Snapshots(None, poll_seconds=3600)  # type: ignore[arg-type]  # never started: nothing to serve
    app = create_app(snapshots, WebOptions("https://bridge.example.org", max_body_bytes=1024))
    app.router.add_get("/api/v1/boom", _boom)
    app.router.add_get("/boom", _boom)
    app.router.add_post("/form", form)
    stream = io.StringIO()
    handler = RedactingHandler(stream, SECRETS.values())
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        answers = []
        for method, path, kwargs in (
            ("GET", "/api/v1/boom", {}),
            ("GET", "/boom", {"headers": {"Accept": "text/html"}}),
            ("GET", "/api/v1/meetings/nope", {}),
            ("GET", "/no/such/page", {"headers": {"Accept": "text/html"}}),
            ("POST", "/api/v1/meetings", {}),
            ("POST", "/form", {"data": {"field": "x" * 5000}}),
        ):
            r = await client.request(method, path, **kwargs)
            answers.append((r.status, await r.text()))
    finally:
        await client.close()
        logging.getLogger().removeHandler(handler)
    assert [s for s, _ in answers] == [500, 500, 404, 404, 405, 413]
    assert "internal error; see the server log" in answers[0][1]
    for _status, body in answers:
        assert not leaked(body) and "Traceback" not in body and "RuntimeError" not in body, body
    log = stream.getvalue()
    assert "RuntimeError" in log and "Traceback" in log  # the server's log has the trace, redacted
    assert not leaked(log)


def test_configure_logging_redacts_what_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved, level, hook = root.handlers[:], root.level, sys.excepthook
    try:
        configure_logging("INFO", "text", [BOT_TOKEN])
        try:
            raise OSError(f"https://api.telegram.org/bot{BOT_TOKEN}/getUpdates: connection reset")
        except OSError:
            logging.getLogger("floorbridge.test").exception("polling failed")
    finally:
        root.handlers[:], sys.excepthook = saved, hook
        root.setLevel(level)
    err = capsys.readouterr().err
    assert "polling failed" in err and "OSError" in err and not leaked(err)


def test_a_key_named_like_a_secret_is_refused_but_the_secretariat_is_people(tmp_path: Path) -> None:
    config = tmp_path / "floorbridge.yaml"
    config.write_text("meetings:\n  staff:\n    wsis-2025:\n      secretariat: [telegram:7]\n")
    assert load_settings(config, env={}).meetings.staff["wsis-2025"].secretariat == ("telegram:7",)
    config.write_text("telegram:\n  webhook_secret: hook-SECRET-w3bh00k\n")
    with pytest.raises(InvalidInput) as caught:
        load_settings(config, env={})
    assert "telegram.webhook_secret: looks like a secret" in str(caught.value)
    assert not leaked(str(caught.value))
