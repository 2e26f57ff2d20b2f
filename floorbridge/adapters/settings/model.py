"""The settings schema: one frozen, strict pydantic model per section of floorbridge.yaml.

Secrets are not fields: the file names the environment variables that hold them (`token_env`,
`password_env`), and `load_settings` resolves them into private `SecretStr`s, which neither
`repr()` nor `model_dump()` shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from ipaddress import ip_network
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

SQLITE = "sqlite+aiosqlite"
POSTGRES = "postgresql+asyncpg"
DRIVERS = {"sqlite": SQLITE, SQLITE: SQLITE, "postgresql": POSTGRES, "postgres": POSTGRES, POSTGRES: POSTGRES}

DEFAULT_DATABASE_URL = f"{SQLITE}:///data/floorbridge.db"
DEFAULT_SEED = ("config/meetings/wsis-2025.yaml", "config/meetings/fg-dlt-1.yaml")
DEFAULT_ALARMS = ("P7D", "P1D", "PT2H")
PLATFORMS = ("telegram", "discord", "matrix")
SECRET_NAMES = ("database", *PLATFORMS, "telegram-webhook", "mail-hmac")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W|(?:(?P<days>\d+)D)?(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?)$"
)
_MATRIX_USER = re.compile(r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(?::\d{1,5})?$")


# ---------------------------------------------------------------- value checks


def parse_duration(text: str) -> timedelta:
    """An iCal (RFC 5545) duration such as P7D, P1W, PT2H or P1DT12H; ValueError otherwise.

    Years and months are refused: their length depends on the date, and VALARM triggers cannot
    express them either.
    """
    match = _DURATION.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration in weeks, days, hours, minutes or seconds "
            "(e.g. P7D, P1W, PT2H, PT30M, P1DT12H)"
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    span = timedelta(**parts)
    if span <= timedelta(0):
        raise ValueError(f"{text!r} is zero; an alarm must come some time before the deadline")
    return span


def _duration(text: str) -> str:
    parse_duration(text)
    return text


def _env_name(text: str) -> str:
    if not ENV_NAME.match(text):
        # The value is never echoed: a token pasted here by mistake must not reach a log.
        raise ValueError(
            "must be the NAME of an environment variable (letters, digits and '_', not starting with a "
            "digit), not the secret itself"
        )
    return text


def url_check(schemes: tuple[str, ...], *, bare: bool = False) -> Callable[[str], str]:
    """A validator for URLs with one of `schemes` and a host; `bare` also forbids a path ending in
    '/', a query and a fragment (for a base that other paths are appended to)."""

    def check(text: str) -> str:
        shown = " or ".join(f"{s}://" for s in schemes)
        try:
            parts = urlsplit(text)
            _ = parts.port
        except ValueError:
            raise ValueError(f"must be a {shown} URL (it cannot be parsed)") from None
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(f"must be a {shown} URL with a host, e.g. {schemes[0]}://example.org")
        if parts.password is not None:
            raise ValueError("must not contain a password; secrets belong in environment variables")
        if bare and (parts.query or parts.fragment):
            raise ValueError("must not have a query (?...) or a fragment (#...)")
        if bare and text.endswith("/"):
            raise ValueError(f"must not end with '/' (write {text.rstrip('/')})")
        return text

    return check


def _host(text: str) -> str:
    if not text.strip() or any(c.isspace() for c in text):
        raise ValueError("must be a host name or IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0")
    return text


def _none_is_empty(value: object) -> object:
    """`telegram:` with nothing under it means "all defaults", not "null"."""
    return {} if value is None else value


def _as_tuple(value: object) -> object:
    """YAML gives lists; the frozen model keeps tuples. An empty value means an empty list."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def normalise_database_url(text: str) -> str:
    """`text` with its async driver filled in (postgresql:// -> postgresql+asyncpg://,
    sqlite:/// -> sqlite+aiosqlite:///). ValueError for other databases, unparsable URLs and
    URLs that carry a password. Messages never repeat the URL, which may hold a secret."""
    try:
        url = make_url(text)
    except ArgumentError:
        raise ValueError(
            "cannot be parsed as a database URL; use e.g. sqlite+aiosqlite:///data/floorbridge.db "
            "or postgresql+asyncpg://user@host/dbname"
        ) from None
    driver = DRIVERS.get(url.drivername)
    if driver is None:
        raise ValueError(
            f"database driver {url.drivername!r} is not supported; use sqlite+aiosqlite:///path/to/file.db "
            "or postgresql+asyncpg://user@host/dbname"
        )
    if url.password is not None:
        raise ValueError(
            "contains a password; remove it from the URL and put it in the environment variable named "
            "by database.password_env (default FLOORBRIDGE_DATABASE_PASSWORD)"
        )
    return url.set(drivername=driver).render_as_string(hide_password=False)


