"""Secrets come only from the environment and never show up in repr(), describe() or errors;
environment variables override the file for containers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from floorbridge.adapters.settings import describe, load_settings

from .conftest import Load, Refuse

POSTGRES = "database:\n  url: postgresql://floorbridge@db.example.org:5432/floorbridge\n"


def test_a_password_in_database_url_is_refused_without_repeating_it(refuse: Refuse) -> None:
    problems = refuse("logging:\n  level: INFO\ndatabase:\n  url: postgresql://fb:Hunter2secret@db/fb\n")
    assert len(problems) == 1
    assert problems[0].startswith("floorbridge.yaml:4: database.url: contains a password")
    assert "FLOORBRIDGE_DATABASE_PASSWORD" in problems[0]
    assert "Hunter2secret" not in problems[0]


def test_a_password_in_an_unsupported_url_is_not_repeated_either(refuse: Refuse) -> None:
    [problem] = refuse("database:\n  url: mysql://fb:Hunter2secret@db/fb\n")
    assert "not supported" in problem and "Hunter2secret" not in problem


@pytest.mark.parametrize(
    ("text", "line", "key", "holder"),
    [
        ("telegram:\n  enabled: false\n  token: 123456:ABCdef\n", 3, "telegram.token", "token_env"),
        ("database:\n  password: Hunter2secret\n", 2, "database.password", "database.password_env"),
        ("discord:\n  api_key: Hunter2secret\n", 2, "discord.api_key", "token_env"),
        ("matrix:\n  access_token: Hunter2secret\n", 2, "matrix.access_token", "token_env"),
        ("client_secret: Hunter2secret\n", 1, "client_secret", "token_env"),
    ],
)
def test_a_secret_written_in_the_file_is_refused(refuse: Refuse, text: str, line: int, key: str, holder: str) -> None:
    problems = refuse(text)
    assert problems == [
        f"floorbridge.yaml:{line}: {key}: looks like a secret written into the file; remove it and put the "
        f"secret in the environment variable named by {holder}"
    ]
    assert not any("Hunter2secret" in p or "ABCdef" in p for p in problems)


def test_the_database_password_comes_from_the_named_variable(load: Load) -> None:
    settings = load(POSTGRES, {"FLOORBRIDGE_DATABASE_PASSWORD": "p@ss/word:1"})
    url = make_url(settings.database_url())
    assert url.drivername == "postgresql+asyncpg"
    assert url.password == "p@ss/word:1"  # escaped in the URL, restored when parsed
    assert (url.username, url.host, url.port, url.database) == ("floorbridge", "db.example.org", 5432, "floorbridge")


def test_password_env_names_another_variable(load: Load) -> None:
    settings = load(POSTGRES + "  password_env: PGPASSWORD\n", {"PGPASSWORD": "s3cr3t-value"})
    assert make_url(settings.database_url()).password == "s3cr3t-value"


def test_without_a_password_variable_the_url_has_no_password(load: Load) -> None:
    settings = load(POSTGRES)
    assert settings.database_url() == "postgresql+asyncpg://floorbridge@db.example.org:5432/floorbridge"


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://fb@db/fb", "postgresql+asyncpg://fb@db/fb"),
        ("postgres://fb@db/fb", "postgresql+asyncpg://fb@db/fb"),
        ("postgresql+asyncpg://fb@db/fb", "postgresql+asyncpg://fb@db/fb"),
        ("sqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
        ("sqlite:////var/lib/fb/x.db", "sqlite+aiosqlite:////var/lib/fb/x.db"),
    ],
)
def test_database_urls_get_their_async_driver(load: Load, given: str, used: str) -> None:
    settings = load(f"database:\n  url: {given}\n")
    assert settings.database.url == used
    assert settings.database_url() == used


@pytest.mark.parametrize(
    "url", ["mysql://db/fb", "postgresql+psycopg2://fb@db/fb", "sqlite+pysqlite:///x.db", "not a url"]
)
def test_other_databases_are_refused(refuse: Refuse, url: str) -> None:
    [problem] = refuse(f"database:\n  url: {url}\n")
    assert problem.startswith("floorbridge.yaml:2: database.url: ")
    assert "sqlite+aiosqlite:///" in problem and "postgresql+asyncpg://" in problem


def test_environment_variables_override_the_file(load: Load) -> None:
    settings = load(
        "server:\n  host: 127.0.0.1\n  port: 8080\n  public_url: http://127.0.0.1:8080\n"
        "database:\n  url: sqlite:///data/file.db\n",
        {
            "FLOORBRIDGE_HOST": "0.0.0.0",
            "FLOORBRIDGE_PORT": "9000",
            "FLOORBRIDGE_PUBLIC_URL": "https://meet.example.org",
            "FLOORBRIDGE_DATABASE_URL": "postgresql://fb@db/fb",
        },
    )
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 9000)
    assert settings.server.public_url == "https://meet.example.org"
    assert settings.database_url() == "postgresql+asyncpg://fb@db/fb"


def test_empty_environment_variables_do_not_override(load: Load) -> None:
    settings = load("server:\n  port: 8081\n", {"FLOORBRIDGE_PORT": "", "FLOORBRIDGE_DATABASE_URL": ""})
    assert settings.server.port == 8081
    assert settings.database.url == "sqlite+aiosqlite:///data/floorbridge.db"


def test_a_bad_override_names_the_variable(refuse: Refuse) -> None:
    env = {"FLOORBRIDGE_PORT": "eighty", "FLOORBRIDGE_PUBLIC_URL": "meet.example.org"}
    problems = refuse("server:\n  prot: 1\n", env)
    assert problems[0].startswith("floorbridge.yaml:2: server.prot: unknown key")
    assert "environment variable FLOORBRIDGE_PORT: server.port: must be a whole number (got 'eighty')" in problems
    assert any(p.startswith("environment variable FLOORBRIDGE_PUBLIC_URL: server.public_url: must be a http://")
               for p in problems)


def test_the_database_url_variable_may_carry_the_password(load: Load) -> None:
    env = {"FLOORBRIDGE_DATABASE_URL": "postgresql://fb:Hunter2secret@db/fb",
           "FLOORBRIDGE_DATABASE_PASSWORD": "ignored-when-the-url-has-one"}
    settings = load("", env)
    assert make_url(settings.database_url()).password == "Hunter2secret"
    assert "Hunter2secret" not in repr(settings)
    assert "Hunter2secret" not in settings.model_dump_json()
    assert "Hunter2secret" not in describe(settings)


def test_an_enabled_platform_without_its_token_names_the_variable(refuse: Refuse) -> None:
    problems = refuse("telegram:\n  enabled: true\n", {"FLOORBRIDGE_TELEGRAM_TOKEN": ""})
    assert problems == [
        "floorbridge.yaml:2: telegram.enabled: telegram is enabled but the environment variable "
        "FLOORBRIDGE_TELEGRAM_TOKEN (named by token_env) is not set or is empty; set it to the bot's access token"
    ]


def test_the_token_variable_can_be_renamed(refuse: Refuse, load: Load) -> None:
    [problem] = refuse("discord:\n  token_env: MY_DISCORD\n  enabled: true\n", {"FLOORBRIDGE_DISCORD_TOKEN": "x"})
    assert problem.startswith("floorbridge.yaml:3: discord.enabled:") and "MY_DISCORD" in problem
    settings = load("discord:\n  token_env: MY_DISCORD\n  enabled: true\n", {"MY_DISCORD": "Hunter2secret"})
    token = settings.secret("discord")
    assert token is not None and token.get_secret_value() == "Hunter2secret"


def test_a_missing_token_is_reported_along_with_other_problems(refuse: Refuse) -> None:
    problems = refuse("server:\n  port: eighty\nmatrix:\n  enabled: true\n  user_id: '@bot:example.org'\n")
    assert problems[0].startswith("floorbridge.yaml:2: server.port")
    assert problems[1].startswith("floorbridge.yaml:4: matrix.enabled:") and "FLOORBRIDGE_MATRIX_TOKEN" in problems[1]


def test_a_token_pasted_as_token_env_is_refused_without_repeating_it(refuse: Refuse) -> None:
    problems = refuse("telegram:\n  enabled: true\n  token_env: '123456:ABC-Hunter2secret'\n")
    assert problems == [
        "floorbridge.yaml:3: telegram.token_env: must be the NAME of an environment variable (letters, digits "
        "and '_', not starting with a digit), not the secret itself"
    ]


def test_enabled_matrix_needs_a_user_id(refuse: Refuse) -> None:
    [problem] = refuse("matrix:\n  enabled: true\n", {"FLOORBRIDGE_MATRIX_TOKEN": "tok"})
    assert problem.startswith("floorbridge.yaml:1: matrix.user_id: is required when matrix is enabled")


def test_secrets_never_appear_in_repr_str_dump_or_describe(load: Load) -> None:
    env = {
        "FLOORBRIDGE_DATABASE_PASSWORD": "db-Hunter2secret",
        "FLOORBRIDGE_TELEGRAM_TOKEN": "123456:tg-Hunter2secret",
        "FLOORBRIDGE_DISCORD_TOKEN": "dc-Hunter2secret",
        "FLOORBRIDGE_MATRIX_TOKEN": "mx-Hunter2secret",
    }
    settings = load(
        POSTGRES + "telegram:\n  enabled: true\ndiscord:\n  enabled: true\n"
        "matrix:\n  enabled: true\n  user_id: '@floorbridge:example.org'\n",
        env,
    )
    summary = describe(settings)
    for shown in (repr(settings), str(settings), settings.model_dump_json(), summary):
        assert "Hunter2secret" not in shown
    assert "postgresql+asyncpg://floorbridge:***@db.example.org:5432/floorbridge" in summary
    assert "telegram:  enabled" in summary and "matrix:    enabled" in summary
    # ...yet they are all there for the code that needs them, and for the log redaction filter
    assert sorted(settings.secret_values()) == sorted(env.values())
    telegram = settings.secret("telegram")
    assert telegram is not None and telegram.get_secret_value() == "123456:tg-Hunter2secret"


def test_a_token_for_a_disabled_platform_is_not_required(load: Load) -> None:
    settings = load("telegram:\n  enabled: false\n")
    assert settings.secret("telegram") is None
    assert settings.secret_values() == []


def test_load_settings_reads_os_environ_by_default(
    config_file: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOORBRIDGE_PORT", "8765")
    assert load_settings(config_file("server:\n  port: 8080\n")).server.port == 8765
