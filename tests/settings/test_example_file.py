"""config/floorbridge.example.yaml is what `make run` uses and what operators copy: it must load,
show the defaults, and document every key."""

from __future__ import annotations

import subprocess
import sys

import yaml
from pydantic import BaseModel

from floorbridge.adapters.settings import ENV_OVERRIDES, Settings, default_settings, describe, load_settings

from .conftest import EXAMPLE, ROOT


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += _keys(annotation, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name}")
    return out


def test_the_example_loads_and_equals_the_defaults() -> None:
    assert load_settings(EXAMPLE, {}) == default_settings({}) == Settings()


def test_the_example_shows_every_key_with_a_comment_above_it() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    node = yaml.compose("\n".join(lines))
    assert node is not None
    found: dict[str, int] = {}

    def walk(n: yaml.Node, prefix: str) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                found[f"{prefix}{k.value}"] = k.start_mark.line
                walk(v, f"{prefix}{k.value}.")

    walk(node, "")
    expected = _keys(Settings)
    subsections = {k.rsplit(".", 1)[0] for k in expected if k.count(".") > 1}  # mail.smtp, mail.lmtp
    assert sorted(k for k in found if "." in k and k not in subsections) == sorted(expected)
    for key in expected:
        above = lines[found[key] - 1].strip()
        assert above.startswith("#"), f"{key} has no comment above it"


def test_the_example_header_documents_the_environment_overrides() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for name in ENV_OVERRIDES:
        assert name in text


def test_check_config_prints_a_summary_of_the_example() -> None:
    summary = describe(load_settings(EXAMPLE, {}))
    assert "127.0.0.1:8080" in summary and "sqlite+aiosqlite:///data/floorbridge.db" in summary
    out = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "check-config", str(EXAMPLE)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout and "deadline alarms P7D, P1D, PT2H" in out.stdout
