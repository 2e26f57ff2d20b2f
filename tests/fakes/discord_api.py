"""A fake Discord (REST API v10 and gateway WebSocket) for tests, spoken to by the real discord.py.

``FakeDiscord`` serves the HTTP API under ``/api/v10`` and the gateway on 127.0.0.1 (a free port) with
aiohttp, in the real JSON shapes of https://discord.com/developers/docs::

    async with FakeDiscord() as fake:
        guild_id = fake.add_guild("Plenary")
        channel_id = fake.add_channel(guild_id, "room-xx")
        with fake.patch_discord():  # Route.BASE and DiscordWebSocket.DEFAULT_GATEWAY
            client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
            await client.login(fake.token)
            task = asyncio.create_task(client.connect())
            await client.wait_until_ready()
            await client.get_channel(int(channel_id)).send("Room XX opens at 10:00")
            await client.close()
        assert [m["content"] for m in fake.messages(channel_id)] == ["Room XX opens at 10:00"]

Pointing discord.py 2.7 at it takes two class attributes (``patch_discord()`` sets and restores them):
``discord.http.Route.BASE = fake.api_url`` (every REST call, interaction callbacks and webhooks included,
builds its URL from it) and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)``:
a plain ``Client`` never asks ``GET /gateway/bot`` (only ``AutoShardedClient`` does) and connects to that
constant; resumes then go to READY's ``resume_gateway_url`` (``fake.resume_gateway_url``).

What it does like Discord:

* Authorization ``Bot <token>`` on every route but interaction callbacks and interaction webhooks;
  a wrong one answers 401 ``{"message": "401: Unauthorized", "code": 0}``. Every JSON answer has
  ``Content-Type: application/json`` exactly (discord.py parses nothing else). Errors have the real
  shape ``{"message", "code"[, "errors"]}`` (50035 "Invalid Form Body" with nested ``_errors``).
* Messages: content at most 2000 characters, up to 10 embeds within the embed limits (title 256,
  description 4096, 25 fields of name 256 / value 1024, footer 2048, author 256, 6000 in all), up to
  5 action rows of up to 5 buttons (custom_id 100, label 80, no duplicate custom ids), empty messages
  refused (50006), ``allowed_mentions`` applied to ``mentions``/``mention_roles``/``mention_everyone``,
  ``nonce`` with ``enforce_nonce``: a second create with the same nonce in the same channel within
  ``nonce_window`` seconds answers the first message and creates nothing (404 Unknown Message when that
  message was deleted). JSON bodies and multipart ``payload_json`` + ``files[n]`` (attachments are
  served back under ``/attachments/...``). Edits only of the bot's own messages (50005), replies,
  pins (``/channels/{id}/messages/pins/{id}`` as discord.py 2.7 calls it, and the older
  ``/channels/{id}/pins/{id}``), history, typing, DM channels.
* Threads started from a message (``POST /channels/{id}/messages/{id}/threads``): only in guild text
  channels (else 400 50024), name 1-100 characters, one thread per message (400 160004); the thread is a
  channel with the starter message's id that accepts messages like any other (its own rate-limit
  buckets), THREAD_CREATE on the gateway and ``thread`` on the starter message.
* Rate limits: at most ``global_per_second`` requests in any sliding second across routes (interaction
  callbacks and interaction webhooks are exempt, as on Discord) -> 429 ``X-RateLimit-Global: true``,
  ``X-RateLimit-Scope: global``; and per-route, per-channel buckets of ``channel_message_limit`` per
  ``channel_message_window`` seconds (a fixed window starting with the first request, like Discord's) for
  ``POST /channels/{id}/messages``, ``PATCH /channels/{id}/messages/{id}`` and
  ``POST /channels/{id}/messages/{id}/threads``, with ``X-RateLimit-Limit``,
  ``-Remaining``, ``-Reset``, ``-Reset-After`` and ``-Bucket`` on every answer of those routes. A refused
  request changes nothing and answers 429 with ``Retry-After``, ``Via: 1.1 google`` (without it discord.py
  takes the 429 for a Cloudflare ban) and ``{"message": "You are being rate limited.", "retry_after": s,
  "global": bool}``. The global ``retry_after`` is the time until a slot frees for this request, counting
  the slots already promised to earlier refused requests, so a client that waits as told gets through.
* Interactions: ``POST /interactions/{id}/{token}/callback`` types 4, 5, 6, 7 (and 8, 9 stored as sent);
  ``?with_response=1`` answers the callback resource as discord.py 2.7 asks; a second callback answers 400
  40060, a callback after ``interaction_ack_deadline`` seconds 404 10062. ``/webhooks/{app}/{token}``
  followups (the first followup after a "thinking" defer edits the original, as on Discord) and
  ``/messages/@original`` GET/PATCH/DELETE. Ephemeral messages do not show in ``messages(channel_id)``.
* Gateway: HELLO, IDENTIFY (token, intents, privileged intents -> 4014, shard) -> READY + GUILD_CREATE per
  guild (members as the intents allow), heartbeats, RESUME with replay of missed events then RESUMED (an
  unknown session gets op 9), REQUEST_GUILD_MEMBERS, sequence numbers, transport compression zlib-stream
  (discord.py's default unless zstandard is installed) or zstd-stream. MESSAGE_CREATE/UPDATE/DELETE are
  sent for the bot's own messages too and only with the GUILD_MESSAGES/DIRECT_MESSAGES intents; without
  MESSAGE_CONTENT, others' guild messages that do not mention the bot arrive with empty content.

Test input: ``add_guild``/``add_channel``/``add_user``/``add_member``/``add_role``/``dm_channel_for``/
``add_message``; ``push_slash_command``, ``push_button``, ``push_message``; failure injection ``forbid``,
``forbid_threads``, ``close_dms``, ``delete_channel``, ``kill_gateway``, ``invalidate_session``, ``request_reconnect``.
Observation: ``messages``, ``message``, ``created``, ``edits``, ``interaction_responses``,
``original_response``, ``pins``, ``threads``, ``commands``, ``guild_commands``, ``requests``, ``request_log``,
``http_429``, ``peak_requests``, ``gateway_stats``, ``identifies``, ``wait_for``.

Not modelled: permissions and overwrites (``forbid`` instead), private threads, threads without a starter
message, archiving, thread members, reactions, voice, presences,
ETF encoding, pin system messages, the invalid-request (10,000 per 10 minutes) limit, other routes'
buckets (they answer without rate-limit headers, which discord.py handles one request at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import math
import re
import secrets
import socket
import time
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import BodyPartReader, WSMsgType, hdrs, web

__all__ = [
    "INTENT_DIRECT_MESSAGES",
    "INTENT_GUILDS",
    "INTENT_GUILD_MEMBERS",
    "INTENT_GUILD_MESSAGES",
    "INTENT_GUILD_PRESENCES",
    "INTENT_MESSAGE_CONTENT",
    "PRIVILEGED_INTENTS",
    "FakeDiscord",
    "RequestRecord",
]

T = TypeVar("T")
JSON = dict[str, Any]

API_VERSION = 10
DISCORD_EPOCH_MS = 1_420_070_400_000

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Application flags telling which privileged intents the portal granted (the "limited" ones, < 100 guilds).
_APP_FLAG_PRESENCE_LIMITED = 1 << 13
_APP_FLAG_GUILD_MEMBERS_LIMITED = 1 << 15
_APP_FLAG_MESSAGE_CONTENT_LIMITED = 1 << 19

FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15
FLAG_HAS_THREAD = 1 << 5
_SETTABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2

PERMISSION_ADMINISTRATOR = 1 << 3
ALL_PERMISSIONS = 8866461766385663  # discord.Permissions.all() in discord.py 2.7
# @everyone in a new guild: invite, reactions, view, send, embed links, attach, history, external emoji,
# connect, speak, change nickname, use application commands, ...
DEFAULT_EVERYONE_PERMISSIONS = 2248473465835073

MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
MESSAGE_CHAT_INPUT_COMMAND = 20

CHANNEL_GUILD_TEXT = 0
CHANNEL_DM = 1
CHANNEL_PUBLIC_THREAD = 11
THREAD_ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)
MAX_THREAD_NAME = 100

INTERACTION_APPLICATION_COMMAND = 2
INTERACTION_MESSAGE_COMPONENT = 3

CALLBACK_CHANNEL_MESSAGE = 4
CALLBACK_DEFERRED_CHANNEL_MESSAGE = 5
CALLBACK_DEFERRED_UPDATE_MESSAGE = 6
CALLBACK_UPDATE_MESSAGE = 7

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TITLE = 256
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER_TEXT = 2048
MAX_AUTHOR_NAME = 256
MAX_EMBED_TOTAL = 6000
MAX_ACTION_ROWS = 5
MAX_ROW_COMPONENTS = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
MAX_NONCE = 25
INTERACTION_TOKEN_TTL = 15 * 60.0

_USER_MENTION = re.compile(r"<@!?(\d{1,21})>")
_ROLE_MENTION = re.compile(r"<@&(\d{1,21})>")
_API_PREFIX = re.compile(r"^/api/v(?:9|10)(/.*)$")
_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")

GATEWAY_PATH = "/gateway"
RESUME_PATH = "/gateway-resume"


# --------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request to the API and how it was answered."""

    at: float  # time.monotonic() on arrival
    method: str
    path: str  # e.g. /channels/123/messages (without /api/v10)
    route: str  # e.g. "POST /channels/{channel_id}/messages"
    status: int
    channel_id: str | None
    rate_limit_scope: str | None  # "global" or "user" for 429s, else None


# --------------------------------------------------------------------------------------------------
# State


@dataclass
class _User:
    id: str
    username: str
    global_name: str | None = None
    bot: bool = False

    def to_json(self) -> JSON:
        data: JSON = {
            "id": self.id,
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "public_flags": 0,
            "flags": 0,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class _Role:
    id: str
    name: str
    permissions: int
    position: int
    managed: bool = False
    bot_id: str | None = None

    def to_json(self) -> JSON:
        data: JSON = {
            "id": self.id,
            "name": self.name,
            "description": None,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": self.bot_id}
        return data


@dataclass
class _Member:
    user_id: str
    roles: list[str]
    nick: str | None
    joined_at: str


@dataclass
class _Guild:
    id: str
    name: str
    owner_id: str
    locale: str
    joined_at: str
    roles: dict[str, _Role] = field(default_factory=dict)
    members: dict[str, _Member] = field(default_factory=dict)
    channel_ids: list[str] = field(default_factory=list)


@dataclass
class _Channel:
    id: str
    type: int
    name: str | None
    guild_id: str | None
    position: int = 0
    recipient_id: str | None = None
    topic: str | None = None
    last_message_id: str | None = None
    # threads
    parent_id: str | None = None
    owner_id: str | None = None
    created_at: str = ""
    auto_archive_duration: int = 1440
    message_count: int = 0


@dataclass
class _Interaction:
    id: str
    token: str
    type: int
    channel_id: str
    guild_id: str | None
    user_id: str
    created_at: float  # time.monotonic()
    name: str | None = None  # the command name for application commands
    message_id: str | None = None  # the clicked message for component interactions
    response_type: int | None = None
    original_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)


@dataclass
class _Bucket:
    reset_at: float  # time.monotonic()
    remaining: int


@dataclass
class _Session:
    id: str
    intents: int
    shard: tuple[int, int] | None
    large_threshold: int
    seq: int = 0
    events: deque[JSON] = field(default_factory=lambda: deque(maxlen=10_000))
    conn: _Connection | None = None


class _Connection:
    """One gateway WebSocket; payloads leave in order through a writer task."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None, path: str) -> None:
        self.ws = ws
        self.compress = compress
        self.path = path
        self.session: _Session | None = None
        self.server_closing = False
        self.queue: asyncio.Queue[JSON | None] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None
        self._zlib: Any = zlib.compressobj() if compress == "zlib-stream" else None
        self._zstd: Any = _zstd_compressor() if compress == "zstd-stream" else None

    def send(self, payload: JSON) -> None:
        self.queue.put_nowait(payload)

    def _encode(self, payload: JSON) -> bytes | str:
        text = json.dumps(payload, separators=(",", ":"))
        if self._zlib is not None:
            data: bytes = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
            return data
        if self._zstd is not None:
            compressed: bytes = self._zstd(text.encode())
            return compressed
        return text

    async def run_writer(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                payload = await self.queue.get()
                if payload is None or self.ws.closed:
                    return
                data = self._encode(payload)
                if isinstance(data, bytes):
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(data)


def _zstd_compressor() -> Callable[[bytes], bytes] | None:
    """A zstd stream compressor flushing whole blocks, from zstandard or Python 3.14's compression.zstd."""
    try:
        zstandard: Any = importlib.import_module("zstandard")
    except ImportError:
        try:
            stdlib_zstd: Any = importlib.import_module("compression.zstd")
        except ImportError:
            return None
        compressor = stdlib_zstd.ZstdCompressor()

        def compress_stdlib(data: bytes) -> bytes:
            out: bytes = compressor.compress(data, mode=stdlib_zstd.ZstdCompressor.FLUSH_BLOCK)
            return out

        return compress_stdlib
    cobj = zstandard.ZstdCompressor().compressobj()

    def compress(data: bytes) -> bytes:
        out: bytes = cobj.compress(data) + cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        return out

    return compress


# --------------------------------------------------------------------------------------------------
# Errors and answers


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: JSON | None = None,
        headers: Mapping[str, str] | None = None,
        body: JSON | None = None,
    ) -> None:
        super().__init__(f"{status} {message} ({code})")
        self.status = status
        self.body: JSON = body if body is not None else {"message": message, "code": code}
        if errors:
            self.body["errors"] = errors
        self.headers = dict(headers or {})


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py compares the header with == before parsing.
    all_headers: dict[str, str] = {hdrs.CONTENT_TYPE: "application/json"}
    if headers:
        all_headers.update(headers)
    return web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)


