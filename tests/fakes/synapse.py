"""A real Synapse homeserver for tests.

``Synapse`` writes a throw-away ``homeserver.yaml`` into a directory of its own, starts
``python -m synapse.app.homeserver`` on 127.0.0.1 (SQLite, no federation, no TLS, rate limits
raised out of the way), waits until the client API answers and stops it again::

    async with Synapse(tmp_path) as hs:
        bot = await hs.register("bot")
        client = nio.AsyncClient(hs.url, bot.user_id, device_id=bot.device_id)
        client.access_token = bot.access_token

User ids are ``@localpart:localhost``. Users are made through the shared-secret admin
registration API, so no password login or registration flow is needed. ``override_ratelimit``
brings back a per-user message rate limit for the tests about 429 handling.

Synapse is found in the running interpreter (``matrix-synapse`` in the test extras); another
interpreter can be named with ``python=`` or the ``FLOORBRIDGE_SYNAPSE_PYTHON`` variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp

__all__ = ["MatrixHTTPError", "RegisteredUser", "Synapse", "SynapseStartError"]

PYTHON_ENV = "FLOORBRIDGE_SYNAPSE_PYTHON"

# Far above anything a test does: a test that wants a limit sets one per user with
# Synapse.override_ratelimit.
_UNLIMITED: dict[str, float] = {"per_second": 100_000.0, "burst_count": 1_000_000.0}

_RATE_LIMITS: dict[str, Any] = {
    "rc_message": _UNLIMITED,
    "rc_registration": _UNLIMITED,
    "rc_registration_token_validity": _UNLIMITED,
    "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
    "rc_admin_redaction": _UNLIMITED,
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_joins_per_room": _UNLIMITED,
    "rc_key_requests": _UNLIMITED,
    "rc_3pid_validation": _UNLIMITED,
    "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
    "rc_third_party_invite": _UNLIMITED,
    "rc_media_create": _UNLIMITED,
    "rc_presence": {"per_user": _UNLIMITED},
    "rc_delayed_event_mgmt": _UNLIMITED,
    "rc_room_creation": _UNLIMITED,
    "rc_reports": _UNLIMITED,
    "rc_user_directory": _UNLIMITED,
    "rc_profile": _UNLIMITED,
    "rc_federation": {
        "window_size": 1000,
        "sleep_limit": 100_000,
        "sleep_delay": 0,
        "reject_limit": 100_000,
        "concurrent": 100,
    },
}

_ADMIN_LOCALPART = "fixture-admin"


class SynapseStartError(RuntimeError):
    """Synapse exited or did not answer in time; the message ends with the log's tail."""


class MatrixHTTPError(RuntimeError):
    """A Matrix or Synapse admin API call answered with an unexpected status."""

    def __init__(self, method: str, path: str, status: int, body: Mapping[str, Any]) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.body: dict[str, Any] = dict(body)
        self.errcode: str | None = self.body.get("errcode")
        self.error: str | None = self.body.get("error")
        self.retry_after_ms: int | None = self.body.get("retry_after_ms")
        super().__init__(f"{method} {path} -> {status} {self.errcode}: {self.error}")


@dataclass(frozen=True)
class RegisteredUser:
    """A user on the test homeserver with a logged-in device."""

    user_id: str
    access_token: str
    device_id: str
    password: str

    @property
    def localpart(self) -> str:
        return self.user_id[1:].split(":", 1)[0]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _q(part: str) -> str:
    return quote(part, safe="")


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _kill_at_exit(proc: subprocess.Popen[bytes]) -> None:
    """Last resort for a test run that ended without stop(): leave no homeserver behind."""
    if proc.poll() is None:
        _kill_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


