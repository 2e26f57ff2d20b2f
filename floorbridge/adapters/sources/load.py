"""Pick the reader for an agenda file by its extension."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from floorbridge.core.errors import InvalidInput, Problem
from floorbridge.core.meeting import Meeting

from .csv_format import read_csv
from .frab_format import read_frab
from .ics_format import read_ics
from .imported import ImportedAgenda
from .yaml_format import read_yaml

_Reader = Callable[[Path, bytes, Meeting | None], ImportedAgenda]
MAX_AGENDA_BYTES = 32 << 20


def _yaml(path: Path, raw: bytes, meeting: Meeting | None) -> ImportedAgenda:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InvalidInput(
            [Problem(f"{path.name}:{line}", "not UTF-8 text; save the file as UTF-8")], source=str(path)
        ) from None
    return read_yaml(path, text, meeting)


_READERS: dict[str, _Reader] = {
    ".yaml": _yaml,
    ".yml": _yaml,
    ".csv": read_csv,
    ".ics": read_ics,
    ".xml": read_frab,
}


def load_agenda(path: Path, meeting: Meeting | None) -> ImportedAgenda:
    """Read and check an agenda file; raise InvalidInput listing every problem with its file:line.

    `meeting` is the stored meeting the agenda belongs to (None when it does not exist yet:
    then only a YAML file with a 'meeting:' block can be imported). Never writes anything.
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        accepted = ", ".join(sorted(_READERS))
        raise InvalidInput(
            [Problem(path.name, f"unknown agenda format {path.suffix or '(no extension)'!r}; accepted: {accepted}")],
            source=str(path),
        )
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_AGENDA_BYTES + 1)  # never more: a wrong path to a huge file fails fast
    except OSError as e:
        raise InvalidInput([Problem(path.name, f"cannot read the file: {e.strerror or e}")], source=str(path)) from e
    if len(raw) > MAX_AGENDA_BYTES:
        raise InvalidInput([Problem(path.name, f"the file is over {MAX_AGENDA_BYTES // (1 << 20)} MiB, the largest "
                                               "agenda file read (a meeting of thousands of sessions is a few MiB)")],
                           source=str(path))
    return reader(path, raw, meeting)
