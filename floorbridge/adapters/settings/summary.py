"""A short human summary of the settings, for `run.py check-config`. It never shows a secret."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from .model import Settings


def _secret_state(settings: Settings, name: str, env_name: str) -> str:
    return "set" if settings.secret(name) is not None else f"not set (${env_name} is unset or empty)"


def _rate(s: Settings) -> str:
    limit = s.server.rate_limit
    if not limit.enabled:
        return "no limit on requests per address"
    return f"per address {limit.burst} requests at once, then {limit.per_address_per_second:g} a second"


def describe(settings: Settings) -> str:
    s = settings
    url = make_url(s.database_url())
    shown_url = url.render_as_string(hide_password=True)
    if s.database.is_sqlite:
        where = f"SQLite file {url.database or ':memory:'} (relative paths start at the current directory)"
        db_extra = ""
    else:
        where = "PostgreSQL"
        password = _secret_state(s, "database", s.database.password_env)
        db_extra = f", pool of {s.database.pool_size}, password: {password}"
    lines = [
        f"server:    listening on {s.server.host}:{s.server.port}, public URL {s.server.public_url}, "
        f"request bodies up to {s.server.max_body_bytes} bytes",
        f"           {_rate(s)}; X-Forwarded-For believed from "
        f"{', '.join(s.server.trusted_proxies) or 'no proxy'}",
        f"logging:   {s.logging.level}, {s.logging.format}",
        f"database:  {shown_url} — {where}{db_extra}{', echoing SQL' if s.database.echo else ''}",
        f"meetings:  seed {', '.join(s.meetings.seed) or 'nothing'}; "
        f"checking for new versions every {s.meetings.poll_seconds:g} s",
        f"feeds:     clients refresh every {s.feeds.refresh_minutes} min; "
        f"deadline alarms {', '.join(s.feeds.deadline_alarms) or 'none'} before",
        f"bots:      reminders {', '.join(s.bots.reminders) or 'none'} before each deadline; "
        f"staff configured for {len(s.meetings.staff)} meeting(s)",
    ]
    platforms = {
        "telegram": (s.telegram.enabled, s.telegram.token_env, f"API {s.telegram.base_url}, {s.telegram.mode}"),
        "discord": (
            s.discord.enabled,
            s.discord.token_env,
            f"API {s.discord.api_url}, gateway {s.discord.gateway_url}",
        ),
        "matrix": (
            s.matrix.enabled,
            s.matrix.token_env,
            f"homeserver {s.matrix.homeserver} as {s.matrix.user_id or '(no user_id)'}",
        ),
    }
    for name, (enabled, env_name, where_to) in platforms.items():
        state = f"enabled, {where_to}, token: {_secret_state(s, name, env_name)}" if enabled else "disabled"
        lines.append(f"{name + ':':<10} {state}")
    m = s.mail
    receivers = [f"{label} on {r.host}:{r.port}" for label, r in (("SMTP", m.smtp), ("LMTP", m.lmtp)) if r.enabled]
    receivers += [f"IMAP {box.username}@{box.host}:{box.port}/{box.mailbox} for {box.meeting}" for box in m.imap]
    signed = _secret_state(s, "mail-hmac", m.http_secret_env)
    lines.append(f"mail:      {', '.join(receivers) or 'no SMTP, LMTP or IMAP receiver'}; signed HTTP endpoint key: "
                 f"{signed}; messages up to {m.max_bytes} bytes; rules for {len(m.meetings)} meeting(s)")
    return "\n".join(lines)