EnvName = Annotated[str, AfterValidator(_env_name)]
HttpUrl = Annotated[str, AfterValidator(url_check(("http", "https")))]
Alarm = Annotated[str, AfterValidator(_duration)]


# ---------------------------------------------------------------- sections


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _proxy(text: str) -> str:
    try:
        return str(ip_network(text.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/8 or ::1)") from None


class RateLimitSettings(Section):
    """Requests each client address may make (a token bucket per address): `burst` at once, then
    `per_address_per_second`. Generous by default: hundreds of delegates at a venue share one NAT
    address. Over the limit, the answer is 429 with Retry-After."""

    enabled: bool = True
    per_address_per_second: float = Field(default=50.0, gt=0, le=1_000_000)
    burst: int = Field(default=1000, ge=1, le=10_000_000)


class ServerSettings(Section):
    host: Annotated[str, AfterValidator(_host)] = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: Annotated[str, AfterValidator(url_check(("http", "https"), bare=True))] = "http://127.0.0.1:8080"
    max_body_bytes: int = Field(default=1 << 20, ge=1, le=1 << 30)
    rate_limit: Annotated[RateLimitSettings, BeforeValidator(_none_is_empty)] = RateLimitSettings()
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed: a request from one
    # of them counts against the address it forwarded for. Empty: the header is ignored.
    trusted_proxies: Annotated[tuple[Annotated[str, AfterValidator(_proxy)], ...], BeforeValidator(_as_tuple)] = ()


class LoggingSettings(Section):
    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = "INFO"
    format: Annotated[Literal["json", "text"], BeforeValidator(_lower)] = "json"


class DatabaseSettings(Section):
    url: Annotated[str, AfterValidator(normalise_database_url)] = DEFAULT_DATABASE_URL
    password_env: EnvName = "FLOORBRIDGE_DATABASE_PASSWORD"  # noqa: S105 (a variable name)
    echo: bool = False
    pool_size: int = Field(default=5, ge=1, le=1000)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith(SQLITE)


def _member(text: str) -> str:
    platform, _, ident = text.partition(":")
    if platform not in PLATFORMS or not ident.strip() or any(c.isspace() for c in ident):
        raise ValueError(
            f"{text!r} must be PLATFORM:ID with PLATFORM one of {', '.join(PLATFORMS)}, e.g. telegram:123456789, "
            "discord:80351110224678912 or matrix:@alice:example.org (for chats: matrix:!room:example.org)"
        )
    return text


Member = Annotated[str, AfterValidator(_member)]


class StaffSettings(Section):
    """Who runs one meeting, by platform user id, and the chats where its moderators hear about
    delivery problems."""

    moderators: Annotated[tuple[Member, ...], BeforeValidator(_as_tuple)] = ()
    secretariat: Annotated[tuple[Member, ...], BeforeValidator(_as_tuple)] = ()
    chats: Annotated[tuple[Member, ...], BeforeValidator(_as_tuple)] = ()


def _slug(text: str) -> str:
    if not _SLUG.match(text):
        raise ValueError(f"{text!r} is not a meeting id (a-z, 0-9 and inner '-')")
    return text


def _slug_keys(value: object) -> object:
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or not _SLUG.match(key):
                raise ValueError(f"{key!r} is not a meeting id (a-z, 0-9 and inner '-')")
    return {} if value is None else value


class MeetingSettings(Section):
    seed: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] = DEFAULT_SEED
    poll_seconds: float = Field(default=1.0, gt=0)
    staff: Annotated[dict[str, StaffSettings], BeforeValidator(_slug_keys)] = Field(default_factory=dict)


class FeedSettings(Section):
    refresh_minutes: int = Field(default=60, ge=5, le=1440)
    deadline_alarms: Annotated[tuple[Alarm, ...], BeforeValidator(_as_tuple)] = DEFAULT_ALARMS

    def alarm_offsets(self) -> tuple[timedelta, ...]:
        """How long before a deadline each alarm fires (positive spans)."""
        return tuple(parse_duration(a) for a in self.deadline_alarms)


