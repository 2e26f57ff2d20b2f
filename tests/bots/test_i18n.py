"""The six UN languages: complete catalogs, placeholders intact, and replies in the chosen language."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from floorbridge.bots.i18n import LANGUAGES, LOCALE_DIR, catalog_path, translator

from .conftest import ROOT, World

_FIELD = re.compile(r"\{(\w+)\}")


def extracted(tmp_path: Path) -> set[str]:
    """Every message id in the code, as Babel extracts it now (not the committed template)."""
    pot = tmp_path / "now.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-k", "_", "-k", "n_:1,2",
         "-o", str(pot), str(ROOT / "floorbridge/bots")],
        check=True,
    )
    with pot.open("rb") as f:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}


@pytest.mark.parametrize("lang", [x for x in LANGUAGES if x != "en"])
def test_every_text_is_translated_with_its_placeholders(lang: str, tmp_path: Path) -> None:
    with catalog_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang)
    by_id = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog if m.id}
    missing = extracted(tmp_path) - set(by_id)
    assert not missing, f"{lang}: not in the catalog: {sorted(missing)}"
    for key, m in by_id.items():
        assert not m.fuzzy, f"{lang}: fuzzy {key!r}"
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        strs = [m.string] if isinstance(m.string, str) else list(m.string)
        wanted = set(_FIELD.findall(ids[0]))
        for s in strs:
            assert s, f"{lang}: untranslated {key!r}"
            assert set(_FIELD.findall(s)) == wanted, f"{lang}: placeholders of {key!r} changed: {s!r}"


def test_the_template_is_up_to_date(tmp_path: Path) -> None:
    with (LOCALE_DIR / "floorbridge.pot").open("rb") as f:
        committed = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    assert committed == extracted(tmp_path), "run scripts/i18n.sh to refresh the catalogs"


def test_dates_are_formatted_for_the_language() -> None:
    from datetime import date

    day = date(2025, 7, 9)
    assert translator("fr").date(day) == "mercredi 9 juillet 2025"
    assert translator("ru").date(day).startswith("среда, 9 июля 2025")
    assert translator("zh").date(day).startswith("2025年7月9日")
    assert translator("ar").date(day).startswith("الأربعاء")


async def test_lang_switches_every_reply(world: World) -> None:
    assert "français" in (await world.text("lang fr")).lower()
    text = await world.text("today")
    assert "mercredi 9 juillet 2025" in text
    assert "provisoire" in text and "tentative" not in text  # the gender workshop's status, translated
    unknown = await world.text("frobnicate")
    assert "frobnicate" in unknown and "don't know" not in unknown
    await world.text("lang zh")
    assert "2025年7月9日" in await world.text("today")
    await world.text("lang ar")
    assert "الأربعاء" in await world.text("today")


