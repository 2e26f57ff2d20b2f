"""Fill missing or fuzzy entries of the bots' catalogs from a Python file defining
T = {msgid or (singular, plural): {lang: text or tuple of plural forms}}.

Usage: .venv/bin/python scripts/apply_translations.py FILE.py  (then run the i18n test)"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

LOCALE = Path(__file__).resolve().parents[1] / "floorbridge/bots/locale"


def main() -> None:
    table = runpy.run_path(sys.argv[1])["T"]
    for lang in ("fr", "es", "ru", "ar", "zh"):
        path = LOCALE / lang / "LC_MESSAGES/floorbridge.po"
        with path.open("rb") as f:
            catalog = read_po(f, locale=lang)
        filled = 0
        for msg in catalog:
            if not msg.id:
                continue
            text = table.get(msg.id)
            if text is None or lang not in text:
                continue
            if msg.fuzzy or not msg.string or (isinstance(msg.string, tuple) and not all(msg.string)):
                msg.string = text[lang]
                msg.flags.discard("fuzzy")
                msg.previous_id = ()
                filled += 1
        with path.open("wb") as f:
            write_po(f, catalog, omit_header=True)
        print(lang, filled)


if __name__ == "__main__":
    main()