class BotSettings(Section):
    reminders: Annotated[tuple[Alarm, ...], BeforeValidator(_as_tuple)] = DEFAULT_ALARMS
    reminder_check_seconds: float = Field(default=60.0, gt=0, le=3600)
    delivery_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # The niceness of the chat worker that `serve --role all` starts (0-19, higher yields more): the
    # web process, whose answers people wait for, goes first when both want the CPU; the chat's
    # own pace is set by the platforms' rate limits anyway.
    worker_nice: int = Field(default=10, ge=0, le=19)

    def reminder_offsets(self) -> tuple[timedelta, ...]:
        return tuple(parse_duration(a) for a in self.reminders)


class TelegramSettings(Section):
    enabled: bool = False
    base_url: HttpUrl = "https://api.telegram.org/bot"
    token_env: EnvName = "FLOORBRIDGE_TELEGRAM_TOKEN"  # noqa: S105 (a variable name)
    mode: Annotated[Literal["polling", "webhook"], BeforeValidator(_lower)] = "polling"
    webhook_secret_env: EnvName = "FLOORBRIDGE_TELEGRAM_WEBHOOK_SECRET"  # noqa: S105 (a variable name)
    messages_per_second: int = Field(default=30, ge=1, le=1000)
    group_messages_per_minute: int = Field(default=20, ge=1, le=1000)
    # Sends awaiting Telegram's answer at once. Telegram has no idempotency key: after a crash,
    # each of them may be sent again, so 1 means at most one duplicate per crash.
    in_flight: int = Field(default=1, ge=1, le=100)


class DiscordSettings(Section):
    enabled: bool = False
    api_url: HttpUrl = "https://discord.com/api/v10"
    gateway_url: Annotated[str, AfterValidator(url_check(("wss", "ws")))] = "wss://gateway.discord.gg"
    token_env: EnvName = "FLOORBRIDGE_DISCORD_TOKEN"  # noqa: S105 (a variable name)
    requests_per_second: int = Field(default=50, ge=1, le=1000)


class MatrixSettings(Section):
    enabled: bool = False
    homeserver: HttpUrl = "https://matrix.org"
    user_id: str = Field(default="", validate_default=True)
    token_env: EnvName = "FLOORBRIDGE_MATRIX_TOKEN"  # noqa: S105 (a variable name)
    allowed_servers: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] = ()
    messages_per_second: float = Field(default=5.0, gt=0, le=1000)
    state_file: str = "data/matrix-state.json"

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, value: str, info: ValidationInfo) -> str:
        if value and not _MATRIX_USER.match(value):
            raise ValueError("must be a Matrix user id like @floorbridge:example.org")
        if not value and info.data.get("enabled") is True:
            raise ValueError("is required when matrix is enabled (e.g. @floorbridge:example.org)")
        return value


class ConsoleSettings(Section):
    """The moderator console: how long a sign-in lasts and a chat login link stays valid."""

    session_minutes: int = Field(default=480, ge=5, le=7 * 24 * 60)
    login_link_minutes: int = Field(default=10, ge=1, le=60)
    floor_tick_seconds: float = Field(default=0.5, gt=0, le=10)


def _list_id(text: str) -> str:
    text = text.strip().strip("<>").lower()
    if not text or any(c.isspace() or c in "<>@" for c in text):
        raise ValueError("must be a List-Id identifier as in the header's <...>, e.g. wsis.lists.itu.int")
    return text


def _sender_rule(text: str) -> str:
    text = text.strip().lower()
    _local, at, domain = text.rpartition("@")
    if not at or not domain or "." not in domain or any(c.isspace() or c in "<>" for c in text):
        raise ValueError(f"{text!r} must be an address (secretariat@itu.int) or a whole domain (@itu.int)")
    return text


class MailListSettings(Section):
    """One mailing list a meeting's announcements come from, and how they are relayed."""

    list_id: Annotated[str, AfterValidator(_list_id)]
    # moderated: a moderator approves each announcement before it is relayed; automatic: at once.
    mode: Annotated[Literal["moderated", "automatic"], BeforeValidator(_lower)] = "moderated"


