"""Reading floorbridge.yaml: defaults, every problem reported at its line, the YAML traps."""

from __future__ import annotations

from pathlib import Path

import pytest

from floorbridge.adapters.settings import Settings, default_settings, load_settings
from floorbridge.core.errors import InvalidInput

from .conftest import Load, Refuse


def test_an_empty_file_means_every_default(load: Load) -> None:
    settings = load("")
    assert settings == Settings()
    assert settings.server.port == 8080
    assert settings.server.public_url == "http://127.0.0.1:8080"
    assert settings.database.url == "sqlite+aiosqlite:///data/floorbridge.db"
    assert settings.feeds.deadline_alarms == ("P7D", "P1D", "PT2H")
    assert settings.meetings.seed == ("config/meetings/wsis-2025.yaml", "config/meetings/fg-dlt-1.yaml")


def test_a_file_of_comments_and_an_empty_section_mean_defaults(load: Load) -> None:
    assert load("# nothing yet\n") == Settings()
    assert load("server:\ntelegram:\n") == Settings()


def test_values_from_the_file_are_used(load: Load) -> None:
    settings = load(
        "server:\n  host: 0.0.0.0\n  port: 9090\n  public_url: https://meet.example.org\n"
        "logging:\n  level: debug\n  format: text\n"
        "meetings:\n  seed: []\n  poll_seconds: 2\n"
        "feeds:\n  refresh_minutes: 15\n  deadline_alarms: [P1W, PT30M]\n"
    )
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 9090)
    assert settings.server.public_url == "https://meet.example.org"
    assert (settings.logging.level, settings.logging.format) == ("DEBUG", "text")
    assert settings.meetings.seed == ()
    assert settings.meetings.poll_seconds == 2.0
    assert settings.feeds.refresh_minutes == 15
    assert [d.total_seconds() for d in settings.feeds.alarm_offsets()] == [7 * 86400, 1800]


def test_an_unknown_key_is_reported_at_its_line_with_a_suggestion(refuse: Refuse) -> None:
    problems = refuse("server:\n  port: 8080\n\ndatabse:\n  url: sqlite:///x.db\n")
    assert problems == ["floorbridge.yaml:4: databse: unknown key 'databse' (did you mean 'database'?)"]


def test_a_nested_unknown_key_is_reported_at_its_line(refuse: Refuse) -> None:
    problems = refuse("logging:\n  level: INFO\ndatabase:\n  echo: false\n  urll: sqlite:///x.db\n")
    assert problems == ["floorbridge.yaml:5: database.urll: unknown key 'urll' (did you mean 'url'?)"]


def test_an_unknown_key_without_a_close_match_lists_the_allowed_ones(refuse: Refuse) -> None:
    [problem] = refuse("feeds:\n  colour: blue\n")
    assert problem.startswith("floorbridge.yaml:2: feeds.colour: unknown key 'colour'")
    assert "refresh_minutes" in problem and "deadline_alarms" in problem


def test_a_value_of_the_wrong_type_is_reported_at_its_line(refuse: Refuse) -> None:
    problems = refuse("server:\n  host: 127.0.0.1\n  port: eighty\n")
    assert problems == ["floorbridge.yaml:3: server.port: must be a whole number (got 'eighty')"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server:\n  port: 0\n", "floorbridge.yaml:2: server.port: must be greater than or equal to 1"),
        ("server:\n  port: 70000\n", "floorbridge.yaml:2: server.port: must be less than or equal to 65535"),
        ("server:\n  port: '8080'\n", "floorbridge.yaml:2: server.port: must be a whole number (got '8080')"),
        ("feeds:\n  refresh_minutes: 1\n", "floorbridge.yaml:2: feeds.refresh_minutes: must be greater than or equal"),
        ("meetings:\n  poll_seconds: 0\n", "floorbridge.yaml:2: meetings.poll_seconds: must be greater than 0"),
        ("logging:\n  level: LOUD\n", "floorbridge.yaml:2: logging.level: must be 'DEBUG', 'INFO', 'WARNING' or"),
        ("server: 8080\n", "floorbridge.yaml:1: server: must be a mapping of keys"),
        ("meetings:\n  seed: config/a.yaml\n", "floorbridge.yaml:2: meetings.seed: must be a list"),
        ("server:\n  port:\n", "floorbridge.yaml:2: server.port: must be a whole number (the value is empty)"),
    ],
)
def test_ill_typed_and_out_of_range_values(refuse: Refuse, text: str, expected: str) -> None:
    [problem] = refuse(text)
    assert problem.startswith(expected)


def test_yes_and_no_are_not_booleans(refuse: Refuse) -> None:
    # YAML 1.1 would read `yes` as true; here it is refused rather than guessed.
    assert refuse("database:\n  echo: yes\n") == [
        "floorbridge.yaml:2: database.echo: must be true or false (got 'yes')"
    ]


def test_public_url_must_be_http_without_a_trailing_slash(refuse: Refuse) -> None:
    assert refuse("server:\n  public_url: https://meet.example.org/\n") == [
        "floorbridge.yaml:2: server.public_url: must not end with '/' (write https://meet.example.org)"
    ]
    [problem] = refuse("server:\n  public_url: ftp://meet.example.org\n")
    assert problem.startswith("floorbridge.yaml:2: server.public_url: must be a http:// or https:// URL")


