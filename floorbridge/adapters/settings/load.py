"""load_settings: floorbridge.yaml + environment -> Settings, or InvalidInput listing every problem."""

from __future__ import annotations

import difflib
import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from floorbridge.core.errors import InvalidInput, Problem

from .model import ENV_NAME, PLATFORMS, Settings
from .yaml_tree import KeyPath, Tree, YamlSyntaxError, dotted, read_tree

# Environment variables that override one key each (for containers), in the order they are applied.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "FLOORBRIDGE_HOST": ("server", "host"),
    "FLOORBRIDGE_PORT": ("server", "port"),
    "FLOORBRIDGE_PUBLIC_URL": ("server", "public_url"),
    "FLOORBRIDGE_DATABASE_URL": ("database", "url"),
}

_AFTER_EVERY_LINE = 1 << 30
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")

_TYPE_MESSAGES = {
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "tuple_type": "must be a list (one '- ' item per line, or [a, b])",
    "list_type": "must be a list (one '- ' item per line, or [a, b])",
    "model_type": "must be a mapping of keys (each on its own indented line)",
    "dict_type": "must be a mapping of keys (each on its own indented line)",
    "model_attributes_type": "must be a mapping of keys (each on its own indented line)",
    "invalid_key": "keys must be text",
}


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[tuple[int, int, Problem]] = []

    def at_line(self, line: int | None, what: str) -> None:
        where = f"{self.file}:{line}" if line is not None else self.file
        self.add(line or 0, Problem(where, _mask(what)))

    def add(self, order: int, problem: Problem) -> None:
        self.items.append((order, len(self.items), problem))

    def problems(self) -> list[Problem]:
        return [p for *_, p in sorted(self.items, key=lambda item: (item[0], item[1]))]


