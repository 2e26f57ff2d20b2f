from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from floorbridge.adapters.settings import Settings, load_settings
from floorbridge.core.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "floorbridge.example.yaml"

Load = Callable[..., Settings]
Refuse = Callable[..., list[str]]


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "floorbridge.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def load(config_file: Callable[[str], Path]) -> Load:
    """Load `text` as floorbridge.yaml with exactly `env` as the environment (never the real one)."""

    def run(text: str, env: Mapping[str, str] | None = None) -> Settings:
        return load_settings(config_file(text), env or {})

    return run


@pytest.fixture
def refuse(config_file: Callable[[str], Path]) -> Refuse:
    """Load `text`, expect InvalidInput, and return its problems as "where: what" lines."""

    def run(text: str, env: Mapping[str, str] | None = None) -> list[str]:
        with pytest.raises(InvalidInput) as caught:
            load_settings(config_file(text), env or {})
        return [str(p) for p in caught.value.problems]

    return run