def test_a_bad_list_item_is_named_by_its_index_and_line(refuse: Refuse) -> None:
    [problem] = refuse("feeds:\n  deadline_alarms:\n    - P1D\n    - soon\n")
    assert problem.startswith("floorbridge.yaml:4: feeds.deadline_alarms[1]: ")
    assert "'soon'" in problem


def test_a_duplicate_key_is_reported_at_the_second_occurrence(refuse: Refuse) -> None:
    problems = refuse("server:\n  port: 8080\n  host: 0.0.0.0\n  port: 9090\n")
    assert problems == ["floorbridge.yaml:4: server.port: key 'port' appears twice (first on line 2)"]


def test_a_duplicate_section_is_reported(refuse: Refuse) -> None:
    problems = refuse("logging:\n  level: INFO\nserver:\n  port: 1\nlogging:\n  format: text\n")
    assert problems == ["floorbridge.yaml:5: logging: key 'logging' appears twice (first on line 1)"]


def test_every_problem_is_reported_at_once_in_file_order(refuse: Refuse) -> None:
    problems = refuse(
        "server:\n"              # 1
        "  port: eighty\n"       # 2
        "  hots: 0.0.0.0\n"      # 3
        "logging:\n"             # 4
        "  level: INFO\n"        # 5
        "  level: DEBUG\n"       # 6
        "database:\n"            # 7
        "  url: mysql://db/fb\n"  # 8
        "feeds:\n"               # 9
        "  deadline_alarms: [P7D, 2 hours]\n"  # 10
        "telegrma:\n"            # 11
        "  enabled: true\n"      # 12
    )
    assert [p.split(": ", 1)[0] for p in problems] == [
        "floorbridge.yaml:2",
        "floorbridge.yaml:3",
        "floorbridge.yaml:6",
        "floorbridge.yaml:8",
        "floorbridge.yaml:10",
        "floorbridge.yaml:11",
    ]
    assert "server.hots: unknown key 'hots' (did you mean 'host'?)" in problems[1]
    assert "driver 'mysql' is not supported" in problems[3]
    assert "'2 hours' is not an ISO 8601 duration" in problems[4]
    assert "did you mean 'telegram'?" in problems[5]


def test_the_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("server:\n  prot: 1\n")
    with pytest.raises(InvalidInput) as caught:
        load_settings(path, {})
    assert caught.value.source == str(path)
    assert "site.yaml:2: server.prot" in str(caught.value)


def test_a_yaml_syntax_error_is_reported_with_its_line(refuse: Refuse) -> None:
    [problem] = refuse("server:\n  port: 8080\n  host: [127.0.0.1\nlogging:\n  level: INFO\n")
    assert problem.startswith("floorbridge.yaml:4: not valid YAML")


def test_a_bad_indentation_is_reported_with_its_line(refuse: Refuse) -> None:
    [problem] = refuse("server:\n  port: 8080\n    host: x\n")
    assert problem.startswith("floorbridge.yaml:3: not valid YAML")


@pytest.mark.parametrize("text", ["- server\n- logging\n", "just some text\n", "42\n"])
def test_the_top_level_must_be_a_mapping(refuse: Refuse, text: str) -> None:
    [problem] = refuse(text)
    assert problem.startswith("floorbridge.yaml:1: the top level must be a mapping of sections")


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_settings(tmp_path / "nowhere.yaml", {})
    assert [str(p) for p in caught.value.problems] == ["nowhere.yaml: no such file"]


def test_a_file_that_is_not_utf8_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("server:\n  host: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidInput) as caught:
        load_settings(path, {})
    assert [str(p) for p in caught.value.problems] == ["latin1.yaml:2: is not UTF-8 text"]


@pytest.mark.parametrize("alarm", ["P1M", "P1Y", "7D", "P", "PT", "P1DT", "PT2", "P0D", "-P1D", "P1.5D"])
def test_deadline_alarms_must_be_ical_durations(refuse: Refuse, alarm: str) -> None:
    [problem] = refuse(f"feeds:\n  deadline_alarms:\n    - P7D\n    - '{alarm}'\n")
    assert problem.startswith("floorbridge.yaml:4: feeds.deadline_alarms[1]:")
    assert repr(alarm) in problem


@pytest.mark.parametrize(("alarm", "seconds"), [("P2W", 14 * 86400), ("P1DT12H", 129600), ("PT90M", 5400),
                                                ("PT45S", 45), ("P1DT2H3M4S", 93784)])
def test_deadline_alarms_accept_weeks_days_hours_minutes_seconds(load: Load, alarm: str, seconds: int) -> None:
    settings = load(f"feeds:\n  deadline_alarms: [{alarm}]\n")
    assert settings.feeds.alarm_offsets()[0].total_seconds() == seconds


def test_default_settings_without_a_file(tmp_path: Path) -> None:
    assert default_settings({}) == Settings()
    assert load_settings(Path("/dev/null"), {}) == default_settings({})
    assert default_settings({"FLOORBRIDGE_PORT": "9999"}).server.port == 9999


def test_settings_are_frozen(load: Load) -> None:
    settings = load("")
    with pytest.raises(ValueError, match="frozen"):
        settings.server.port = 1