def _no_content(headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=204, headers=dict(headers or {}))


def _err(code: str, message: str) -> JSON:
    return {"_errors": [{"code": code, "message": message}]}


def _put_error(errors: JSON, path: Iterable[str | int], error: JSON) -> None:
    keys = [str(k) for k in path]
    node = errors
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = error


def _max_length(limit: int) -> JSON:
    return _err("BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _required() -> JSON:
    return _err("BASE_TYPE_REQUIRED", "This field is required")


def _form_error(errors: JSON) -> _ApiError:
    return _ApiError(400, 50035, "Invalid Form Body", errors=errors)


def _unknown_channel() -> _ApiError:
    return _ApiError(404, 10003, "Unknown Channel")


def _unknown_message() -> _ApiError:
    return _ApiError(404, 10008, "Unknown Message")


def _unknown_interaction() -> _ApiError:
    return _ApiError(404, 10062, "Unknown interaction")


def _unknown_webhook() -> _ApiError:
    return _ApiError(404, 10015, "Unknown Webhook")


def _empty_message() -> _ApiError:
    return _ApiError(400, 50006, "Cannot send an empty message")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _ceil_ms(seconds: float) -> float:
    return max(0.001, math.ceil(seconds * 1000) / 1000)


def _copy(value: T) -> T:
    copied: T = json.loads(json.dumps(value))
    return copied


def _as_object(body: Any) -> JSON:
    if not isinstance(body, dict):
        raise _form_error({"_errors": [{"code": "DICT_TYPE_CONVERT", "message": "Only dictionaries may be used."}]})
    return body


def _iter_components(components: Iterable[Any]) -> Iterator[JSON]:
    for component in components:
        if isinstance(component, dict):
            yield component
            yield from _iter_components(component.get("components") or [])
            accessory = component.get("accessory")
            if isinstance(accessory, dict):
                yield accessory


# --------------------------------------------------------------------------------------------------
# Routing


@dataclass
class _Call:
    request: web.Request
    route: str
    params: dict[str, str]
    extra_headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    files: list[JSON] = field(default_factory=list)
    body_read: bool = False

    @property
    def channel_id(self) -> str | None:
        return self.params.get("channel_id")


Handler = Callable[[_Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class _RouteSpec:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool
    global_limit: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


def _compile(template: str) -> re.Pattern[str]:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        body = r"\d+" if name.endswith("_id") else r"[^/]+"
        return f"(?P<{name}>{body})"

    return re.compile(
        "^" + re.sub(r"\{(\w+)\}", repl, re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
    )


# --------------------------------------------------------------------------------------------------
# The fake


class FakeDiscord:
    """Discord's REST API and gateway on 127.0.0.1 for discord.py to talk to."""

    MAX_PINS = 50

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        global_per_second: int = 50,
        channel_message_limit: int = 5,
        channel_message_window: float = 5.0,
        heartbeat_interval_ms: int = 41_250,
        interaction_ack_deadline: float | None = 3.0,
        nonce_window: float = 300.0,
        privileged_intents: int = PRIVILEGED_INTENTS,
        bot_username: str = "floorbridge-test",
        application_name: str = "Floorbridge Test",
    ) -> None:
        self.token = token
        self.global_per_second = global_per_second
        self.channel_message_limit = channel_message_limit
        self.channel_message_window = channel_message_window
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_ack_deadline = interaction_ack_deadline
        self.nonce_window = nonce_window
        self.privileged_intents = privileged_intents
        self.application_name = application_name

        self._snowflake_last = 0
        self._users: dict[str, _User] = {}
        self._guilds: dict[str, _Guild] = {}
        self._channels: dict[str, _Channel] = {}

        # observation
        self.created: list[JSON] = []
        self.edits: list[JSON] = []
        self.interaction_responses: dict[str, list[JSON]] = {}
        self.requests: Counter[str] = Counter()
        self.request_log: list[RequestRecord] = []
        self.unhandled: list[str] = []
        self.http_429 = 0
        self.http_429_global = 0
        self.http_429_route = 0
        self.nonce_hits = 0
        self.gateway_stats: Counter[str] = Counter()
        self.identifies: list[JSON] = []
        self.presence: JSON | None = None

        # state
        self._messages: dict[str, dict[str, JSON]] = {}  # channel id -> message id -> message (in order)
        self._ephemeral: dict[str, JSON] = {}  # message id -> ephemeral message
        self._attachments: dict[str, tuple[bytes, str | None]] = {}
        self._nonces: dict[tuple[str, str], tuple[str, float]] = {}
        self._deleted_messages: set[str] = set()
        self._pins: dict[str, list[tuple[str, str]]] = {}  # channel id -> [(message id, pinned_at)]
        self._dm_channels: dict[str, str] = {}  # user id -> DM channel id
        self._forbidden: set[str] = set()
        self._closed_dms: set[str] = set()
        self._no_threads: set[str] = set()
        self._deleted_channels: set[str] = set()
        self._global_commands: list[JSON] = []
        self._guild_commands: dict[str, list[JSON]] = {}
        self._interactions: dict[str, _Interaction] = {}
        self._interactions_by_token: dict[str, _Interaction] = {}

        # rate limits
        self._global_window: deque[float] = deque()
        self._global_promises: deque[float] = deque()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

        # gateway
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()

        # plumbing
        self._changed = asyncio.Event()
        self._port = 0
        self._runner: web.AppRunner | None = None
        self._routes: list[_RouteSpec] = []
        self._register_routes()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

        self.bot_user_id = self._snowflake()
        self.application_id = self.bot_user_id  # as for every application made since 2021
        self._users[self.bot_user_id] = _User(self.bot_user_id, bot_username, None, bot=True)
        self.owner_id = self.add_user("fake-owner", "Fake Owner")
        self.verify_key = secrets.token_hex(32)

    # ---------------------------------------------------------------------------------------------
    # Lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeDiscord is already started")
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        for conn in list(self._connections):
            await self._close_conn(conn, 1001, "Discord is going away", flush=False)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """For ``discord.http.Route.BASE``."""
        return f"{self.url}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        """For ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (as a yarl.URL); also in GET /gateway/bot."""
        return f"ws://127.0.0.1:{self._port}{GATEWAY_PATH}"

    @property
    def resume_gateway_url(self) -> str:
        """READY's ``resume_gateway_url``: discord.py resumes there."""
        return f"ws://127.0.0.1:{self._port}{RESUME_PATH}"

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py (process-wide) at this fake: Route.BASE and DiscordWebSocket.DEFAULT_GATEWAY."""
        import discord.gateway
        import discord.http
        import yarl

        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    # ---------------------------------------------------------------------------------------------
    # Setup: guilds, channels, users

    def _snowflake(self) -> str:
        value = max((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22, self._snowflake_last + 1)
        self._snowflake_last = value
        return str(value)

    def add_guild(self, name: str, *, locale: str = "en-US") -> str:
        """A guild the bot is in (with @everyone and the bot's managed role); returns its id."""
        guild_id = self._snowflake()
        guild = _Guild(guild_id, name, self.owner_id, locale, _now_iso())
        guild.roles[guild_id] = _Role(guild_id, "@everyone", DEFAULT_EVERYONE_PERMISSIONS, 0)
        bot_role = _Role(self._snowflake(), self._users[self.bot_user_id].username, ALL_PERMISSIONS, 1, True)
        bot_role.bot_id = self.bot_user_id
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user_id] = _Member(self.bot_user_id, [bot_role.id], None, guild.joined_at)
        self._guilds[guild_id] = guild
        self._broadcast("GUILD_CREATE", lambda session: self._guild_create_json(guild, session), guild_id=guild_id)
        self._notify()
        return guild_id

    def add_channel(self, guild_id: str, name: str, *, topic: str | None = None) -> str:
        """A text channel in the guild; returns its id."""
        guild = self._guild(guild_id)
        channel = _Channel(self._snowflake(), CHANNEL_GUILD_TEXT, name, guild_id, len(guild.channel_ids), topic=topic)
        self._channels[channel.id] = channel
        self._messages[channel.id] = {}
        guild.channel_ids.append(channel.id)
        self._broadcast("CHANNEL_CREATE", lambda _: self._channel_json(channel), guild_id=guild_id)
        self._notify()
        return channel.id

    def add_user(
        self,
        username: str,
        global_name: str | None = None,
        *,
        guild_ids: Iterable[str] | None = None,
        bot: bool = False,
    ) -> str:
        """A user; a member of ``guild_ids`` (default: every guild added so far). Returns the user id."""
        user_id = self._snowflake()
        self._users[user_id] = _User(user_id, username, global_name, bot=bot)
        for guild_id in list(self._guilds) if guild_ids is None else guild_ids:
            self.add_member(guild_id, user_id)
        self._notify()
        return user_id

    def add_member(self, guild_id: str, user_id: str, *, roles: Iterable[str] = (), nick: str | None = None) -> None:
        guild = self._guild(guild_id)
        self._user(user_id)
        role_ids = list(roles)
        for role_id in role_ids:
            if role_id not in guild.roles:
                raise KeyError(f"no role {role_id} in guild {guild_id}")
        member = _Member(user_id, role_ids, nick, _now_iso())
        guild.members[user_id] = member

        def event(session: _Session) -> JSON | None:
            if not session.intents & INTENT_GUILD_MEMBERS:
                return None
            return {**self._member_json(guild, member), "guild_id": guild_id}

        self._broadcast("GUILD_MEMBER_ADD", event, guild_id=guild_id)
        self._notify()

    def add_role(self, guild_id: str, name: str, *, permissions: int = 0) -> str:
        guild = self._guild(guild_id)
        role = _Role(self._snowflake(), name, permissions, len(guild.roles))
        guild.roles[role.id] = role
        self._broadcast(
            "GUILD_ROLE_CREATE", lambda _: {"guild_id": guild_id, "role": role.to_json()}, guild_id=guild_id
        )
        return role.id

    def dm_channel_for(self, user_id: str) -> str:
        """The DM channel between the bot and the user (made on first use); returns its id."""
        self._user(user_id)
        channel_id = self._dm_channels.get(user_id)
        if channel_id is None:
            channel = _Channel(self._snowflake(), CHANNEL_DM, None, None, recipient_id=user_id)
            self._channels[channel.id] = channel
            self._messages[channel.id] = {}
            self._dm_channels[user_id] = channel_id = channel.id
        return channel_id

    def add_message(
        self,
        channel_id: str,
        user_id: str,
        content: str,
        *,
        components: list[JSON] | None = None,
        embeds: list[JSON] | None = None,
    ) -> str:
        """A message already in the channel (e.g. sent by the bot before a restart); no gateway event."""
        channel = self._existing_channel(channel_id)
        payload: JSON = {"content": content, "components": components or [], "embeds": embeds or []}
        message = self._new_message(channel, payload, [], author=self._user(user_id))
        self._store_message(channel, message)
        return str(message["id"])

    # ---------------------------------------------------------------------------------------------
    # Failure injection

    def forbid(self, channel_id: str) -> None:
        """The bot lost access to the channel: its routes answer 403 50001 Missing Access."""
        self._forbidden.add(channel_id)

    def unforbid(self, channel_id: str) -> None:
        self._forbidden.discard(channel_id)

    def close_dms(self, user_id: str) -> None:
        """The user does not accept DMs: sending to the DM channel answers 403 50007."""
        self._closed_dms.add(user_id)

    def open_dms(self, user_id: str) -> None:
        self._closed_dms.discard(user_id)

    def forbid_threads(self, channel_id: str) -> None:
        """The bot may not create threads in the channel: starting one answers 403 50013 Missing Permissions."""
        self._no_threads.add(channel_id)

    def allow_threads(self, channel_id: str) -> None:
        self._no_threads.discard(channel_id)

    def delete_channel(self, channel_id: str) -> None:
        """The channel is gone: 404 10003 Unknown Channel from now on (and CHANNEL_DELETE on the gateway)."""
        channel = self._channels.get(channel_id)
        self._deleted_channels.add(channel_id)
        if channel is not None and channel.guild_id is not None:
            guild = self._guilds[channel.guild_id]
            if channel_id in guild.channel_ids:
                guild.channel_ids.remove(channel_id)
            event = "THREAD_DELETE" if channel.type == CHANNEL_PUBLIC_THREAD else "CHANNEL_DELETE"
            self._broadcast(event, lambda _: self._channel_json(channel), guild_id=channel.guild_id)
        self._notify()

    async def kill_gateway(self, code: int = 1001, reason: str = "") -> None:
        """Close every gateway connection with ``code`` (sessions stay resumable)."""
        self.gateway_stats["killed"] += len(self._connections)
        for conn in list(self._connections):
            await self._close_conn(conn, code, reason, flush=False)

    def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION to every connection (``resumable=False`` forgets the sessions)."""
        for conn in list(self._connections):
            conn.send({"op": 9, "d": resumable, "s": None, "t": None})
            if not resumable and conn.session is not None:
                self._sessions.pop(conn.session.id, None)
                conn.session.conn = None
                conn.session = None
        self.gateway_stats["invalid_session"] += 1

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every connection (the client closes and resumes)."""
        for conn in list(self._connections):
            conn.send({"op": 7, "d": None, "s": None, "t": None})

    def reset_limits(self) -> None:
        """Forget the rate-limit history."""
        self._global_window.clear()
        self._global_promises.clear()
        self._buckets.clear()

    # ---------------------------------------------------------------------------------------------
    # Test input

    def push_slash_command(
        self,
        guild_id: str | None,
        channel_id: str | None,
        user_id: str,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        locale: str = "en-US",
    ) -> str:
        """The user runs ``/name`` (subcommands: "group sub") with ``options`` by option name.

        The command must be registered (global, or for the guild); option values are converted to the
        registered option types (users, roles and channels given by id are resolved). ``guild_id`` None
        is a DM, in ``channel_id`` or the user's DM channel. Returns the interaction id.
        """
        user = self._user(user_id)
        if guild_id is None:
            channel = self._existing_channel(channel_id or self.dm_channel_for(user_id))
        else:
            guild = self._guild(guild_id)
            if user_id not in guild.members:
                raise ValueError(f"user {user_id} is not a member of guild {guild_id}")
            channel = self._existing_channel(channel_id or "")
            if channel.guild_id != guild_id:
                raise ValueError(f"channel {channel_id} is not in guild {guild_id}")
        path = name.split()
        command, command_guild = self._find_command(path[0], guild_id)
        if guild_id is None and (command.get("dm_permission") is False or 1 not in (command.get("contexts") or [1])):
            raise ValueError(f"/{path[0]} is not available in DMs")
        current_options: list[JSON] = command.get("options") or []
        chain: list[JSON] = []
        for sub in path[1:]:
            sub_def = next((o for o in current_options if o.get("name") == sub and o.get("type") in (1, 2)), None)
            if sub_def is None:
                raise KeyError(f"/{name}: no subcommand {sub!r}")
            chain.append(sub_def)
            current_options = sub_def.get("options") or []
        resolved: JSON = {}
        nested = self._convert_options(current_options, dict(options or {}), guild_id, resolved)
        for sub_def in reversed(chain):
            nested = [{"name": sub_def["name"], "type": sub_def["type"], "options": nested}]
        data: JSON = {"id": command["id"], "name": command["name"], "type": command.get("type", 1)}
        if nested:
            data["options"] = nested
        if resolved:
            data["resolved"] = resolved
        if command_guild is not None:
            data["guild_id"] = command_guild
        interaction = self._new_interaction(INTERACTION_APPLICATION_COMMAND, channel, user, name=command["name"])
        payload = self._interaction_json(interaction, data, locale=locale)
        self._dispatch_interaction(interaction, payload)
        return interaction.id

    def push_button(
        self,
        channel_id: str,
        user_id: str,
        message_id: str,
        custom_id: str,
        *,
        component_type: int = 2,
        values: list[str] | None = None,
        locale: str = "en-US",
    ) -> str:
        """The user clicks the button (or picks ``values`` in the select) ``custom_id`` on the message."""
        user = self._user(user_id)
        channel = self._existing_channel(channel_id)
        message = self._messages.get(channel_id, {}).get(message_id) or self._ephemeral.get(message_id)
        if message is None or message["channel_id"] != channel_id:
            raise KeyError(f"no message {message_id} in channel {channel_id}")
        if not any(c.get("custom_id") == custom_id for c in _iter_components(message.get("components") or [])):
            raise ValueError(f"message {message_id} has no component with custom_id {custom_id!r}")
        if channel.guild_id is not None and user_id not in self._guilds[channel.guild_id].members:
            raise ValueError(f"user {user_id} is not a member of guild {channel.guild_id}")
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        interaction = self._new_interaction(INTERACTION_MESSAGE_COMPONENT, channel, user, message_id=message_id)
        payload = self._interaction_json(interaction, data, locale=locale)
        payload["message"] = _copy(message)
        self._dispatch_interaction(interaction, payload)
        return interaction.id

    def push_message(self, channel_id: str, user_id: str, content: str, *, components: list[JSON] | None = None) -> str:
        """The user writes ``content`` in the channel: stored, MESSAGE_CREATE sent. Returns the message id."""
        channel = self._existing_channel(channel_id)
        user = self._user(user_id)
        if channel.guild_id is not None and user_id not in self._guilds[channel.guild_id].members:
            raise ValueError(f"user {user_id} is not a member of guild {channel.guild_id}")
        message = self._new_message(channel, {"content": content, "components": components or []}, [], author=user)
        self._store_message(channel, message)
        self._dispatch_message("MESSAGE_CREATE", channel, message)
        self._notify()
        return str(message["id"])

    # ---------------------------------------------------------------------------------------------
    # Observation

    def messages(self, channel_id: str) -> list[JSON]:
        """The channel's messages, oldest first, as they are now (edits applied, deleted ones gone)."""
        return [_copy(m) for m in self._messages.get(channel_id, {}).values()]

    def message(self, message_id: str) -> JSON | None:
        """A message by id (ephemeral ones too), as it is now."""
        for messages in self._messages.values():
            if message_id in messages:
                return dict(messages[message_id])
        found = self._ephemeral.get(message_id)
        return dict(found) if found is not None else None

    def original_response(self, interaction_id: str) -> JSON | None:
        """The interaction's @original message as it is now."""
        interaction = self._interactions.get(interaction_id)
        if interaction is None or interaction.original_id is None:
            return None
        return self.message(interaction.original_id)

    def threads(self, channel_id: str) -> list[JSON]:
        """The threads started in the channel (not deleted), oldest first, as channel objects."""
        return [
            self._channel_json(c)
            for c in self._channels.values()
            if c.parent_id == channel_id and c.id not in self._deleted_channels
        ]

    def pins(self, channel_id: str) -> list[str]:
        """Pinned message ids, most recently pinned first."""
        return [message_id for message_id, _ in reversed(self._pins.get(channel_id, []))]

    @property
    def commands(self) -> list[JSON]:
        """The registered global application commands."""
        return _copy(self._global_commands)

    def guild_commands(self, guild_id: str) -> list[JSON]:
        return _copy(self._guild_commands.get(guild_id, []))

    def guild_ids(self) -> list[str]:
        return list(self._guilds)

    def peak_requests(self, window: float = 1.0, *, route: str | None = None, channel_id: str | None = None) -> int:
        """The most requests admitted (not answered 429) in any ``window`` seconds, optionally for one route
        (e.g. "POST /channels/{channel_id}/messages") and/or channel."""
        times = sorted(
            r.at
            for r in self.request_log
            if r.status != 429
            and (route is None or r.route == route)
            and (channel_id is None or r.channel_id == channel_id)
        )
        best = 0
        start = 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    @property
    def connected(self) -> bool:
        """Whether some gateway session is identified and attached to a connection."""
        return any(session.conn is not None for session in self._sessions.values())

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5) -> T:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy and return its value.

        Checked on every change in the fake and every 50 ms (for predicates about the client's own state).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"FakeDiscord: condition not met within {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.05))

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # ---------------------------------------------------------------------------------------------
    # JSON shapes

    def _user(self, user_id: str) -> _User:
        try:
            return self._users[str(user_id)]
        except KeyError:
            raise KeyError(f"no user {user_id}") from None

    def _guild(self, guild_id: str) -> _Guild:
        try:
            return self._guilds[str(guild_id)]
        except KeyError:
            raise KeyError(f"no guild {guild_id}") from None

    def _existing_channel(self, channel_id: str) -> _Channel:
        channel = self._channels.get(str(channel_id))
        if channel is None or channel.id in self._deleted_channels:
            raise KeyError(f"no channel {channel_id}")
        return channel

    def _member_json(self, guild: _Guild, member: _Member) -> JSON:
        return {
            "user": self._users[member.user_id].to_json(),
            "nick": member.nick,
            "avatar": None,
            "banner": None,
            "roles": list(member.roles),
            "joined_at": member.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }

    def _permissions(self, guild: _Guild, user_id: str) -> int:
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        value = guild.roles[guild.id].permissions
        member = guild.members.get(user_id)
        for role_id in member.roles if member else []:
            value |= guild.roles[role_id].permissions
        return ALL_PERMISSIONS if value & PERMISSION_ADMINISTRATOR else value

    def _channel_json(self, channel: _Channel) -> JSON:
        if channel.type == CHANNEL_PUBLIC_THREAD:
            return {
                "id": channel.id,
                "type": channel.type,
                "guild_id": channel.guild_id,
                "parent_id": channel.parent_id,
                "owner_id": channel.owner_id,
                "name": channel.name,
                "last_message_id": channel.last_message_id,
                "rate_limit_per_user": 0,
                "message_count": channel.message_count,
                "total_message_sent": channel.message_count,
                "member_count": 1,
                "flags": 0,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": channel.auto_archive_duration,
                    "archive_timestamp": channel.created_at,
                    "locked": False,
                    "create_timestamp": channel.created_at,
                },
            }
        if channel.type == CHANNEL_DM:
            recipient = self._users[channel.recipient_id or ""]
            return {
                "id": channel.id,
                "type": CHANNEL_DM,
                "last_message_id": channel.last_message_id,
                "flags": 0,
                "recipients": [recipient.to_json()],
            }
        return {
            "id": channel.id,
            "type": channel.type,
            "guild_id": channel.guild_id,
            "name": channel.name,
            "position": channel.position,
            "permission_overwrites": [],
            "nsfw": False,
            "topic": channel.topic,
            "last_message_id": channel.last_message_id,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }

    def _guild_json(self, guild: _Guild) -> JSON:
        return {
            "id": guild.id,
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": guild.owner_id,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": [role.to_json() for role in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": guild.channel_ids[0] if guild.channel_ids else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": guild.locale,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
        }

    def _guild_create_json(self, guild: _Guild, session: _Session) -> JSON:
        if session.intents & INTENT_GUILD_MEMBERS:
            members = list(guild.members.values())
        else:
            members = [m for m in guild.members.values() if m.user_id == self.bot_user_id]
        data = self._guild_json(guild)
        data.update(
            {
                "joined_at": guild.joined_at,
                "large": len(guild.members) >= session.large_threshold,
                "unavailable": False,
                "member_count": len(guild.members),
                "voice_states": [],
                "members": [self._member_json(guild, m) for m in members],
                "channels": [
                    {k: v for k, v in self._channel_json(self._channels[c]).items() if k != "guild_id"}
                    for c in guild.channel_ids
                ],
                "threads": [
                    self._channel_json(c)
                    for c in self._channels.values()
                    if c.guild_id == guild.id and c.parent_id is not None and c.id not in self._deleted_channels
                ],
                "presences": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
            }
        )
        return data

    def _application_json(self) -> JSON:
        bot = self._users[self.bot_user_id]
        return {
            "id": self.application_id,
            "name": self.application_name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot": bot.to_json(),
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": self.verify_key,
            "flags": self._application_flags(),
            "owner": self._users[self.owner_id].to_json(),
            "team": None,
            "hook": True,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "approximate_guild_count": len(self._guilds),
            "integration_types_config": {"0": {}},
        }

    def _application_flags(self) -> int:
        flags = 0
        if self.privileged_intents & INTENT_GUILD_PRESENCES:
            flags |= _APP_FLAG_PRESENCE_LIMITED
        if self.privileged_intents & INTENT_GUILD_MEMBERS:
            flags |= _APP_FLAG_GUILD_MEMBERS_LIMITED
        if self.privileged_intents & INTENT_MESSAGE_CONTENT:
            flags |= _APP_FLAG_MESSAGE_CONTENT_LIMITED
        return flags

    # ---------------------------------------------------------------------------------------------
    # HTTP

    def _register_routes(self) -> None:
        def add(method: str, template: str, handler: Handler, *, auth: bool = True, global_limit: bool = True) -> None:
            self._routes.append(_RouteSpec(method, template, _compile(template), handler, auth, global_limit))

        add("GET", "/users/@me", self._get_me)
        add("GET", "/users/@me/guilds", self._get_my_guilds)
        add("POST", "/users/@me/channels", self._create_dm)
        add("GET", "/users/{user_id}", self._get_user)
        add("GET", "/oauth2/applications/@me", self._get_application)
        add("GET", "/applications/@me", self._get_application)
        add("GET", "/gateway", self._get_gateway, auth=False)
        add("GET", "/gateway/bot", self._get_gateway_bot)
        for prefix in ("/applications/{application_id}", "/applications/{application_id}/guilds/{guild_id}"):
            add("GET", prefix + "/commands", self._get_commands)
            add("PUT", prefix + "/commands", self._put_commands)
            add("POST", prefix + "/commands", self._post_command)
            add("GET", prefix + "/commands/{command_id}", self._get_command)
            add("PATCH", prefix + "/commands/{command_id}", self._patch_command)
            add("DELETE", prefix + "/commands/{command_id}", self._delete_command)
        add("GET", "/guilds/{guild_id}", self._get_guild)
        add("GET", "/guilds/{guild_id}/channels", self._get_guild_channels)
        add("GET", "/guilds/{guild_id}/roles", self._get_guild_roles)
        add("GET", "/guilds/{guild_id}/members", self._get_guild_members)
        add("GET", "/guilds/{guild_id}/members/{user_id}", self._get_guild_member)
        add("GET", "/channels/{channel_id}", self._get_channel)
        add("POST", "/channels/{channel_id}/typing", self._typing)
        add("GET", "/channels/{channel_id}/messages", self._get_messages)
        add("POST", "/channels/{channel_id}/messages", self._create_message)
        add("GET", "/channels/{channel_id}/messages/pins", self._get_pins)
        add("PUT", "/channels/{channel_id}/messages/pins/{message_id}", self._pin)
        add("DELETE", "/channels/{channel_id}/messages/pins/{message_id}", self._unpin)
        add("GET", "/channels/{channel_id}/pins", self._get_pins_legacy)
        add("PUT", "/channels/{channel_id}/pins/{message_id}", self._pin)
        add("DELETE", "/channels/{channel_id}/pins/{message_id}", self._unpin)
        add("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message)
        add("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message)
        add("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message)
        add("POST", "/channels/{channel_id}/messages/{message_id}/threads", self._start_thread_from_message)
        hook = "/webhooks/{application_id}/{interaction_token}"
        for method, template, handler in (
            ("POST", "/interactions/{interaction_id}/{interaction_token}/callback", self._interaction_callback),
            ("POST", hook, self._followup),
            ("GET", hook + "/messages/@original", self._get_webhook_message),
            ("PATCH", hook + "/messages/@original", self._edit_webhook_message),
            ("DELETE", hook + "/messages/@original", self._delete_webhook_message),
            ("GET", hook + "/messages/{message_id}", self._get_webhook_message),
            ("PATCH", hook + "/messages/{message_id}", self._edit_webhook_message),
            ("DELETE", hook + "/messages/{message_id}", self._delete_webhook_message),
        ):
            add(method, template, handler, auth=False, global_limit=False)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.rstrip("/") in (GATEWAY_PATH, RESUME_PATH) or path == "/":
            return await self._handle_gateway(request)
        if path.startswith("/attachments/"):
            return self._serve_attachment(path)
        at = time.monotonic()
        match = _API_PREFIX.match(path)
        spec: _RouteSpec | None = None
        params: dict[str, str] = {}
        wrong_method = False
        if match is not None:
            for candidate in self._routes:
                found = candidate.pattern.match(match.group(1))
                if found is None:
                    continue
                if candidate.method != request.method:
                    wrong_method = True
                    continue
                spec, params = candidate, found.groupdict()
                break
        route = spec.key if spec is not None else f"{request.method} {match.group(1) if match else path}"
        self.requests[route] += 1
        call = _Call(request, route, params)
        scope: str | None = None
        try:
            if spec is None:
                self.unhandled.append(f"{request.method} {path}")
                if wrong_method:
                    raise _ApiError(405, 0, "405: Method Not Allowed")
                raise _ApiError(404, 0, "404: Not Found")
            if spec.auth and request.headers.get(hdrs.AUTHORIZATION) != f"Bot {self.token}":
                raise _ApiError(401, 0, "401: Unauthorized")
            if spec.global_limit:
                self._take_global(at)
            response = await spec.handler(call)
        except _ApiError as exc:
            if exc.status == 429:
                scope = exc.headers.get("X-RateLimit-Scope")
                self.http_429 += 1
                if scope == "global":
                    self.http_429_global += 1
                else:
                    self.http_429_route += 1
            response = _json(exc.body, exc.status, {**call.extra_headers, **exc.headers})
        else:
            response.headers.update(call.extra_headers)
        self.request_log.append(
            RequestRecord(
                at, request.method, match.group(1) if match else path, route, response.status, call.channel_id, scope
            )
        )
        self._notify()
        return response

    def _serve_attachment(self, path: str) -> web.StreamResponse:
        parts = path.split("/")
        stored = self._attachments.get(parts[3]) if len(parts) > 4 else None
        if stored is None:
            return web.Response(status=404, text="Not Found")
        data, content_type = stored
        return web.Response(body=data, content_type=content_type or "application/octet-stream")

    async def _read(self, call: _Call) -> Any:
        if call.body_read:
            return call.body
        call.body_read = True
        request = call.request
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            body: Any = {}
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "payload_json":
                    try:
                        body = json.loads(await part.text())
                    except ValueError:
                        raise _ApiError(400, 50109, "The request body contains invalid JSON.") from None
                elif part.name and part.name.startswith("files["):
                    data = await part.read(decode=False)
                    call.files.append(
                        {
                            "field": part.name,
                            "index": int(part.name[6:-1]) if part.name[6:-1].isdigit() else len(call.files),
                            "filename": part.filename or "file",
                            "content_type": part.headers.get(hdrs.CONTENT_TYPE),
                            "data": bytes(data),
                        }
                    )
            call.body = body
        elif request.body_exists:
            text = await request.text()
            try:
                call.body = json.loads(text) if text.strip() else {}
            except ValueError:
                raise _ApiError(400, 50109, "The request body contains invalid JSON.") from None
        else:
            call.body = {}
        return call.body

    # ---------------------------------------------------------------------------------------------
    # Rate limits

    def _take_global(self, now: float) -> None:
        window = self._global_window
        while window and window[0] <= now - 1.0:
            window.popleft()
        promises = self._global_promises
        while promises and promises[0] <= now:
            promises.popleft()
        if len(window) < self.global_per_second:
            window.append(now)
            return
        # Slots free up as the admitted requests leave the window, then as the requests already told to
        # come back (promised a slot) leave it in turn: this request gets the next slot not yet promised.
        slots = list(window) + list(promises)
        index = len(promises)
        slot = slots[index] + 1.0 if index < len(slots) else now + 1.0
        retry_after = _ceil_ms(slot - now)
        promises.append(now + retry_after)
        raise _ApiError(
            429,
            0,
            "You are being rate limited.",
            body={"message": "You are being rate limited.", "retry_after": retry_after, "global": True},
            headers={
                "Retry-After": str(math.ceil(retry_after)),
                "X-RateLimit-Global": "true",
                "X-RateLimit-Scope": "global",
                "Via": "1.1 google",
            },
        )

    def _take_bucket(self, call: _Call, channel_id: str) -> None:
        now = time.monotonic()
        key = (call.route, channel_id)
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset_at:
            bucket = self._buckets[key] = _Bucket(now + self.channel_message_window, self.channel_message_limit)
        reset_after = _ceil_ms(bucket.reset_at - now)
        headers = {
            "X-RateLimit-Bucket": hashlib.sha256(call.route.encode()).hexdigest()[:32],
            "X-RateLimit-Limit": str(self.channel_message_limit),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        }
        if bucket.remaining <= 0:
            headers.update(
                {
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Scope": "user",
                    "Retry-After": str(math.ceil(reset_after)),
                    "Via": "1.1 google",
                }
            )
            raise _ApiError(
                429,
                0,
                "You are being rate limited.",
                body={"message": "You are being rate limited.", "retry_after": reset_after, "global": False},
                headers=headers,
            )
        bucket.remaining -= 1
        headers["X-RateLimit-Remaining"] = str(bucket.remaining)
        call.extra_headers.update(headers)

    # ---------------------------------------------------------------------------------------------
    # Users, application, gateway info, guilds

    async def _get_me(self, call: _Call) -> web.StreamResponse:
        data = self._users[self.bot_user_id].to_json()
        data.update({"verified": True, "mfa_enabled": False, "locale": "en-US", "email": None, "premium_type": 0})
        return _json(data)

    async def _get_user(self, call: _Call) -> web.StreamResponse:
        user = self._users.get(call.params["user_id"])
        if user is None:
            raise _ApiError(404, 10013, "Unknown User")
        return _json(user.to_json())

    async def _get_my_guilds(self, call: _Call) -> web.StreamResponse:
        return _json(
            [
                {
                    "id": g.id,
                    "name": g.name,
                    "icon": None,
                    "banner": None,
                    "owner": False,
                    "permissions": str(self._permissions(g, self.bot_user_id)),
                    "features": [],
                }
                for g in self._guilds.values()
            ]
        )

    async def _get_application(self, call: _Call) -> web.StreamResponse:
        return _json(self._application_json())

    async def _get_gateway(self, call: _Call) -> web.StreamResponse:
        return _json({"url": self.gateway_url})

    async def _get_gateway_bot(self, call: _Call) -> web.StreamResponse:
        return _json(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    def _guild_for(self, call: _Call) -> _Guild:
        guild = self._guilds.get(call.params["guild_id"])
        if guild is None:
            raise _ApiError(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, call: _Call) -> web.StreamResponse:
        guild = self._guild_for(call)
        data = self._guild_json(guild)
        if call.request.query.get("with_counts") in ("true", "1", "True"):
            data["approximate_member_count"] = len(guild.members)
            data["approximate_presence_count"] = 0
        return _json(data)

    async def _get_guild_channels(self, call: _Call) -> web.StreamResponse:
        guild = self._guild_for(call)
        return _json([self._channel_json(self._channels[c]) for c in guild.channel_ids])

    async def _get_guild_roles(self, call: _Call) -> web.StreamResponse:
        return _json([role.to_json() for role in self._guild_for(call).roles.values()])

    async def _get_guild_members(self, call: _Call) -> web.StreamResponse:
        guild = self._guild_for(call)
        limit = int(call.request.query.get("limit", "1"))
        after = int(call.request.query.get("after", "0"))
        members = sorted((m for m in guild.members.values() if int(m.user_id) > after), key=lambda m: int(m.user_id))
        return _json([self._member_json(guild, m) for m in members[:limit]])

    async def _get_guild_member(self, call: _Call) -> web.StreamResponse:
        guild = self._guild_for(call)
        member = guild.members.get(call.params["user_id"])
        if member is None:
            raise _ApiError(404, 10007, "Unknown Member")
        return _json(self._member_json(guild, member))

    async def _create_dm(self, call: _Call) -> web.StreamResponse:
        body = _as_object(await self._read(call))
        recipient = str(body.get("recipient_id") or "")
        if recipient not in self._users:
            raise _form_error({"recipient_id": _err("NUMBER_TYPE_COERCE", f'Value "{recipient}" is not snowflake.')})
        return _json(self._channel_json(self._channels[self.dm_channel_for(recipient)]))

    # ---------------------------------------------------------------------------------------------
    # Application commands

    def _command_scope(self, call: _Call) -> tuple[list[JSON], str | None]:
        if call.params["application_id"] != self.application_id:
            raise _ApiError(403, 50001, "Missing Access")
        guild_id = call.params.get("guild_id")
        if guild_id is None:
            return self._global_commands, None
        if guild_id not in self._guilds:
            raise _ApiError(403, 50001, "Missing Access")
        return self._guild_commands.setdefault(guild_id, []), guild_id

    def _validate_command(self, data: JSON, errors: JSON, prefix: list[str | int]) -> None:
        command_type = data.get("type", 1)
        name = data.get("name")
        if not isinstance(name, str) or not _COMMAND_NAME.match(name) or (command_type == 1 and name != name.lower()):
            _put_error(errors, [*prefix, "name"], _err("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"))
        description = data.get("description") or ""
        if command_type == 1 and not 1 <= len(description) <= 100:
            _put_error(
                errors, [*prefix, "description"], _err("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            )
        options = data.get("options") or []
        if len(options) > 25:
            _put_error(errors, [*prefix, "options"], _max_length(25))
        seen_optional = False
        for index, option in enumerate(options):
            if option.get("type") in (1, 2):
                self._validate_command({**option, "type": 1}, errors, [*prefix, "options", index])
                continue
            if option.get("required"):
                if seen_optional:
                    _put_error(
                        errors,
                        [*prefix, "options", index, "required"],
                        _err(
                            "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                            "Required options must be placed before non-required options",
                        ),
                    )
            else:
                seen_optional = True

    def _store_command(self, data: JSON, scope: list[JSON], guild_id: str | None, existing: JSON | None) -> JSON:
        command: JSON = {
            "id": existing["id"] if existing else self._snowflake(),
            "application_id": self.application_id,
            "version": self._snowflake(),
            "type": data.get("type", 1),
            "name": data["name"],
            "name_localizations": data.get("name_localizations"),
            "description": data.get("description", ""),
            "description_localizations": data.get("description_localizations"),
            "default_member_permissions": data.get("default_member_permissions"),
            "nsfw": data.get("nsfw", False),
            "options": data.get("options") or [],
        }
        if guild_id is not None:
            command["guild_id"] = guild_id
        else:
            command["dm_permission"] = data.get("dm_permission", True)
            command["contexts"] = data.get("contexts")
            command["integration_types"] = data.get("integration_types") or [0]
        if "contexts" in data and guild_id is not None:
            command["contexts"] = data["contexts"]
        return command

    async def _get_commands(self, call: _Call) -> web.StreamResponse:
        scope, _ = self._command_scope(call)
        return _json(scope)

    async def _put_commands(self, call: _Call) -> web.StreamResponse:
        scope, guild_id = self._command_scope(call)
        body = await self._read(call)
        if not isinstance(body, list):
            raise _form_error(
                {"_errors": [{"code": "LIST_TYPE_CONVERT", "message": "Only iterables may be used in a ListType"}]}
            )
        errors: JSON = {}
        if len(body) > 100:
            raise _form_error({"_errors": [_max_length(100)["_errors"][0]]})
        seen: set[tuple[Any, Any]] = set()
        for index, data in enumerate(body):
            self._validate_command(_as_object(data), errors, [index])
            key = (data.get("type", 1), data.get("name"))
            if key in seen:
                _put_error(
                    errors,
                    [index, "name"],
                    _err(
                        "APPLICATION_COMMANDS_DUPLICATE_NAME",
                        f"Application command names must be unique ({data.get('name')})",
                    ),
                )
            seen.add(key)
        if errors:
            raise _form_error(errors)
        old = {(c["type"], c["name"]): c for c in scope}
        new = [self._store_command(d, scope, guild_id, old.get((d.get("type", 1), d["name"]))) for d in body]
        scope[:] = new
        self._notify()
        return _json(new)

    async def _post_command(self, call: _Call) -> web.StreamResponse:
        scope, guild_id = self._command_scope(call)
        data = _as_object(await self._read(call))
        errors: JSON = {}
        self._validate_command(data, errors, [])
        if errors:
            raise _form_error(errors)
        key = (data.get("type", 1), data["name"])
        existing = next((c for c in scope if (c["type"], c["name"]) == key), None)
        command = self._store_command(data, scope, guild_id, existing)
        if existing is not None:
            scope[scope.index(existing)] = command
        else:
            scope.append(command)
        self._notify()
        return _json(command, 200 if existing else 201)

    def _command_for(self, call: _Call) -> tuple[list[JSON], JSON]:
        scope, _ = self._command_scope(call)
        command = next((c for c in scope if c["id"] == call.params["command_id"]), None)
        if command is None:
            raise _ApiError(404, 10063, "Unknown application command")
        return scope, command

    async def _get_command(self, call: _Call) -> web.StreamResponse:
        return _json(self._command_for(call)[1])

    async def _patch_command(self, call: _Call) -> web.StreamResponse:
        _, command = self._command_for(call)
        data = _as_object(await self._read(call))
        for key in (
            "name",
            "description",
            "options",
            "default_member_permissions",
            "dm_permission",
            "contexts",
            "nsfw",
        ):
            if key in data:
                command[key] = data[key]
        command["version"] = self._snowflake()
        self._notify()
        return _json(command)

    async def _delete_command(self, call: _Call) -> web.StreamResponse:
        scope, command = self._command_for(call)
        scope.remove(command)
        self._notify()
        return _no_content()

    # ---------------------------------------------------------------------------------------------
    # Channels and messages

    def _channel_for(self, channel_id: str, *, sending: bool = False) -> _Channel:
        channel = self._channels.get(channel_id)
        parent = channel.parent_id if channel is not None else None
        if channel is None or channel_id in self._deleted_channels or parent in self._deleted_channels:
            raise _unknown_channel()
        if channel_id in self._forbidden or parent in self._forbidden:
            raise _ApiError(403, 50001, "Missing Access")
        if sending and channel.type == CHANNEL_DM and channel.recipient_id in self._closed_dms:
            raise _ApiError(403, 50007, "Cannot send messages to this user")
        return channel

    async def _get_channel(self, call: _Call) -> web.StreamResponse:
        return _json(self._channel_json(self._channel_for(call.params["channel_id"])))

    async def _typing(self, call: _Call) -> web.StreamResponse:
        self._channel_for(call.params["channel_id"], sending=True)
        return _no_content()

    async def _get_messages(self, call: _Call) -> web.StreamResponse:
        channel = self._channel_for(call.params["channel_id"])
        query = call.request.query
        limit = max(1, min(100, int(query.get("limit", "50"))))
        messages = list(self._messages[channel.id].values())
        if "before" in query:
            messages = [m for m in messages if int(m["id"]) < int(query["before"])]
        if "after" in query:
            messages = [m for m in messages if int(m["id"]) > int(query["after"])][:limit]
        return _json(list(reversed(messages))[:limit])

    async def _get_message(self, call: _Call) -> web.StreamResponse:
        channel = self._channel_for(call.params["channel_id"])
        message = self._messages[channel.id].get(call.params["message_id"])
        if message is None:
            raise _unknown_message()
        return _json(message)

    def _validate_message(self, payload: JSON, files: list[JSON], *, require_body: bool) -> None:
        errors: JSON = {}
        content = payload.get("content")
        if content is not None and not isinstance(content, str):
            errors["content"] = _err("BASE_TYPE_STRING", f'Could not interpret "{content}" as string.')
        elif content and len(content) > MAX_CONTENT:
            errors["content"] = _max_length(MAX_CONTENT)
        embeds = payload.get("embeds") or []
        if len(embeds) > MAX_EMBEDS:
            errors["embeds"] = _max_length(MAX_EMBEDS)
        else:
            self._validate_embeds(embeds, errors)
        self._validate_components(payload.get("components") or [], int(payload.get("flags") or 0), errors)
        nonce = payload.get("nonce")
        if isinstance(nonce, str) and len(nonce) > MAX_NONCE:
            errors["nonce"] = _max_length(MAX_NONCE)
        allowed = payload.get("allowed_mentions")
        if isinstance(allowed, dict):
            parse = allowed.get("parse") or []
            for kind in ("users", "roles"):
                if kind in parse and allowed.get(kind):
                    _put_error(
                        errors,
                        ["allowed_mentions", kind],
                        _err(
                            "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                            f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                        ),
                    )
                if len(allowed.get(kind) or []) > 100:
                    _put_error(errors, ["allowed_mentions", kind], _max_length(100))
        if errors:
            raise _form_error(errors)
        has_body = bool(
            content or embeds or payload.get("components") or files or payload.get("sticker_ids") or payload.get("poll")
        )
        if require_body and not has_body:
            raise _empty_message()

    @staticmethod
    def _validate_embeds(embeds: list[Any], errors: JSON) -> None:
        total = 0
        for index, embed in enumerate(embeds):
            if not isinstance(embed, dict):
                _put_error(errors, ["embeds", index], _err("DICT_TYPE_CONVERT", "Only dictionaries may be used."))
                continue
            checks: list[tuple[list[str | int], Any, int]] = [
                (["title"], embed.get("title"), MAX_EMBED_TITLE),
                (["description"], embed.get("description"), MAX_EMBED_DESCRIPTION),
                (["footer", "text"], (embed.get("footer") or {}).get("text"), MAX_FOOTER_TEXT),
                (["author", "name"], (embed.get("author") or {}).get("name"), MAX_AUTHOR_NAME),
            ]
            fields = embed.get("fields") or []
            if len(fields) > MAX_EMBED_FIELDS:
                _put_error(errors, ["embeds", index, "fields"], _max_length(MAX_EMBED_FIELDS))
            for field_index, embed_field in enumerate(fields):
                for key, limit in (("name", MAX_FIELD_NAME), ("value", MAX_FIELD_VALUE)):
                    value = embed_field.get(key)
                    if value is None or str(value) == "":
                        _put_error(errors, ["embeds", index, "fields", field_index, key], _required())
                    else:
                        checks.append((["fields", field_index, key], value, limit))
            for path, value, limit in checks:
                if value is None:
                    continue
                text = str(value)
                total += len(text)
                if len(text) > limit:
                    _put_error(errors, ["embeds", index, *path], _max_length(limit))
        if total > MAX_EMBED_TOTAL and "embeds" not in errors:
            errors["embeds"] = _err("MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}")

    @staticmethod
    def _validate_components(components: list[Any], flags: int, errors: JSON) -> None:
        if flags & FLAG_COMPONENTS_V2:
            return  # layout components: not checked
        if len(components) > MAX_ACTION_ROWS:
            errors["components"] = _max_length(MAX_ACTION_ROWS)
            return
        seen: set[str] = set()
        for row_index, row in enumerate(components):
            if not isinstance(row, dict) or row.get("type") != 1:
                _put_error(
                    errors,
                    ["components", row_index, "type"],
                    _err("UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).'),
                )
                continue
            children = row.get("components") or []
            if not children:
                _put_error(
                    errors,
                    ["components", row_index, "components"],
                    _err("BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length."),
                )
            if len(children) > MAX_ROW_COMPONENTS:
                _put_error(errors, ["components", row_index, "components"], _max_length(MAX_ROW_COMPONENTS))
                continue
            for index, child in enumerate(children):
                path: list[str | int] = ["components", row_index, "components", index]
                custom_id = child.get("custom_id")
                if child.get("type") == 2:
                    label = child.get("label")
                    if label is not None and len(str(label)) > MAX_BUTTON_LABEL:
                        _put_error(errors, [*path, "label"], _max_length(MAX_BUTTON_LABEL))
                    if child.get("style") == 5:
                        if not child.get("url"):
                            _put_error(
                                errors, [*path, "url"], _err("BUTTON_COMPONENT_URL_REQUIRED", "A url is required")
                            )
                        continue
                    if child.get("style") == 6:
                        continue  # premium buttons carry a sku_id
                    if not custom_id:
                        _put_error(
                            errors,
                            [*path, "custom_id"],
                            _err("BUTTON_COMPONENT_CUSTOM_ID_REQUIRED", "A custom id is required"),
                        )
                        continue
                if custom_id is None:
                    continue
                if len(str(custom_id)) > MAX_CUSTOM_ID:
                    _put_error(errors, [*path, "custom_id"], _max_length(MAX_CUSTOM_ID))
                elif custom_id in seen:
                    _put_error(
                        errors,
                        [*path, "custom_id"],
                        _err("COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated"),
                    )
                seen.add(str(custom_id))

    def _resolve_mentions(self, content: str, allowed: Any, channel: _Channel) -> tuple[list[JSON], list[str], bool]:
        if isinstance(allowed, dict):
            parse = set(allowed.get("parse") or [])
            allowed_users = {str(u) for u in allowed.get("users") or []}
            allowed_roles = {str(r) for r in allowed.get("roles") or []}
        else:
            parse, allowed_users, allowed_roles = {"users", "roles", "everyone"}, set(), set()
        guild = self._guilds.get(channel.guild_id or "")
        users: list[JSON] = []
        for user_id in dict.fromkeys(_USER_MENTION.findall(content)):
            if user_id in self._users and ("users" in parse or user_id in allowed_users):
                user_json = self._users[user_id].to_json()
                if guild is not None and user_id in guild.members:
                    member = {k: v for k, v in self._member_json(guild, guild.members[user_id]).items() if k != "user"}
                    user_json["member"] = member
                users.append(user_json)
        roles: list[str] = []
        if guild is not None:
            for role_id in dict.fromkeys(_ROLE_MENTION.findall(content)):
                if role_id in guild.roles and ("roles" in parse or role_id in allowed_roles):
                    roles.append(role_id)
        everyone = guild is not None and "everyone" in parse and ("@everyone" in content or "@here" in content)
        return users, roles, everyone

    def _make_attachments(self, channel: _Channel, payload: JSON, files: list[JSON]) -> list[JSON]:
        described = {str(a.get("id")): a for a in payload.get("attachments") or [] if isinstance(a, dict)}
        result: list[JSON] = []
        for file in files:
            attachment_id = self._snowflake()
            meta = described.get(str(file["index"]), {})
            filename = str(meta.get("filename") or file["filename"])
            self._attachments[attachment_id] = (file["data"], file["content_type"])
            url = f"{self.url}/attachments/{channel.id}/{attachment_id}/{filename}"
            attachment: JSON = {
                "id": attachment_id,
                "filename": filename,
                "size": len(file["data"]),
                "url": url,
                "proxy_url": url,
                "content_type": file["content_type"],
            }
            if meta.get("description"):
                attachment["description"] = meta["description"]
            result.append(attachment)
        return result

    @staticmethod
    def _number_components(components: list[Any]) -> list[Any]:
        copied: list[Any] = _copy(components)
        next_id = 1
        for component in _iter_components(copied):
            if "id" not in component:
                component["id"] = next_id
            next_id = max(next_id, int(component["id"])) + 1
        return copied

    def _new_message(
        self,
        channel: _Channel,
        payload: JSON,
        files: list[JSON],
        *,
        author: _User,
        message_type: int = MESSAGE_DEFAULT,
        interaction: _Interaction | None = None,
        extra_flags: int = 0,
    ) -> JSON:
        content = payload.get("content") or ""
        mentions, mention_roles, everyone = self._resolve_mentions(content, payload.get("allowed_mentions"), channel)
        flags = (int(payload.get("flags") or 0) & _SETTABLE_FLAGS) | extra_flags
        message: JSON = {
            "id": self._snowflake(),
            "channel_id": channel.id,
            "type": message_type,
            "content": content,
            "author": author.to_json(),
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts")),
            "mention_everyone": everyone,
            "mentions": mentions,
            "mention_roles": mention_roles,
            "attachments": self._make_attachments(channel, payload, files),
            "embeds": [{"type": "rich", **e} for e in payload.get("embeds") or []],
            "components": self._number_components(payload.get("components") or []),
            "pinned": False,
            "flags": flags,
        }
        if payload.get("nonce") is not None:
            message["nonce"] = payload["nonce"]
        if interaction is not None:
            message["webhook_id"] = self.application_id
            message["application_id"] = self.application_id
            user = self._users[interaction.user_id].to_json()
            metadata: JSON = {
                "id": interaction.id,
                "type": interaction.type,
                "user": user,
                "authorizing_integration_owners": self._integration_owners(interaction),
            }
            if interaction.type == INTERACTION_APPLICATION_COMMAND:
                metadata["name"] = interaction.name
                metadata["command_type"] = 1
                message["interaction"] = {
                    "id": interaction.id,
                    "type": interaction.type,
                    "name": interaction.name,
                    "user": user,
                }
            elif interaction.message_id is not None:
                metadata["interacted_message_id"] = interaction.message_id
            if interaction.original_id is not None:
                metadata["original_response_message_id"] = interaction.original_id
            message["interaction_metadata"] = metadata
        reference = payload.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id") is not None:
            referenced = self.message(str(reference["message_id"]))
            if referenced is None or referenced["channel_id"] != str(reference.get("channel_id") or channel.id):
                if reference.get("fail_if_not_exists", True):
                    raise _form_error(
                        {"message_reference": _err("MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")}
                    )
            else:
                message["type"] = MESSAGE_REPLY
                message["message_reference"] = {
                    "type": 0,
                    "message_id": referenced["id"],
                    "channel_id": channel.id,
                    **({"guild_id": channel.guild_id} if channel.guild_id else {}),
                }
                message["referenced_message"] = referenced
        return message

    def _store_message(self, channel: _Channel, message: JSON) -> None:
        if message["flags"] & FLAG_EPHEMERAL:
            self._ephemeral[message["id"]] = message
            return
        self._messages.setdefault(channel.id, {})[message["id"]] = message
        channel.last_message_id = message["id"]
        if channel.type == CHANNEL_PUBLIC_THREAD:
            channel.message_count += 1
            starter = self._messages.get(channel.parent_id or "", {}).get(channel.id)
            if starter is not None:
                starter["thread"] = self._channel_json(channel)

    def _record_created(
        self, channel: _Channel, message: JSON, payload: JSON, source: str, interaction_id: str | None = None
    ) -> None:
        self.created.append(
            {
                "channel_id": channel.id,
                "message_id": message["id"],
                "time": time.monotonic(),
                "content": message["content"],
                "source": source,
                "ephemeral": bool(message["flags"] & FLAG_EPHEMERAL),
                "interaction_id": interaction_id,
                "allowed_mentions": payload.get("allowed_mentions"),
                "nonce": payload.get("nonce"),
                "enforce_nonce": payload.get("enforce_nonce"),
                "payload": {k: v for k, v in payload.items()},
            }
        )

    async def _create_message(self, call: _Call) -> web.StreamResponse:
        channel_id = call.params["channel_id"]
        self._take_bucket(call, channel_id)
        channel = self._channel_for(channel_id, sending=True)
        payload = _as_object(await self._read(call))
        self._validate_message(payload, call.files, require_body=True)
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce"):
            key = (channel.id, str(nonce))
            prior = self._nonces.get(key)
            now = time.monotonic()
            if prior is not None and now - prior[1] <= self.nonce_window:
                self.nonce_hits += 1
                existing = self._messages[channel.id].get(prior[0])
                if existing is None:
                    raise _unknown_message()
                return _json(existing)
        message = self._new_message(channel, payload, call.files, author=self._users[self.bot_user_id])
        if nonce is not None and payload.get("enforce_nonce"):
            self._nonces[(channel.id, str(nonce))] = (message["id"], time.monotonic())
        self._store_message(channel, message)
        self._record_created(channel, message, payload, "rest")
        self._dispatch_message("MESSAGE_CREATE", channel, message)
        return _json(message)

    def _apply_edit(self, channel: _Channel, message: JSON, payload: JSON, files: list[JSON]) -> None:
        self._validate_message(payload, files, require_body=False)
        if "content" in payload:
            message["content"] = payload["content"] or ""
        if "content" in payload or "allowed_mentions" in payload:
            mentions, roles, everyone = self._resolve_mentions(
                message["content"], payload.get("allowed_mentions"), channel
            )
            message.update(mentions=mentions, mention_roles=roles, mention_everyone=everyone)
        if "embeds" in payload:
            message["embeds"] = [{"type": "rich", **e} for e in payload["embeds"] or []]
        if "components" in payload:
            message["components"] = self._number_components(payload["components"] or [])
        if payload.get("flags") is not None:
            keep = message["flags"] & ~(FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2)
            message["flags"] = keep | (int(payload["flags"]) & (FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2))
        if "attachments" in payload or files:
            kept_ids = {str(a.get("id")) for a in payload.get("attachments") or [] if isinstance(a, dict)}
            kept = (
                [a for a in message["attachments"] if a["id"] in kept_ids]
                if "attachments" in payload
                else message["attachments"]
            )
            message["attachments"] = kept + self._make_attachments(channel, payload, files)
        message["flags"] &= ~FLAG_LOADING
        message["edited_timestamp"] = _now_iso()
        if not (message["content"] or message["embeds"] or message["components"] or message["attachments"]):
            raise _empty_message()

    async def _edit_message(self, call: _Call) -> web.StreamResponse:
        channel_id = call.params["channel_id"]
        self._take_bucket(call, channel_id)
        channel = self._channel_for(channel_id)
        message = self._messages[channel.id].get(call.params["message_id"])
        if message is None:
            raise _unknown_message()
        payload = _as_object(await self._read(call))
        if message["author"]["id"] != self.bot_user_id and set(payload) - {"flags"}:
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        before = json.dumps(message)
        try:
            self._apply_edit(channel, message, payload, call.files)
        except _ApiError:
            message.clear()
            message.update(json.loads(before))
            raise
        self.edits.append(
            {
                "channel_id": channel.id,
                "message_id": message["id"],
                "time": time.monotonic(),
                "source": "rest",
                "payload": payload,
            }
        )
        self._dispatch_message("MESSAGE_UPDATE", channel, message)
        return _json(message)

    def _remove_message(self, channel: _Channel, message_id: str) -> None:
        self._messages[channel.id].pop(message_id, None)
        self._ephemeral.pop(message_id, None)
        self._deleted_messages.add(message_id)
        pins = self._pins.get(channel.id, [])
        pins[:] = [p for p in pins if p[0] != message_id]

        def event(session: _Session) -> JSON | None:
            if not session.intents & (INTENT_GUILD_MESSAGES if channel.guild_id else INTENT_DIRECT_MESSAGES):
                return None
            data: JSON = {"id": message_id, "channel_id": channel.id}
            if channel.guild_id:
                data["guild_id"] = channel.guild_id
            return data

        self._broadcast("MESSAGE_DELETE", event, guild_id=channel.guild_id)

    async def _delete_message(self, call: _Call) -> web.StreamResponse:
        channel = self._channel_for(call.params["channel_id"])
        message_id = call.params["message_id"]
        if message_id not in self._messages[channel.id]:
            raise _unknown_message()
        self._remove_message(channel, message_id)
        return _no_content()

    async def _start_thread_from_message(self, call: _Call) -> web.StreamResponse:
        channel_id = call.params["channel_id"]
        self._take_bucket(call, channel_id)
        channel = self._channel_for(channel_id)
        message = self._messages[channel.id].get(call.params["message_id"])
        if message is None:
            raise _unknown_message()
        if channel.type != CHANNEL_GUILD_TEXT:
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        if channel_id in self._no_threads:
            raise _ApiError(403, 50013, "Missing Permissions")
        payload = _as_object(await self._read(call))
        errors: JSON = {}
        name = payload.get("name")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = _required()
        elif len(name) > MAX_THREAD_NAME:
            errors["name"] = _err("BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_THREAD_NAME} in length.")
        duration = payload.get("auto_archive_duration")
        if duration is not None and duration not in THREAD_ARCHIVE_DURATIONS:
            errors["auto_archive_duration"] = _err(
                "BASE_TYPE_CHOICES", f"Value must be one of {set(THREAD_ARCHIVE_DURATIONS)}."
            )
        if errors:
            raise _form_error(errors)
        if message["id"] in self._channels:
            raise _ApiError(400, 160004, "A thread has already been created for this message")
        # As on Discord, the thread has the id of the message it was started from.
        thread = _Channel(
            message["id"],
            CHANNEL_PUBLIC_THREAD,
            str(name).strip(),
            channel.guild_id,
            parent_id=channel.id,
            owner_id=self.bot_user_id,
            created_at=_now_iso(),
            auto_archive_duration=int(duration or 1440),
        )
        self._channels[thread.id] = thread
        self._messages[thread.id] = {}
        message["thread"] = self._channel_json(thread)
        message["flags"] |= FLAG_HAS_THREAD

        def created(session: _Session) -> JSON | None:
            return {**self._channel_json(thread), "newly_created": True} if session.intents & INTENT_GUILDS else None

        self._broadcast("THREAD_CREATE", created, guild_id=channel.guild_id)
        self._dispatch_message("MESSAGE_UPDATE", channel, message)
        return _json(self._channel_json(thread), 201)

    async def _pin(self, call: _Call) -> web.StreamResponse:
        channel = self._channel_for(call.params["channel_id"])
        message = self._messages[channel.id].get(call.params["message_id"])
        if message is None:
            raise _unknown_message()
        pins = self._pins.setdefault(channel.id, [])
        if not message["pinned"]:
            if len(pins) >= self.MAX_PINS:
                raise _ApiError(400, 30003, f"Maximum number of pins reached ({self.MAX_PINS})")
            message["pinned"] = True
            pins.append((message["id"], _now_iso()))
            self._dispatch_pins_update(channel)
        return _no_content()

    async def _unpin(self, call: _Call) -> web.StreamResponse:
        channel = self._channel_for(call.params["channel_id"])
        message = self._messages[channel.id].get(call.params["message_id"])
        if message is None:
            raise _unknown_message()
        if message["pinned"]:
            message["pinned"] = False
            pins = self._pins.setdefault(channel.id, [])
            pins[:] = [p for p in pins if p[0] != message["id"]]
            self._dispatch_pins_update(channel)
        return _no_content()

    def _dispatch_pins_update(self, channel: _Channel) -> None:
        pins = self._pins.get(channel.id, [])
        data: JSON = {"channel_id": channel.id, "last_pin_timestamp": pins[-1][1] if pins else None}
        if channel.guild_id:
            data["guild_id"] = channel.guild_id
        self._broadcast("CHANNEL_PINS_UPDATE", lambda _: dict(data), guild_id=channel.guild_id)
        self._notify()

    async def _get_pins(self, call: _Call) -> web.StreamResponse:
        channel = self._channel_for(call.params["channel_id"])
        limit = max(1, min(50, int(call.request.query.get("limit", "50"))))
        before = call.request.query.get("before")
        items = [
            {"pinned_at": pinned_at, "message": self._messages[channel.id][message_id]}
            for message_id, pinned_at in reversed(self._pins.get(channel.id, []))
            if before is None or pinned_at < before
        ]
        return _json({"items": items[:limit], "has_more": len(items) > limit})

    async def _get_pins_legacy(self, call: _Call) -> web.StreamResponse:
        channel = self._channel_for(call.params["channel_id"])
        return _json([self._messages[channel.id][m] for m, _ in reversed(self._pins.get(channel.id, []))])

    # ---------------------------------------------------------------------------------------------
    # Interactions

    def _find_command(self, name: str, guild_id: str | None) -> tuple[JSON, str | None]:
        if guild_id is not None:
            for command in self._guild_commands.get(guild_id, []):
                if command["name"] == name and command["type"] == 1:
                    return command, guild_id
        for command in self._global_commands:
            if command["name"] == name and command["type"] == 1:
                return command, None
        raise KeyError(f"no registered slash command /{name} (did the bot sync its command tree?)")

    def _convert_options(
        self, definitions: list[JSON], values: dict[str, Any], guild_id: str | None, resolved: JSON
    ) -> list[JSON]:
        by_name = {d["name"]: d for d in definitions if d.get("type") not in (1, 2)}
        unknown = sorted(set(values) - set(by_name))
        if unknown:
            raise KeyError(f"no option(s) {unknown}; registered: {sorted(by_name)}")
        result: list[JSON] = []
        for name, definition in by_name.items():
            if name not in values:
                if definition.get("required"):
                    raise ValueError(f"option {name!r} is required")
                continue
            value = values.pop(name)
            option_type = definition["type"]
            if option_type == 3:
                converted: Any = str(value)
            elif option_type == 4:
                converted = int(value)
            elif option_type == 5:
                converted = bool(value)
            elif option_type == 10:
                converted = float(value)
            elif option_type in (6, 7, 8, 9, 11):
                converted = str(value)
                self._resolve_option(option_type, converted, guild_id, resolved)
            else:
                converted = value
            choices = definition.get("choices")
            if choices and converted not in [c["value"] for c in choices]:
                raise ValueError(f"{converted!r} is not a choice of option {name!r}: {[c['value'] for c in choices]}")
            result.append({"name": name, "type": option_type, "value": converted})
        return result

    def _resolve_option(self, option_type: int, value: str, guild_id: str | None, resolved: JSON) -> None:
        guild = self._guilds.get(guild_id or "")
        if option_type in (6, 9) and value in self._users:
            resolved.setdefault("users", {})[value] = self._users[value].to_json()
            if guild is not None and value in guild.members:
                member = self._member_json(guild, guild.members[value])
                member.pop("user")
                member["permissions"] = str(self._permissions(guild, value))
                resolved.setdefault("members", {})[value] = member
            return
        if option_type in (8, 9) and guild is not None and value in guild.roles:
            resolved.setdefault("roles", {})[value] = guild.roles[value].to_json()
            return
        if option_type == 7 and value in self._channels:
            channel = self._channel_json(self._channels[value])
            channel["permissions"] = str(ALL_PERMISSIONS)
            resolved.setdefault("channels", {})[value] = channel
            return
        raise KeyError(f"cannot resolve option value {value!r} (type {option_type})")

    def _new_interaction(
        self,
        interaction_type: int,
        channel: _Channel,
        user: _User,
        *,
        name: str | None = None,
        message_id: str | None = None,
    ) -> _Interaction:
        interaction = _Interaction(
            id=self._snowflake(),
            token="aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48),
            type=interaction_type,
            channel_id=channel.id,
            guild_id=channel.guild_id,
            user_id=user.id,
            created_at=time.monotonic(),
            name=name,
            message_id=message_id,
        )
        self._interactions[interaction.id] = interaction
        self._interactions_by_token[interaction.token] = interaction
        self.interaction_responses[interaction.id] = []
        return interaction

    def _integration_owners(self, interaction: _Interaction) -> JSON:
        if interaction.guild_id is not None:
            return {"0": interaction.guild_id}
        return {"1": interaction.user_id}

    def _interaction_json(self, interaction: _Interaction, data: JSON, *, locale: str) -> JSON:
        channel = self._channels[interaction.channel_id]
        payload: JSON = {
            "id": interaction.id,
            "application_id": self.application_id,
            "type": interaction.type,
            "data": data,
            "channel_id": channel.id,
            "channel": self._channel_json(channel),
            "token": interaction.token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": self._integration_owners(interaction),
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if channel.guild_id is not None:
            guild = self._guilds[channel.guild_id]
            member = self._member_json(guild, guild.members[interaction.user_id])
            permissions = str(self._permissions(guild, interaction.user_id))
            member["permissions"] = permissions
            payload["channel"]["permissions"] = permissions
            payload.update(
                {
                    "guild_id": guild.id,
                    "guild": {"id": guild.id, "locale": guild.locale, "features": []},
                    "guild_locale": guild.locale,
                    "member": member,
                    "app_permissions": str(self._permissions(guild, self.bot_user_id)),
                    "context": 0,
                }
            )
        else:
            payload.update(
                {
                    "user": self._users[interaction.user_id].to_json(),
                    "app_permissions": str(ALL_PERMISSIONS),
                    "context": 1,
                }
            )
        return payload

    def _dispatch_interaction(self, interaction: _Interaction, payload: JSON) -> None:
        self._broadcast("INTERACTION_CREATE", lambda _: _copy(payload), guild_id=interaction.guild_id)
        self._notify()

    def _interaction_for_callback(self, call: _Call) -> _Interaction:
        interaction = self._interactions.get(call.params["interaction_id"])
        if interaction is None or interaction.token != call.params["interaction_token"]:
            raise _unknown_interaction()
        if interaction.response_type is not None:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        deadline = self.interaction_ack_deadline
        if deadline is not None and time.monotonic() - interaction.created_at > deadline:
            raise _unknown_interaction()
        return interaction

    def _record_response(self, interaction: _Interaction, kind: str, **fields: Any) -> None:
        self.interaction_responses[interaction.id].append({"kind": kind, "time": time.monotonic(), **fields})
        self._notify()

    async def _interaction_callback(self, call: _Call) -> web.StreamResponse:
        interaction = self._interaction_for_callback(call)
        body = _as_object(await self._read(call))
        callback_type = body.get("type")
        data: JSON = body.get("data") or {}
        channel = self._channels[interaction.channel_id]
        bot = self._users[self.bot_user_id]
        component = interaction.type == INTERACTION_MESSAGE_COMPONENT or interaction.type == 5
        if callback_type not in (4, 5, 6, 7, 8, 9, 10, 12) or (callback_type in (6, 7) and not component):
            raise _form_error(
                {
                    "type": _err(
                        "INTERACTION_RESPONSE_TYPE_INVALID",
                        "Interaction response type is not valid for this interaction",
                    )
                }
            )
        message: JSON | None = None
        if callback_type == CALLBACK_CHANNEL_MESSAGE:
            self._validate_message(data, call.files, require_body=True)
            message_type = (
                MESSAGE_CHAT_INPUT_COMMAND if interaction.type == INTERACTION_APPLICATION_COMMAND else MESSAGE_DEFAULT
            )
            ephemeral = int(data.get("flags") or 0) & FLAG_EPHEMERAL
            message = self._new_message(
                channel,
                data,
                call.files,
                author=bot,
                message_type=message_type,
                interaction=interaction,
                extra_flags=ephemeral,
            )
            interaction.original_id = message["id"]
            self._store_message(channel, message)
            self._record_created(channel, message, data, "interaction", interaction.id)
            if not ephemeral:
                self._dispatch_message("MESSAGE_CREATE", channel, message)
        elif callback_type == CALLBACK_DEFERRED_CHANNEL_MESSAGE:
            message_type = (
                MESSAGE_CHAT_INPUT_COMMAND if interaction.type == INTERACTION_APPLICATION_COMMAND else MESSAGE_DEFAULT
            )
            ephemeral = int(data.get("flags") or 0) & FLAG_EPHEMERAL
            message = self._new_message(
                channel,
                {},
                [],
                author=bot,
                message_type=message_type,
                interaction=interaction,
                extra_flags=ephemeral | FLAG_LOADING,
            )
            interaction.original_id = message["id"]
            self._store_message(channel, message)
            if not ephemeral:
                self._dispatch_message("MESSAGE_CREATE", channel, message)
        elif callback_type in (CALLBACK_DEFERRED_UPDATE_MESSAGE, CALLBACK_UPDATE_MESSAGE):
            interaction.original_id = interaction.message_id
            target = self.message(interaction.message_id or "")
            if target is None:
                raise _unknown_message()
            if callback_type == CALLBACK_UPDATE_MESSAGE:
                stored = self._messages.get(channel.id, {}).get(target["id"]) or self._ephemeral[target["id"]]
                self._apply_edit(channel, stored, data, call.files)
                self.edits.append(
                    {
                        "channel_id": channel.id,
                        "message_id": stored["id"],
                        "time": time.monotonic(),
                        "source": "interaction",
                        "payload": data,
                    }
                )
                if not stored["flags"] & FLAG_EPHEMERAL:
                    self._dispatch_message("MESSAGE_UPDATE", channel, stored)
                message = stored
        interaction.response_type = int(callback_type)
        self._record_response(
            interaction,
            "callback",
            type=callback_type,
            data=data,
            message_id=message["id"] if message else interaction.original_id,
        )
        if call.request.query.get("with_response") not in ("1", "true", "True"):
            return _no_content()
        answer: JSON = {
            "interaction": {
                "id": interaction.id,
                "type": interaction.type,
                "response_message_loading": callback_type == CALLBACK_DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool(message and message["flags"] & FLAG_EPHEMERAL),
            }
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = message["id"]
        if callback_type in (4, 5, 7) and message is not None:
            answer["resource"] = {"type": callback_type, "message": message}
        return _json(answer)

    def _interaction_for_webhook(self, call: _Call) -> _Interaction:
        interaction = self._interactions_by_token.get(call.params["interaction_token"])
        if interaction is None or call.params["application_id"] != self.application_id:
            raise _unknown_webhook()
        if time.monotonic() - interaction.created_at > INTERACTION_TOKEN_TTL:
            raise _ApiError(401, 50027, "Invalid Webhook Token")
        if interaction.response_type is None:
            raise _unknown_webhook()
        return interaction

    def _webhook_target(self, call: _Call, interaction: _Interaction) -> JSON:
        message_id = call.params.get("message_id") or interaction.original_id
        if message_id is None or (message_id != interaction.original_id and message_id not in interaction.followup_ids):
            raise _unknown_message()
        message = self._messages.get(interaction.channel_id, {}).get(message_id) or self._ephemeral.get(message_id)
        if message is None:
            raise _unknown_message()
        return message

    async def _get_webhook_message(self, call: _Call) -> web.StreamResponse:
        interaction = self._interaction_for_webhook(call)
        return _json(self._webhook_target(call, interaction))

    async def _edit_webhook_message(self, call: _Call) -> web.StreamResponse:
        interaction = self._interaction_for_webhook(call)
        message = self._webhook_target(call, interaction)
        channel = self._channels[interaction.channel_id]
        payload = _as_object(await self._read(call))
        before = json.dumps(message)
        try:
            self._apply_edit(channel, message, payload, call.files)
        except _ApiError:
            message.clear()
            message.update(json.loads(before))
            raise
        original = "message_id" not in call.params
        self._record_response(
            interaction, "edit_original" if original else "edit_followup", data=payload, message_id=message["id"]
        )
        self.edits.append(
            {
                "channel_id": channel.id,
                "message_id": message["id"],
                "time": time.monotonic(),
                "source": "webhook",
                "payload": payload,
            }
        )
        if not message["flags"] & FLAG_EPHEMERAL:
            self._dispatch_message("MESSAGE_UPDATE", channel, message)
        return _json(message)

    async def _delete_webhook_message(self, call: _Call) -> web.StreamResponse:
        interaction = self._interaction_for_webhook(call)
        message = self._webhook_target(call, interaction)
        channel = self._channels[interaction.channel_id]
        self._remove_message(channel, message["id"])
        original = "message_id" not in call.params
        self._record_response(
            interaction, "delete_original" if original else "delete_followup", message_id=message["id"]
        )
        return _no_content()

    async def _followup(self, call: _Call) -> web.StreamResponse:
        interaction = self._interaction_for_webhook(call)
        channel = self._channels[interaction.channel_id]
        payload = _as_object(await self._read(call))
        self._validate_message(payload, call.files, require_body=True)
        original = self.message(interaction.original_id or "")
        if (
            interaction.response_type == CALLBACK_DEFERRED_CHANNEL_MESSAGE
            and original is not None
            and original["flags"] & FLAG_LOADING
        ):
            # The first followup after a "thinking" defer becomes the original response.
            message = self._webhook_target(call, interaction)
            self._apply_edit(channel, message, payload, call.files)
            self._record_created(channel, message, payload, "followup", interaction.id)
            if not message["flags"] & FLAG_EPHEMERAL:
                self._dispatch_message("MESSAGE_UPDATE", channel, message)
        else:
            ephemeral = int(payload.get("flags") or 0) & FLAG_EPHEMERAL
            message = self._new_message(
                channel,
                payload,
                call.files,
                author=self._users[self.bot_user_id],
                interaction=interaction,
                extra_flags=ephemeral,
            )
            interaction.followup_ids.append(message["id"])
            self._store_message(channel, message)
            self._record_created(channel, message, payload, "followup", interaction.id)
            if not ephemeral:
                self._dispatch_message("MESSAGE_CREATE", channel, message)
        self._record_response(interaction, "followup", data=payload, message_id=message["id"])
        if call.request.query.get("wait") in ("1", "true", "True"):
            return _json(message)
        return _no_content()

    # ---------------------------------------------------------------------------------------------
    # Gateway

    def _shard_covers(self, session: _Session, guild_id: str | None) -> bool:
        if session.shard is None:
            return True
        shard_id, shard_count = session.shard
        if guild_id is None:
            return shard_id == 0
        return (int(guild_id) >> 22) % shard_count == shard_id

    def _dispatch(self, session: _Session, event: str, data: JSON) -> None:
        session.seq += 1
        payload = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.events.append(payload)
        if session.conn is not None:
            session.conn.send(payload)

    def _broadcast(self, event: str, build: Callable[[_Session], JSON | None], *, guild_id: str | None) -> None:
        for session in list(self._sessions.values()):
            if not self._shard_covers(session, guild_id):
                continue
            data = build(session)
            if data is not None:
                self._dispatch(session, event, data)

    def _dispatch_message(self, event: str, channel: _Channel, message: JSON) -> None:
        guild = self._guilds.get(channel.guild_id or "")

        def build(session: _Session) -> JSON | None:
            if not session.intents & (INTENT_GUILD_MESSAGES if guild else INTENT_DIRECT_MESSAGES):
                return None
            data: JSON = _copy(message)
            if guild is not None:
                data["guild_id"] = guild.id
                author_id = message["author"]["id"]
                if author_id in guild.members and "webhook_id" not in message:
                    data["member"] = {
                        k: v for k, v in self._member_json(guild, guild.members[author_id]).items() if k != "user"
                    }
                mentioned = any(u["id"] == self.bot_user_id for u in message["mentions"])
                if not session.intents & INTENT_MESSAGE_CONTENT and author_id != self.bot_user_id and not mentioned:
                    data.update(content="", embeds=[], attachments=[], components=[])
                    data.pop("poll", None)
            return data

        self._broadcast(event, build, guild_id=channel.guild_id)

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        if not ws.can_prepare(request).ok:
            return _json({"message": "404: Not Found", "code": 0}, 404)
        await ws.prepare(request)
        self.gateway_stats["connections"] += 1
        if request.path.rstrip("/") == RESUME_PATH:
            self.gateway_stats["connections_to_resume_url"] += 1
        compress = request.query.get("compress")
        conn = _Connection(ws, compress, request.path)
        if (
            request.query.get("encoding", "json") != "json"
            or compress not in (None, "zlib-stream", "zstd-stream")
            or (compress == "zstd-stream" and conn._zstd is None)
        ):
            await ws.close(code=4002, message=b"Error while decoding payload.")
            return ws
        self._connections.add(conn)
        conn.writer = asyncio.create_task(conn.run_writer(), name="FakeDiscord gateway writer")
        conn.send(
            {
                "op": 10,
                "d": {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["fake-discord-gateway"]},
                "s": None,
                "t": None,
            }
        )
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    await self._close_conn(conn, 4002, "Error while decoding payload.")
                    break
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    await self._close_conn(conn, 4002, "Error while decoding payload.")
                    break
                if not isinstance(payload, dict):
                    await self._close_conn(conn, 4002, "Error while decoding payload.")
                    break
                await self._on_gateway_payload(conn, payload)
        finally:
            await self._drop_connection(conn)
        return ws

    async def _close_conn(self, conn: _Connection, code: int, reason: str, *, flush: bool = True) -> None:
        if conn.server_closing:
            return
        conn.server_closing = True
        if conn.session is not None and conn.session.conn is conn:
            conn.session.conn = None
        if not flush:
            while not conn.queue.empty():
                conn.queue.get_nowait()
        conn.queue.put_nowait(None)
        if conn.writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(conn.writer), 1.0)
            except (TimeoutError, asyncio.CancelledError):
                conn.writer.cancel()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.close(code=code, message=reason.encode())
        self._notify()

    async def _drop_connection(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        session = conn.session
        if session is not None and session.conn is conn:
            session.conn = None
            # A client that closes with 1000/1001 ends its session, as on Discord.
            if not conn.server_closing and conn.ws.close_code in (1000, 1001):
                self._sessions.pop(session.id, None)
        conn.queue.put_nowait(None)
        if conn.writer is not None and not conn.writer.done():
            conn.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await conn.writer
        self.gateway_stats["disconnections"] += 1
        self._notify()

    async def _on_gateway_payload(self, conn: _Connection, payload: JSON) -> None:
        op = payload.get("op")
        data = payload.get("d")
        if op == 1:
            self.gateway_stats["heartbeats"] += 1
            conn.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(conn, data)
        elif op == 6:
            await self._resume(conn, data)
        elif conn.session is None:
            await self._close_conn(conn, 4003, "Not authenticated.")
        elif op == 3:
            self.presence = data
        elif op == 4:
            pass  # voice state: not modelled
        elif op == 8:
            self._request_members(conn.session, data)
        else:
            await self._close_conn(conn, 4001, "Unknown opcode.")
        self._notify()

    def _token_ok(self, data: JSON) -> bool:
        token = str(data.get("token") or "")
        return token.removeprefix("Bot ") == self.token

    async def _identify(self, conn: _Connection, data: Any) -> None:
        if conn.session is not None:
            await self._close_conn(conn, 4005, "Already authenticated.")
            return
        if not isinstance(data, dict):
            await self._close_conn(conn, 4002, "Error while decoding payload.")
            return
        if not self._token_ok(data):
            await self._close_conn(conn, 4004, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or isinstance(intents, bool) or intents < 0:
            await self._close_conn(conn, 4013, "Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await self._close_conn(conn, 4014, "Disallowed intent(s).")
            return
        shard: tuple[int, int] | None = None
        raw_shard = data.get("shard")
        if raw_shard is not None:
            if not (isinstance(raw_shard, list) and len(raw_shard) == 2 and 0 <= raw_shard[0] < raw_shard[1]):
                await self._close_conn(conn, 4010, "Invalid shard.")
                return
            shard = (int(raw_shard[0]), int(raw_shard[1]))
        session = _Session(secrets.token_hex(16), intents, shard, int(data.get("large_threshold") or 50))
        self._sessions[session.id] = session
        session.conn = conn
        conn.session = session
        self.gateway_stats["identify"] += 1
        self.identifies.append({k: v for k, v in data.items() if k != "token"})
        guilds = [g for g in self._guilds.values() if self._shard_covers(session, g.id)]
        bot = self._users[self.bot_user_id].to_json()
        bot.update({"verified": True, "mfa_enabled": False, "email": None})
        ready: JSON = {
            "v": API_VERSION,
            "user": bot,
            "user_settings": {},
            "guilds": [{"id": g.id, "unavailable": True} for g in guilds],
            "presences": [],
            "private_channels": [],
            "relationships": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": self.application_id, "flags": self._application_flags()},
            "_trace": ["fake-discord-gateway"],
        }
        if shard is not None:
            ready["shard"] = list(shard)
        self._dispatch(session, "READY", ready)
        for guild in guilds:
            self._dispatch(session, "GUILD_CREATE", self._guild_create_json(guild, session))

    async def _resume(self, conn: _Connection, data: Any) -> None:
        if not isinstance(data, dict):
            await self._close_conn(conn, 4002, "Error while decoding payload.")
            return
        if not self._token_ok(data):
            await self._close_conn(conn, 4004, "Authentication failed.")
            return
        session = self._sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        oldest = session.events[0]["s"] if session is not None and session.events else 1
        if session is None or not isinstance(seq, int) or seq > session.seq or seq < oldest - 1:
            self.gateway_stats["invalid_session"] += 1
            conn.send({"op": 9, "d": False, "s": None, "t": None})
            return
        if session.conn is not None and session.conn is not conn:
            session.conn.session = None
        session.conn = conn
        conn.session = session
        self.gateway_stats["resume"] += 1
        for event in list(session.events):
            if event["s"] > seq:
                self.gateway_stats["replayed"] += 1
                conn.send(event)
        self._dispatch(session, "RESUMED", {"_trace": ["fake-discord-gateway"]})

    def _request_members(self, session: _Session, data: Any) -> None:
        if not isinstance(data, dict):
            return
        guild = self._guilds.get(str(data.get("guild_id")))
        if guild is None:
            return
        user_ids = [str(u) for u in data.get("user_ids") or []]
        not_found: list[str] = []
        if user_ids:
            members = [guild.members[u] for u in user_ids if u in guild.members]
            not_found = [u for u in user_ids if u not in guild.members]
        else:
            query = str(data.get("query") or "").lower()
            members = [m for m in guild.members.values() if self._users[m.user_id].username.lower().startswith(query)]
            limit = int(data.get("limit") or 0)
            if limit:
                members = members[:limit]
        chunk: JSON = {
            "guild_id": guild.id,
            "members": [self._member_json(guild, m) for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": not_found,
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        self._dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)
