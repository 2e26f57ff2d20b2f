"""Bot texts in the six UN languages: gettext catalogs (Babel) and locale-aware dates and times.

The catalogs are the .po files under locale/; they are compiled in memory when first used, so
the repository holds no binary .mo files and a catalog edit needs no build step.
"""

from __future__ import annotations

import datetime as dt
import functools
from datetime import datetime, tzinfo
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime, format_time, get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

DOMAIN = "floorbridge"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("en", "fr", "es", "ru", "ar", "zh")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {
    "en": "English",
    "fr": "Français",
    "es": "Español",
    "ru": "Русский",
    "ar": "العربية",
    "zh": "中文",
}


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def supported_language(hint: str | None) -> str | None:
    """The supported language for a platform's locale hint ("fr-CA", "zh-hans", "pt-BR" -> None)."""
    if not hint:
        return None
    base = hint.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


class Translator:
    """Texts, dates and times for one language."""

    def __init__(self, lang: str, translations: NullTranslations) -> None:
        self.lang = lang
        # en_GB: day-month order and a 24-hour clock, as in UN documents.
        self.locale = Locale.parse({"zh": "zh_Hans", "en": "en_GB"}.get(lang, lang))
        self._t = translations

    def _(self, message: str) -> str:
        return self._t.gettext(message)

    def n_(self, singular: str, plural: str, n: int) -> str:
        return self._t.ngettext(singular, plural, n)

    # dates and times, always in an explicit zone

    def date(self, day: dt.date) -> str:
        """Thursday, 10 July 2025 in the language's own order and words."""
        return format_date(day, format="full", locale=self.locale)

    def short_date(self, day: dt.date) -> str:
        return format_date(day, format="medium", locale=self.locale)

    def time(self, moment: datetime, tz: tzinfo) -> str:
        return format_time(moment, format="short", tzinfo=tz, locale=self.locale)

    def date_time(self, moment: datetime, tz: tzinfo) -> str:
        return format_datetime(moment, format="medium", tzinfo=tz, locale=self.locale)

    def day_and_time(self, moment: datetime, tz: tzinfo) -> str:
        return f"{format_date(moment.astimezone(tz), format='medium', locale=self.locale)} {self.time(moment, tz)}"

    def zone_name(self, tz: tzinfo) -> str:
        """The zone as people say it in this language: "Central European Time", "heure d'Europe centrale"."""
        return get_timezone_name(tz, width="long", locale=self.locale)


@functools.cache
def translator(lang: str) -> Translator:
    """The translator for a supported language; unknown codes get English rather than an error,
    since a stored preference must never break a reply."""
    if lang not in LANGUAGES or lang == DEFAULT_LANGUAGE:
        return Translator(DEFAULT_LANGUAGE if lang not in LANGUAGES else lang, NullTranslations())
    with catalog_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translator(lang, Translations(fp=buffer, domain=DOMAIN))
