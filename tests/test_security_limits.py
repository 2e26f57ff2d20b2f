"""Size limits outside the web server: agenda files (the web's are in tests/web/test_input_limits.py;
chat commands: tests/bots/test_conversation.py; mail over mail.max_bytes: tests/mail/test_receivers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from floorbridge.adapters.sources import load_agenda
from floorbridge.adapters.sources.load import MAX_AGENDA_BYTES
from floorbridge.core.errors import InvalidInput


@pytest.mark.parametrize("suffix", [".yaml", ".csv", ".ics", ".xml"])
def test_an_agenda_file_over_the_cap_is_refused_without_reading_it_all(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"agenda{suffix}"
    with path.open("wb") as f:
        f.truncate(MAX_AGENDA_BYTES + 4096)  # sparse: no disk used
    with pytest.raises(InvalidInput) as caught:
        load_agenda(path, None)
    assert f"the file is over {MAX_AGENDA_BYTES >> 20} MiB" in str(caught.value)
