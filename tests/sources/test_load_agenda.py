from __future__ import annotations

from pathlib import Path

import pytest

from floorbridge.adapters.sources import load_agenda
from floorbridge.core.errors import InvalidInput
from floorbridge.core.meeting import Meeting

from .conftest import REPO, Write, lines_of


def test_an_unknown_extension_names_the_file_and_the_accepted_ones(write: Write, wsis: Meeting) -> None:
    path = write("agenda.xlsx", b"PK\x03\x04")
    with pytest.raises(InvalidInput) as error:
        load_agenda(path, wsis)
    assert error.value.source == str(path)
    assert lines_of(error) == ["agenda.xlsx: unknown agenda format '.xlsx'; accepted: .csv, .ics, .xml, .yaml, .yml"]


def test_a_missing_file_is_invalid_input(tmp_path: Path, wsis: Meeting) -> None:
    with pytest.raises(InvalidInput) as error:
        load_agenda(tmp_path / "nowhere.csv", wsis)
    assert lines_of(error)[0].startswith("nowhere.csv: cannot read the file")


def test_loading_writes_nothing(tmp_path: Path) -> None:
    source = REPO / "config" / "meetings" / "fg-dlt-1.yaml"
    copy = tmp_path / "fg-dlt-1.yml"
    copy.write_bytes(source.read_bytes())
    load_agenda(copy, None)
    assert [p.name for p in tmp_path.iterdir()] == ["fg-dlt-1.yml"]
    assert copy.read_bytes() == source.read_bytes()