class Synapse:
    """A Synapse homeserver in a subprocess, with its config, SQLite database and logs in ``base_dir``.

    ``start()`` after ``stop()`` runs the same server again on the same database (and port,
    when it is still free), so a test can restart the homeserver.
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        *,
        server_name: str = "localhost",
        python: str | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 15.0,
        log_level: str = "WARNING",
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self._server_name = server_name
        self.python = python or os.environ.get(PYTHON_ENV) or sys.executable
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log_level = log_level
        self.extra_config: dict[str, Any] = dict(extra_config or {})
        self.registration_shared_secret = secrets.token_urlsafe(32)
        self._macaroon_secret_key = secrets.token_urlsafe(32)
        self._form_secret = secrets.token_urlsafe(32)
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._admin: RegisteredUser | None = None
        self._txn_counter = 0
        self.startup_seconds: float | None = None

    # ----------------------------------------------------------------------------- lifecycle

    @staticmethod
    def available() -> bool:
        """Whether Synapse can be run from this interpreter (or the one named in the environment)."""
        if os.environ.get(PYTHON_ENV):
            return True
        return importlib.util.find_spec("synapse") is not None

    @property
    def server_name(self) -> str:
        return self._server_name

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("Synapse has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def config_path(self) -> Path:
        return self.base_dir / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "homeserver.log"

    @property
    def output_path(self) -> Path:
        """Synapse's stdout and stderr."""
        return self.base_dir / "synapse.out"

    @property
    def admin(self) -> RegisteredUser:
        """The server admin made at start, used for the admin API calls."""
        if self._admin is None:
            raise RuntimeError("Synapse has not been started")
        return self._admin

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self._server_name}"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self.running:
            raise RuntimeError("Synapse is already running")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        (self.base_dir / "media_store").mkdir(exist_ok=True)
        began = time.monotonic()
        try:
            for attempt in range(3):
                if self._port is None or attempt > 0 or not self._port_is_free(self._port):
                    self._port = _free_port()
                self._write_config()
                self._spawn()
                try:
                    await self._wait_until_ready(began + self.start_timeout)
                    break
                except SynapseStartError as exc:
                    # Another process took the port between _free_port() and Synapse binding it.
                    if attempt < 2 and "Address already in use" in str(exc):
                        await self._terminate()
                        continue
                    raise
            self.startup_seconds = time.monotonic() - began
            if self._admin is None:
                self._admin = await self.register(_ADMIN_LOCALPART, admin=True)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await self._terminate()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def rss_bytes(self) -> int | None:
        """Resident memory of the Synapse process, from /proc (Linux only)."""
        if not self.running or self._proc is None:
            return None
        try:
            status = Path(f"/proc/{self._proc.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return None

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.output_path, self.log_path):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts) or "(no output)"

    @staticmethod
    def _port_is_free(port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As Twisted binds: a port whose old connections sit in TIME_WAIT is free to reuse.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
            return True

    def _write_config(self) -> None:
        base = self.base_dir
        log_config = {
            "version": 1,
            "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "plain",
                    "filename": str(self.log_path),
                    "encoding": "utf8",
                }
            },
            "root": {"level": self.log_level, "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        (base / "log.config").write_text(json.dumps(log_config, indent=2))
        config: dict[str, Any] = {
            "server_name": self._server_name,
            "public_baseurl": f"http://127.0.0.1:{self.port}/",
            "pid_file": str(base / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    # "client" also serves /_synapse/admin and the media API; no "federation".
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(base / "homeserver.db")}},
            "log_config": str(base / "log.config"),
            "media_store_path": str(base / "media_store"),
            "signing_key_path": str(base / f"{self._server_name.replace(':', '_')}.signing.key"),
            "registration_shared_secret": self.registration_shared_secret,
            "macaroon_secret_key": self._macaroon_secret_key,
            "form_secret": self._form_secret,
            "report_stats": False,
            "enable_registration": False,
            "enable_metrics": False,
            "suppress_key_server_warning": True,
            "trusted_key_servers": [],
            "federation_domain_whitelist": [],
            "url_preview_enabled": False,
            # Password hashing at the cost Synapse's own tests use: registering stays fast.
            "bcrypt_rounds": 4,
            **_RATE_LIMITS,
            **self.extra_config,
        }
        # JSON is YAML: no YAML library needed to write it.
        self.config_path.write_text(json.dumps(config, indent=2))

    def _spawn(self) -> None:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        with self.output_path.open("ab") as out:
            # Synapse writes the signing key on its first start (its default
            # --generate-missing-and-run), so no separate --generate-keys run is needed.
            self._proc = subprocess.Popen(
                [self.python, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group, for killpg
            )
        # Runs when this object is collected or the interpreter exits without stop().
        self._finalizer = weakref.finalize(self, _kill_at_exit, self._proc)

    async def _wait_until_ready(self, deadline: float) -> None:
        assert self._proc is not None
        url = f"{self.url}/_matrix/client/versions"
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as probe:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise SynapseStartError(f"Synapse exited with code {code} while starting:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with probe.get(url) as resp:
                        if resp.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise SynapseStartError(
                        f"Synapse did not answer {url} within {self.start_timeout:.0f}s:\n{self.log_tail()}"
                    )
                await asyncio.sleep(0.1)

    @staticmethod
    async def _wait_exit(proc: subprocess.Popen[bytes], seconds: float | None) -> bool:
        try:
            await asyncio.to_thread(proc.wait, seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    async def _terminate(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            _kill_group(proc.pid, signal.SIGTERM)
            if not await self._wait_exit(proc, self.stop_timeout):
                _kill_group(proc.pid, signal.SIGKILL)
                await self._wait_exit(proc, None)
        # Children Synapse may have left in its group.
        _kill_group(proc.pid, signal.SIGKILL)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self._proc = None

    # ----------------------------------------------------------------------------- raw HTTP

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | RegisteredUser | None = None,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        expect: Iterable[int] = (200,),
    ) -> dict[str, Any]:
        """Call the homeserver and return the JSON body; raise MatrixHTTPError on another status."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        headers = {}
        if isinstance(token, RegisteredUser):
            token = token.access_token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self._session.request(
            method, self.url + path, json=json_body, params=params, headers=headers
        ) as resp:
            try:
                body = await resp.json(content_type=None)
            except (json.JSONDecodeError, aiohttp.ContentTypeError):
                body = {"error": await resp.text()}
            if not isinstance(body, dict):
                body = {"body": body}
            if resp.status not in tuple(expect):
                raise MatrixHTTPError(method, path, resp.status, body)
            return body

    def _next_txn_id(self) -> str:
        self._txn_counter += 1
        return f"fixture-{os.getpid()}-{id(self)}-{self._txn_counter}"

    # ----------------------------------------------------------------------------- users

    async def register(
        self,
        localpart: str,
        password: str | None = None,
        *,
        admin: bool = False,
        displayname: str | None = None,
    ) -> RegisteredUser:
        """Make a user through the shared-secret registration admin API."""
        password = password if password is not None else secrets.token_urlsafe(16)
        path = "/_synapse/admin/v1/register"
        nonce = (await self.request("GET", path))["nonce"]
        mac = hmac.new(self.registration_shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(nonce.encode())
        mac.update(b"\x00")
        mac.update(localpart.encode())
        mac.update(b"\x00")
        mac.update(password.encode())
        mac.update(b"\x00")
        mac.update(b"admin" if admin else b"notadmin")
        body: dict[str, Any] = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        if displayname is not None:
            body["displayname"] = displayname
        result = await self.request("POST", path, json_body=body)
        return RegisteredUser(
            user_id=result["user_id"],
            access_token=result["access_token"],
            device_id=result["device_id"],
            password=password,
        )

    async def login(
        self, user: str | RegisteredUser, password: str | None = None, *, device_id: str | None = None
    ) -> RegisteredUser:
        """Password login: a new access token, on ``device_id`` when given (Synapse keeps the device)."""
        if isinstance(user, RegisteredUser):
            user_id, password = user.user_id, password or user.password
        else:
            user_id = user
        if password is None:
            raise ValueError("password is required")
        body: dict[str, Any] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
        }
        if device_id is not None:
            body["device_id"] = device_id
        result = await self.request("POST", "/_matrix/client/v3/login", json_body=body)
        return RegisteredUser(result["user_id"], result["access_token"], result["device_id"], password)

    async def override_ratelimit(self, user: str | RegisteredUser, messages_per_second: int, burst_count: int) -> None:
        """Give one user their own message rate limit.

        Synapse's admin API takes whole numbers only, and 0 for either means "not limited",
        so ``(1, 1)`` is the tightest limit there is.
        """
        for name, value in (("messages_per_second", messages_per_second), ("burst_count", burst_count)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0 (Synapse's admin API), not {value!r}")
        user_id = user.user_id if isinstance(user, RegisteredUser) else user
        await self.request(
            "POST",
            f"/_synapse/admin/v1/users/{_q(user_id)}/override_ratelimit",
            token=self.admin,
            json_body={"messages_per_second": messages_per_second, "burst_count": burst_count},
        )

    async def clear_ratelimit(self, user: str | RegisteredUser) -> None:
        """Back to the server's (raised) message rate limit."""
        user_id = user.user_id if isinstance(user, RegisteredUser) else user
        await self.request("DELETE", f"/_synapse/admin/v1/users/{_q(user_id)}/override_ratelimit", token=self.admin)

    # ----------------------------------------------------------------------------- rooms

    async def create_room(
        self,
        user: RegisteredUser,
        *,
        name: str | None = None,
        invite: Iterable[str | RegisteredUser] = (),
        is_direct: bool = False,
        preset: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a room as ``user`` (private chat, or trusted private chat when direct) and return its id."""
        body: dict[str, Any] = {
            "preset": preset or ("trusted_private_chat" if is_direct else "private_chat"),
            "invite": [u.user_id if isinstance(u, RegisteredUser) else u for u in invite],
            "is_direct": is_direct,
        }
        if name is not None:
            body["name"] = name
        body.update(extra or {})
        result = await self.request("POST", "/_matrix/client/v3/createRoom", token=user, json_body=body)
        room_id: str = result["room_id"]
        return room_id

    async def invite(self, user: RegisteredUser, room_id: str, invitee: str | RegisteredUser) -> None:
        invitee_id = invitee.user_id if isinstance(invitee, RegisteredUser) else invitee
        await self.request(
            "POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/invite", token=user, json_body={"user_id": invitee_id}
        )

    async def join(self, user: RegisteredUser, room_id: str) -> None:
        await self.request("POST", f"/_matrix/client/v3/join/{_q(room_id)}", token=user, json_body={})

    async def send_event(
        self,
        user: RegisteredUser,
        room_id: str,
        event_type: str,
        content: Mapping[str, Any],
        *,
        txn_id: str | None = None,
    ) -> str:
        txn = txn_id or self._next_txn_id()
        result = await self.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{_q(room_id)}/send/{_q(event_type)}/{_q(txn)}",
            token=user,
            json_body=dict(content),
        )
        event_id: str = result["event_id"]
        return event_id

    async def send_text(self, user: RegisteredUser, room_id: str, body: str) -> str:
        return await self.send_event(user, room_id, "m.room.message", {"msgtype": "m.text", "body": body})

    async def messages(self, user: RegisteredUser, room_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The room's latest ``limit`` m.room.message events (edits included), oldest first."""
        result = await self.request(
            "GET",
            f"/_matrix/client/v3/rooms/{_q(room_id)}/messages",
            token=user,
            params={"dir": "b", "limit": str(limit), "filter": json.dumps({"types": ["m.room.message"]})},
        )
        chunk: list[dict[str, Any]] = result.get("chunk", [])
        return [event for event in reversed(chunk) if event.get("type") == "m.room.message"]

    async def get_event(self, user: RegisteredUser, room_id: str, event_id: str) -> dict[str, Any]:
        """One event, with the server's bundled aggregations (``unsigned.m.relations``)."""
        return await self.request("GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/event/{_q(event_id)}", token=user)

    async def room_state(
        self, user: RegisteredUser, room_id: str, event_type: str, state_key: str = ""
    ) -> dict[str, Any] | None:
        """The content of one state event, or None when the room has none."""
        try:
            return await self.request(
                "GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/state/{_q(event_type)}/{_q(state_key)}", token=user
            )
        except MatrixHTTPError as exc:
            if exc.status == 404 and exc.errcode == "M_NOT_FOUND":
                return None
            raise

    async def put_state(
        self,
        user: RegisteredUser,
        room_id: str,
        event_type: str,
        content: Mapping[str, Any],
        state_key: str = "",
    ) -> str:
        result = await self.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{_q(room_id)}/state/{_q(event_type)}/{_q(state_key)}",
            token=user,
            json_body=dict(content),
        )
        event_id: str = result["event_id"]
        return event_id

    async def set_power_level(
        self, user: RegisteredUser, room_id: str, target: str | RegisteredUser, level: int
    ) -> None:
        """Give ``target`` a power level in the room (as ``user``, who must be allowed to)."""
        target_id = target.user_id if isinstance(target, RegisteredUser) else target
        content = await self.room_state(user, room_id, "m.room.power_levels") or {}
        users = dict(content.get("users", {}))
        users[target_id] = level
        await self.put_state(user, room_id, "m.room.power_levels", {**content, "users": users})