class MeetingMailSettings(Section):
    """What a meeting accepts as its announcements; what fails a rule goes to the quarantine."""

    # When set, a message must carry one of these List-Ids; when empty, any (or none) will do.
    lists: Annotated[tuple[MailListSettings, ...], BeforeValidator(_as_tuple)] = ()
    # Addresses or @domains the From address must match; empty means any sender.
    senders: Annotated[tuple[Annotated[str, AfterValidator(_sender_rule)], ...], BeforeValidator(_as_tuple)] = ()
    # off: not checked; record: checked and shown, a bad signature quarantines; require: a valid
    # signature of the From domain is needed.
    dkim: Annotated[Literal["off", "record", "require"], BeforeValidator(_lower)] = "record"
    # Relay mode for messages that match no listed List-Id (possible only when `lists` is empty).
    mode: Annotated[Literal["moderated", "automatic"], BeforeValidator(_lower)] = "moderated"
    # Deadlines found with at least this confidence are accepted without a moderator; none: never.
    auto_accept_confidence: float | None = Field(default=None, gt=0, le=1)


class MailReceiverSettings(Section):
    enabled: bool = False
    host: Annotated[str, AfterValidator(_host)] = "127.0.0.1"
    port: int = Field(default=8025, ge=1, le=65535)


def _lmtp_default() -> MailReceiverSettings:
    return MailReceiverSettings(port=8024)


class ImapSettings(Section):
    """A mailbox polled for one meeting's announcements (IDLE where the server offers it)."""

    meeting: Annotated[str, AfterValidator(_slug)]
    host: Annotated[str, AfterValidator(_host)]
    port: int = Field(default=993, ge=1, le=65535)
    tls: bool = True
    username: str = Field(min_length=1)
    password_env: EnvName
    mailbox: str = "INBOX"
    poll_seconds: float = Field(default=60.0, gt=0, le=1740)


class MailSettings(Section):
    """Receiving circular letters: SMTP/LMTP listeners, IMAP mailboxes, the signed HTTP endpoint.

    A message reaches the meeting its recipient's local part names (wsis-2025@lists.example.org,
    also wsis-2025+anything@...); the mailbox of an IMAP entry and the HTTP path name it directly.
    """

    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    smtp: MailReceiverSettings = MailReceiverSettings()
    lmtp: MailReceiverSettings = Field(default_factory=_lmtp_default)
    http_secret_env: EnvName = "FLOORBRIDGE_MAIL_HMAC_SECRET"  # noqa: S105 (a variable name)
    imap: Annotated[tuple[ImapSettings, ...], BeforeValidator(_as_tuple)] = ()
    meetings: Annotated[dict[str, MeetingMailSettings], BeforeValidator(_slug_keys)] = Field(default_factory=dict)

    def rules(self, meeting_id: str) -> MeetingMailSettings:
        return self.meetings.get(meeting_id) or MeetingMailSettings()


class Settings(Section):
    server: ServerSettings = ServerSettings()
    logging: LoggingSettings = LoggingSettings()
    database: DatabaseSettings = DatabaseSettings()
    meetings: MeetingSettings = MeetingSettings()
    feeds: FeedSettings = FeedSettings()
    bots: BotSettings = BotSettings()
    telegram: TelegramSettings = TelegramSettings()
    discord: DiscordSettings = DiscordSettings()
    matrix: MatrixSettings = MatrixSettings()
    console: ConsoleSettings = ConsoleSettings()
    mail: MailSettings = MailSettings()

    # Resolved at load from the environment: "database", "telegram", "discord", "matrix".
    _secrets: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return _none_is_empty(value)

    def secret(self, name: str) -> SecretStr | None:
        """The secret for "database" (its password), "telegram", "discord" or "matrix" (their tokens),
        "telegram-webhook" (the secret token Telegram sends with each webhook call), "mail-hmac" (the
        key of the signed mail endpoint), "imap:N" (the password of the N-th mail.imap entry, from 0);
        None when its environment variable was not set."""
        if name not in SECRET_NAMES and not name.startswith("imap:"):
            raise KeyError(name)
        return self._secrets.get(name)

    def secret_values(self) -> list[str]:
        """Every resolved secret in clear, for the log filter that redacts them."""
        return [s.get_secret_value() for s in self._secrets.values()]

    def database_url(self) -> str:
        """The URL to connect with: database.url with the password from the environment merged in."""
        url: URL = make_url(self.database.url)
        password = self._secrets.get("database")
        if password is not None and not self.database.is_sqlite:
            url = url.set(password=password.get_secret_value())
        return url.render_as_string(hide_password=False)

    def with_secrets(self, secrets: dict[str, SecretStr]) -> Settings:
        """A copy holding `secrets` (keys as for `secret`); what load_settings returns."""
        unknown = {k for k in secrets if not k.startswith("imap:")} - set(SECRET_NAMES)
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        copy = self.model_copy()
        copy._secrets = dict(secrets)
        return copy