def _mask(text: str) -> str:
    """Last line of defence: no URL password reaches a message."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def load_settings(path: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (an empty file means every default), apply the environment, resolve secrets.

    Raises InvalidInput listing every problem, each at the file:line of its key.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    log = _Problems(path.name)
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput([Problem(path.name, "no such file")], source=source) from None
    except OSError as e:
        raise InvalidInput([Problem(path.name, f"cannot be read: {e.strerror}")], source=source) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InvalidInput([Problem(f"{path.name}:{line}", "is not UTF-8 text")], source=source) from None
    try:
        tree = read_tree(text)
    except YamlSyntaxError as e:
        log.at_line(e.line, e.what)
        raise InvalidInput(log.problems(), source=source) from None
    return _build(tree, log, environ, source)


def default_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Every default, with the environment's overrides and secrets applied (no file)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    return _build(Tree({}, {(): 1}), _Problems("defaults"), environ, "environment")


def _build(tree: Tree, log: _Problems, env: Mapping[str, str], source: str) -> Settings:
    for line, what in tree.problems:
        log.at_line(line, what)
    data = tree.data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"the value {data!r}" if isinstance(data, str | int) else "that"
        log.at_line(
            tree.line(()),
            f"the top level must be a mapping of sections ({', '.join(Settings.model_fields)}), not {kind}",
        )
        raise InvalidInput(log.problems(), source=source)

    data, from_env, url_password = _apply_environment(data, env)
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            _report(err, tree, from_env, log)
    _check_tokens(data, tree, env, log)
    if log.items or settings is None:
        raise InvalidInput(log.problems(), source=source)
    return settings.with_secrets(_secrets(settings, env, url_password))


def _apply_environment(
    data: dict[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[KeyPath, str], SecretStr | None]:
    """`data` with the override variables applied; which paths they set; a password given in
    FLOORBRIDGE_DATABASE_URL (taken out of the URL so it never sits in a settings field)."""
    out = dict(data)
    from_env: dict[KeyPath, str] = {}
    url_password: SecretStr | None = None
    for name, (section, key) in ENV_OVERRIDES.items():
        value: Any = env.get(name, "")
        if not value:
            continue
        if out.get(section) is None:
            out[section] = {}
        if not isinstance(out[section], dict):
            continue  # the section itself is ill-typed; that is reported on its own
        if key == "port" and value.strip().isdigit():
            value = int(value)
        if key == "url":
            value, url_password = _split_password(value)
        out[section] = {**out[section], key: value}
        from_env[(section, key)] = name
    return out, from_env, url_password


def _split_password(url: str) -> tuple[str, SecretStr | None]:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url, None  # the validator says why, without repeating the URL
    if parsed.password is None:
        return url, None
    # URL.set(password=None) keeps the password (None means "unchanged"); URL is a NamedTuple.
    bare = parsed._replace(password=None)
    return bare.render_as_string(hide_password=False), SecretStr(str(parsed.password))


def _report(err: ErrorDetails, tree: Tree, from_env: Mapping[KeyPath, str], log: _Problems) -> None:
    path: KeyPath = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden" and path in tree.secret_keys:
        return  # already reported as a secret in the file
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = list(_model_at(Settings, path[:-1]).model_fields)
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed here: {', '.join(allowed)})"
        what = f"{dotted(path)}: unknown key {key!r}{hint}"
    elif kind == "missing":
        what = f"{dotted(path[:-1]) or 'top level'}: missing required key {path[-1]!r}"
        path = path[:-1]
    elif kind == "value_error":
        what = f"{dotted(path)}: {err['msg'].removeprefix('Value error, ')}"
    else:
        message = _TYPE_MESSAGES.get(kind) or err["msg"].replace("Input should be", "must be")
        what = f"{dotted(path)}: {message}{_got(path, err.get('input'))}"
    for prefix, name in from_env.items():
        if path[: len(prefix)] == prefix:
            log.add(_AFTER_EVERY_LINE, Problem(f"environment variable {name}", _mask(what)))
            return
    log.at_line(tree.line(path), what)


def _got(path: KeyPath, value: object) -> str:
    if path and str(path[-1]).endswith("_env"):
        return ""  # might be a secret pasted in the wrong place
    if value is None:
        return " (the value is empty)"
    if isinstance(value, str | int | float | bool):
        return f" (got {value!r})"
    return ""


def _model_at(model: type[BaseModel], path: KeyPath) -> type[BaseModel]:
    """The model class that a pydantic error location ends in (for 'did you mean')."""
    for part in path:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    return model


def _token_env(section: Mapping[str, Any], platform: str) -> str:
    default = Settings.model_fields[platform].default
    name = section.get("token_env", default.token_env)
    return name if isinstance(name, str) else ""


def _check_tokens(data: Mapping[str, Any], tree: Tree, env: Mapping[str, str], log: _Problems) -> None:
    """An enabled platform needs its token; checked on the raw data so that it is reported along
    with every other problem, even when the rest of the file does not validate."""
    for platform in PLATFORMS:
        section = data.get(platform)
        if not isinstance(section, dict) or section.get("enabled") is not True:
            continue
        name = _token_env(section, platform)
        if ENV_NAME.match(name) and not env.get(name):
            log.at_line(
                tree.line((platform, "enabled")),
                f"{platform}.enabled: {platform} is enabled but the environment variable {name} "
                "(named by token_env) is not set or is empty; set it to the bot's access token",
            )
    mail = data.get("mail")
    mailboxes = mail.get("imap") if isinstance(mail, dict) else None
    for n, mailbox in enumerate(mailboxes if isinstance(mailboxes, list) else ()):
        wanted = mailbox.get("password_env") if isinstance(mailbox, dict) else None
        if isinstance(wanted, str) and ENV_NAME.match(wanted) and not env.get(wanted):
            log.at_line(
                tree.line(("mail", "imap", n, "password_env")),
                f"mail.imap.{n}.password_env: the environment variable {wanted} is not set or is empty; "
                "set it to the mailbox's password",
            )
    telegram = data.get("telegram")
    webhook = isinstance(telegram, dict) and str(telegram.get("mode", "")).lower() == "webhook"
    if isinstance(telegram, dict) and telegram.get("enabled") is True and webhook:
        secret_name = telegram.get("webhook_secret_env", "FLOORBRIDGE_TELEGRAM_WEBHOOK_SECRET")
        if isinstance(secret_name, str) and ENV_NAME.match(secret_name) and not env.get(secret_name):
            log.at_line(
                tree.line(("telegram", "mode")),
                f"telegram.mode: webhook mode needs a secret token in the environment variable {secret_name} "
                "(named by webhook_secret_env), so that only Telegram can post updates; set it to a long "
                "random string (1-256 characters A-Z, a-z, 0-9, _ and -)",
            )


def _secrets(settings: Settings, env: Mapping[str, str], url_password: SecretStr | None) -> dict[str, SecretStr]:
    found: dict[str, SecretStr] = {}
    password = url_password or (SecretStr(env[settings.database.password_env])
                                if env.get(settings.database.password_env) else None)
    if password is not None:
        found["database"] = password
    for platform in PLATFORMS:
        name = typing.cast(str, getattr(settings, platform).token_env)
        if env.get(name):
            found[platform] = SecretStr(env[name])
    if env.get(settings.telegram.webhook_secret_env):
        found["telegram-webhook"] = SecretStr(env[settings.telegram.webhook_secret_env])
    if env.get(settings.mail.http_secret_env):
        found["mail-hmac"] = SecretStr(env[settings.mail.http_secret_env])
    for n, mailbox in enumerate(settings.mail.imap):
        if env.get(mailbox.password_env):
            found[f"imap:{n}"] = SecretStr(env[mailbox.password_env])
    return found
