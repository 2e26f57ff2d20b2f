"""Finding the deadlines in a circular letter (ITU, WIPO, UN...) written in English, French,
Spanish or Russian plain text, and saying what each one is for.

The approach is a handful of linear passes over a folded copy of the text (lower case, Latin
accents removed, the same length as the original so every offset is shared):

1. Dates. One regular expression recognises "29 February 2024", "February 29, 2024",
   "29 de febrero de 2024", "1er mars 2024", "10 октября 2017 года/г.", "10.10.2017" and
   "2017-10-10". Month names come from Babel (wide and abbreviated, format and stand-alone
   contexts, so Russian genitives such as "октября" are there) and are compiled into a trie so
   the alternation fails fast. A date without a year is resolved against `sent` (the next such
   day on or after `sent` minus three months) and dropped when `sent` is unknown; impossible
   dates (31 February) are dropped. A date that begins or ends a range ("17–19 октября",
   "с 17 по 19", "30 June – 2 July") is a meeting date unless a cue sits right before the range.
2. Sentences. Split on ".", "!", "?", "…" followed by a space and a character that is not lower
   case, on ";" and on blank lines; never after abbreviations ("e.g.", "г." inside a sentence,
   initials) or the number of a numbered point at the start of a line.
3. Cues. A date is a deadline when a cue governs it within its sentence: a strong cue ("no later
   than", "deadline", "au plus tard", "a más tardar", "не позднее", "предельный срок"...) may
   stand some words before the date; a weak one ("by", "before", "avant le", "до"...) only
   directly before it (articles, week days, times of day allowed in between). A short line such
   as "Key deadlines" / "Основные предельные сроки" also governs the dates that open the lines
   of the table below it, and each kind named in such a table entry is reported. A deadline noun
   just after a date ("15 March 2025 – registration deadline") counts too. A bare date is not
   reported.
4. Kinds. Keyword stems for registration, contributions, visa support and speaking slots; the
   keyword closest to the date in its sentence wins (those after the date count for a little
   more distance), then the previous sentence of the same paragraph, then the mail's subject;
   otherwise the kind is OTHER.

Confidence starts from the cue's strength, gains when a kind keyword is close and loses for a
far cue, other dates in between, a guessed year and a date long before `sent`. Every pattern is
compiled once (functools.cache) and bounded, so a 200 KB text takes a fraction of a second.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache

from babel.dates import get_day_names, get_month_names

from .announcements import FoundDeadline
from .deadline import DeadlineKind

__all__ = ["find_deadlines"]

LANGUAGES = ("en", "fr", "es", "ru")
EXCERPT_LIMIT = 200

_LETTER = r"[^\W\d_]"
_WORD_START = rf"(?={_LETTER})(?<!{_LETTER})"
_WORD_END = rf"(?!{_LETTER})"
_DASH = r"\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212"  # for character classes
_WS = r"(?=\s)(?>[^\S\n]*\n?[^\S\n]*)"
_ORDINAL = r"(?:er|re|st|nd|rd|th|º|°|ª)?"
_RANGE_WORDS = r"(?:по|to|au|al|a|through|thru|till|hasta)"


@dataclass(frozen=True, slots=True)
class _Cue:
    lang: str
    weight: float
    max_gap: int
    tight: bool
    heading: bool = False


_CUES: tuple[tuple[str, _Cue], ...] = (
    (r"no\s+later\s+than", _Cue("en", 0.8, 80, tight=False)),
    (r"not\s+later\s+than", _Cue("en", 0.8, 80, tight=False)),
    (r"deadlines?", _Cue("en", 0.75, 150, tight=False, heading=True)),
    (r"closing\s+dates?", _Cue("en", 0.75, 150, tight=False, heading=True)),
    (r"cut-?\s?off\s+dates?", _Cue("en", 0.75, 150, tight=False, heading=True)),
    (r"due\s+dates?", _Cue("en", 0.7, 100, tight=False, heading=True)),
    (r"(?:received|submitted|sent|returned|completed|made|uploaded)\s+(?:by|before|on\s+or\s+before)",
     _Cue("en", 0.65, 50, tight=True)),
    (r"on\s+or\s+before", _Cue("en", 0.6, 50, tight=True)),
    (r"closes?(?:\s+on)?", _Cue("en", 0.55, 50, tight=True)),
    (r"(?:before|until|till)", _Cue("en", 0.55, 50, tight=True)),
    (r"due(?:\s+(?:on|by|before))?", _Cue("en", 0.45, 50, tight=True)),
    (r"by", _Cue("en", 0.45, 50, tight=True)),
    (r"au\s+plus\s+tard", _Cue("fr", 0.8, 80, tight=False)),
    (r"dates?\s+limites?", _Cue("fr", 0.75, 150, tight=False, heading=True)),
    (r"dates?\s+butoirs?", _Cue("fr", 0.75, 150, tight=False, heading=True)),
    (r"delais?", _Cue("fr", 0.6, 100, tight=False)),
    (r"echeances?", _Cue("fr", 0.6, 100, tight=False)),
    (r"(?:avant\s+le|d'ici\s+(?:le|au)|jusqu'(?:au|a))", _Cue("fr", 0.55, 50, tight=True)),
    (r"(?:se\s+)?clotur\w*(?:\s+le)?", _Cue("fr", 0.55, 60, tight=False)),
    (r"a\s+mas\s+tardar", _Cue("es", 0.8, 80, tight=False)),
    (r"no\s+mas\s+tarde\s+(?:del|de|que)", _Cue("es", 0.8, 80, tight=False)),
    (r"fechas?\s+limites?", _Cue("es", 0.75, 150, tight=False, heading=True)),
    (r"plazos?", _Cue("es", 0.7, 120, tight=False, heading=True)),
    (r"(?:antes\s+del?|hasta\s+el)", _Cue("es", 0.55, 50, tight=True)),
    (r"(?:cierr|venc)\w*(?:\s+el)?", _Cue("es", 0.55, 60, tight=False)),
    (r"не\s+(?:позднее|позже)", _Cue("ru", 0.8, 80, tight=False)),
    (r"(?:предельн|крайн|конечн)\w*\s+срок\w*", _Cue("ru", 0.75, 150, tight=False, heading=True)),
    (r"срок\w*", _Cue("ru", 0.6, 80, tight=False)),
    (r"вплоть\s+до", _Cue("ru", 0.55, 50, tight=True)),
    (r"до", _Cue("ru", 0.45, 50, tight=True)),
)

_KINDS: tuple[tuple[DeadlineKind, str], ...] = (
    (DeadlineKind.REGISTRATION, r"(?:pre-?)?regist\w*|(?:pre-?)?inscri\w*|(?:за|пред)?регистр\w*"),
    (DeadlineKind.CONTRIBUTIONS, r"contribu\w*|document\w*|вклад\w*|документ\w*"),
    (DeadlineKind.VISA_SUPPORT, r"visa\w*|виз(?!ит|уал)\w*"),
    (DeadlineKind.SPEAKING_SLOT,
     r"speak\w*|statements?|the\s+floor|parole|interventions?|intervenci\w*|orat(?:eur|rice)s?|orador\w*"
     r"|palabra|выступ\w*|слов[оау]?"),
)

_GAP_WORDS = (
    "the", "on", "at", "of", "le", "la", "el", "del", "de", "du", "au", "a", "en", "в", "на", "к", "по",
    "midnight", "noon", "minuit", "midi", "medianoche", "mediodia", "полуночи", "utc", "gmt", "cet", "cest",
    "h", "hrs", "hour", "hours", "heure", "heures", "hora", "horas", "ч", "час", "часов", "мск", "local",
    "locale", "geneva", "geneve", "ginebra", "женевскому", "time", "времени", "inclusive", "включительно",
)
_ABBREVIATIONS = frozenset({
    "e.g", "i.e", "cf", "vs", "mr", "mrs", "ms", "dr", "prof", "no", "nos", "art", "arts", "para", "paras",
    "pp", "doc", "docs", "ref", "rev", "fig", "vol", "approx", "incl", "tel", "fax", "ext", "st", "mme",
    "mlle", "mm", "sr", "sra", "srta", "dra", "num", "n°", "av", "ch", "стр", "см", "эл", "тел", "ул", "им",
    "доц", "проф", "напр", "гг", "т.е", "т.д", "т.п", "т.к", "т.н",
})
_LINE_LEAD = re.compile(rf"[\s•·*{_DASH}]*")
_NUMBERED = re.compile(r"\d{1,3}(?:\.\d{1,3})*")
_YEAR_TOKEN = re.compile(r"\d{4}")
_NON_SPACE = re.compile(r"\S")
_SPACES = re.compile(r"\s+")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")


@dataclass(frozen=True, slots=True)
class _Month:
    lang: str
    month: int
    wide: bool


@dataclass(frozen=True, slots=True)
class _Lexicon:
    months: dict[str, tuple[_Month, ...]]
    dates: re.Pattern[str]
    range_before: re.Pattern[str]
    range_after: re.Pattern[str]
    cues: re.Pattern[str]
    kinds: re.Pattern[str]
    gap: re.Pattern[str]
    sentence_marks: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class _Date:
    start: int
    end: int
    due: date | None
    langs: tuple[str, ...]
    guessed_year: bool
    range_start: int | None  # where the range begins, for the last date of a range
    opens_range: bool


@dataclass(frozen=True, slots=True)
class _Hit:
    kind: DeadlineKind
    due: date
    confidence: float
    language: str
    where: _Date
    sentence: tuple[int, int]
    finder: _Finder

    def found(self) -> FoundDeadline:
        excerpt = self.finder.excerpt(self.where, *self.sentence)
        return FoundDeadline(self.kind, self.due, self.confidence, excerpt, self.language)


_Trie = dict[str, "_Trie"]


def _fold_char(ch: str) -> str:
    low = ch.lower()
    if len(low) != 1:
        return ch
    base = unicodedata.normalize("NFD", low)[0]
    return base if base.isascii() and base.isalpha() else low


@cache
def _fold_table() -> dict[int, str]:
    table = {cp: _fold_char(chr(cp)) for cp in range(0xC0, 0x250)}
    table.update({ord("’"): "'", ord("ʼ"): "'", ord("ё"): "е", ord("Ё"): "е"})
    return table


def _fold(text: str) -> str:
    """Lower case, Latin accents removed, `len(_fold(t)) == len(t)`."""
    low = text.lower()
    if len(low) != len(text):
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return low.translate(_fold_table())


def _trie_regex(words: Iterable[str]) -> str:
    root: _Trie = {}
    for word in sorted(set(words)):
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def walk(node: _Trie) -> str:
        branches = [re.escape(ch) + walk(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        optional = "" in node
        if len(branches) == 1 and not optional:
            return branches[0]
        return "(?:" + "|".join(branches) + ")" + ("?" if optional else "")

    return walk(root)


def _year(prefix: str) -> str:
    return rf"(?:(?:{_WS}de|{_WS}del|[^\S\n]*,)?{_WS}(?P<{prefix}year>\d{{4}})(?!\d))?"


@cache
def _lexicon() -> _Lexicon:
    months: dict[str, list[_Month]] = {}
    for lang in LANGUAGES:
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                for number, name in get_month_names(width, context=context, locale=lang).items():
                    key = _fold(str(name)).rstrip(".")
                    entry = _Month(lang, int(number), width == "wide")
                    found = months.setdefault(key, [])
                    same = [m for m in found if m.lang == lang and m.month == entry.month]
                    if not same:
                        found.append(entry)
                    elif entry.wide and not same[0].wide:
                        found[found.index(same[0])] = entry
    english = [name for name, entries in months.items() if any(m.lang == "en" for m in entries)]
    any_month = _trie_regex(months)
    en_month = _trie_regex(english)
    suffix = rf"(?:[^\S\n]*(?:года|гг?\.|г{_WORD_END}|year))?"
    dmy = (rf"(?<![\w.,:/])(?P<d_day>\d{{1,2}}){_ORDINAL}(?:{_WS}de)?{_WS}"
           rf"(?P<d_month>{any_month})\.?{_WORD_END}" + _year("d_") + suffix)
    mdy = (rf"{_WORD_START}(?P<m_month>{en_month})\.?{_WS}(?P<m_day>\d{{1,2}})(?:st|nd|rd|th)?(?![\d]|{_LETTER})"
           + _year("m_"))
    numeric = r"(?<![\w.,:/])(?P<n_day>\d{1,2})\.(?P<n_month>\d{1,2})\.(?P<n_year>\d{4})(?!\d|\.\d)" + suffix
    iso = r"(?<![\w.\-/])(?P<i_year>\d{4})-(?P<i_month>\d{1,2})-(?P<i_day>\d{1,2})(?!\d)"
    dates = re.compile("|".join(f"(?:{p})" for p in (dmy, mdy, numeric, iso)))
    range_token = rf"(?:\d{{1,2}}{_ORDINAL}|{_WORD_START}(?:{any_month})\.?|\d{{4}}(?:\s*(?:года|г\.?))?)"
    range_before = re.compile(
        rf"(?P<start>{range_token})\s*(?:[{_DASH}]|(?<=\s){_RANGE_WORDS}(?=\s))\s*$"
    )
    range_after = re.compile(rf"\s*(?:[{_DASH}]|(?<=\s){_RANGE_WORDS}(?=\s))\s*\d")
    cues = re.compile(
        _WORD_START + "(?:" + "|".join(f"(?P<c{i}>{p})" for i, (p, _) in enumerate(_CUES)) + ")" + _WORD_END
    )
    kinds = re.compile(
        _WORD_START + "(?:" + "|".join(f"(?P<k{i}>{p})" for i, (_, p) in enumerate(_KINDS)) + ")" + _WORD_END
    )
    day_names = [
        _fold(str(name)).rstrip(".")
        for lang in LANGUAGES
        for name in get_day_names("wide", locale=lang).values()
    ] + [_fold(str(name)) for name in get_day_names("abbreviated", locale="en").values()]
    gap_words = _trie_regex([*_GAP_WORDS, *day_names])
    gap = re.compile(
        rf"(?:\s|[,:()\[\]\"'«»“”/.{_DASH}]|{_WORD_START}{gap_words}{_WORD_END}"
        r"|\d{1,2}[:h.]\d{2}(?!\d)|\d{1,2}\s?(?:am|pm|a\.m\.|p\.m\.)(?!\w))*"
    )
    sentence_marks = re.compile(r"(?P<para>\n[^\S\n]*\n\s*)|(?P<semi>;)|(?P<stop>[.!?…])(?=\s)")
    return _Lexicon(
        months={k: tuple(v) for k, v in months.items()},
        dates=dates,
        range_before=range_before,
        range_after=range_after,
        cues=cues,
        kinds=kinds,
        gap=gap,
        sentence_marks=sentence_marks,
    )


def _resolve_year(month: int, day: int, sent: date | None) -> date | None:
    if sent is None:
        return None
    threshold = sent - timedelta(days=90)
    for year in range(threshold.year, threshold.year + 9):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= threshold:
            return candidate
    return None


def _month_langs(lex: _Lexicon, token: str, month_pos: int, original: str, has_year: bool) -> dict[str, int]:
    entries = lex.months.get(token.rstrip("."), ())
    if not has_year:
        entries = tuple(m for m in entries if m.wide)
        if not original[month_pos:month_pos + 1].isupper():
            entries = tuple(m for m in entries if m.lang != "en")
    return {m.lang: m.month for m in entries}


def _parse_date(lex: _Lexicon, m: re.Match[str], original: str, sent: date | None) -> _Date | None:
    langs: tuple[str, ...] = ()
    guessed = False
    if m.group("d_day") is not None or m.group("m_day") is not None:
        p = "d_" if m.group("d_day") is not None else "m_"
        by_lang = _month_langs(lex, m.group(p + "month"), m.start(p + "month"), original,
                               m.group(p + "year") is not None)
        if not by_lang or len(set(by_lang.values())) != 1:
            return None
        month = next(iter(by_lang.values()))
        langs = tuple(lang for lang in LANGUAGES if lang in by_lang)
        day = int(m.group(p + "day"))
        year_text = m.group(p + "year")
    elif m.group("n_day") is not None:
        day, month, year_text = int(m.group("n_day")), int(m.group("n_month")), m.group("n_year")
    else:
        day, month, year_text = int(m.group("i_day")), int(m.group("i_month")), m.group("i_year")
    due: date | None
    if year_text is None:
        try:
            date(2000, month, day)
        except ValueError:
            return None
        due = _resolve_year(month, day, sent)
        guessed = True
    else:
        year = int(year_text)
        if not 1900 <= year <= 2199:
            return None
        try:
            due = date(year, month, day)
        except ValueError:
            return None
    return _Date(m.start(), m.end(), due, langs, guessed, None, False)


def _find_dates(lex: _Lexicon, folded: str, original: str, sent: date | None) -> list[_Date]:
    found: list[_Date] = []
    for m in lex.dates.finditer(folded):
        hit = _parse_date(lex, m, original, sent)
        if hit is None:
            continue
        before = lex.range_before.search(folded, max(0, hit.start - 40), hit.start)
        range_start = before.start("start") if before is not None else None
        opens = lex.range_after.match(folded, hit.end, min(len(folded), hit.end + 12)) is not None
        found.append(_Date(hit.start, hit.end, hit.due, hit.langs, hit.guessed_year, range_start, opens))
    return found


def _sentence_starts(folded: str, original: str, lex: _Lexicon) -> tuple[list[int], list[bool]]:
    """Where each sentence starts, and whether it starts a paragraph."""
    starts, paragraph = [0], [True]
    for m in lex.sentence_marks.finditer(folded):
        if m.lastgroup == "stop" and not _ends_sentence(folded, original, m.start()):
            continue
        starts.append(m.end())
        paragraph.append(m.lastgroup == "para")
    return starts, paragraph


def _ends_sentence(folded: str, original: str, dot: int) -> bool:
    following = _NON_SPACE.search(folded, dot + 1, dot + 200)
    next_char = original[following.start()] if following is not None else ""
    if next_char.islower():
        return False
    if folded[dot] != ".":
        return True
    begin = dot
    while begin > 0 and dot - begin < 16 and not folded[begin - 1].isspace():
        begin -= 1
    token = folded[begin:dot].lstrip("([«\"'")
    if token in ("г", "гг"):
        previous = folded[max(0, begin - 12):begin].split()
        return bool(previous) and _YEAR_TOKEN.fullmatch(previous[-1]) is not None and next_char.isupper()
    if (len(token) == 1 and token.isalpha()) or token in _ABBREVIATIONS:
        return False
    if _NUMBERED.fullmatch(token):
        line_start = folded.rfind("\n", 0, begin) + 1
        return bool(folded[line_start:begin].strip())
    return True


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    cue: _Cue


class _Finder:
    def __init__(self, text: str, sent: date | None, subject_kind: DeadlineKind | None) -> None:
        self.lex = _lexicon()
        self.text = text
        self.folded = _fold(text)
        self.sent = sent
        self.subject_kind = subject_kind
        self.dates = _find_dates(self.lex, self.folded, text, sent)
        self.date_starts = [d.start for d in self.dates]
        self.starts, self.paragraph = _sentence_starts(self.folded, text, self.lex)
        self.cues: list[_Span] = []
        for m in self.lex.cues.finditer(self.folded):
            name = m.lastgroup or ""
            self.cues.append(_Span(m.start(), m.end(), _CUES[int(name[1:])][1]))
        self.cue_ends = [c.end for c in self.cues]
        self.cue_starts = [c.start for c in self.cues]
        self.keywords: list[tuple[int, int, DeadlineKind]] = []
        for m in self.lex.kinds.finditer(self.folded):
            name = m.lastgroup or ""
            self.keywords.append((m.start(), m.end(), _KINDS[int(name[1:])][0]))
        self.kw_starts = [k[0] for k in self.keywords]
        self.kw_ends = [k[1] for k in self.keywords]
        self.tables = self._table_regions()
        self.table_starts = [t[0] for t in self.tables]

    def _sentence(self, pos: int) -> tuple[int, int, int]:
        i = bisect_right(self.starts, pos) - 1
        end = self.starts[i + 1] if i + 1 < len(self.starts) else len(self.text)
        return i, self.starts[i], end

    def _line(self, pos: int) -> tuple[int, int]:
        start = self.folded.rfind("\n", 0, pos) + 1
        end = self.folded.find("\n", pos)
        return start, len(self.folded) if end < 0 else end

    def _short_line(self, pos: int, limit: int) -> tuple[int, int] | None:
        """The bounds of the line around `pos`, or None when it is longer than `limit` on either side."""
        start = self.folded.rfind("\n", max(0, pos - limit), pos) + 1
        if start == 0 and pos > limit:
            return None
        end = self.folded.find("\n", pos, pos + limit + 1)
        if end < 0:
            if pos + limit < len(self.folded):
                return None
            end = len(self.folded)
        return start, end

    def _dates_between(self, start: int, end: int) -> int:
        return bisect_left(self.date_starts, end) - bisect_left(self.date_starts, start)

    def _table_regions(self) -> list[tuple[int, int, _Cue]]:
        regions: list[tuple[int, int, _Cue]] = []
        reach = -1
        for cue in self.cues:
            if not cue.cue.heading or cue.start < reach:
                continue
            line = self._short_line(cue.start, 100)
            if line is None or len(self.text[line[0]:line[1]].strip()) > 80 or self._dates_between(*line):
                continue
            line_end = line[1]
            end = min(len(self.text), line_end + 1500)
            pos = line_end + 1
            while pos < end:
                next_end = self._line(pos)[1]
                if next_end - pos > 150:
                    end = pos
                    break
                pos = next_end + 1
            regions.append((line_end, end, cue.cue))
            reach = end
        return regions

    def _table(self, d: _Date) -> _Cue | None:
        i = bisect_right(self.table_starts, d.start) - 1
        if i < 0 or not self.tables[i][0] <= d.start < self.tables[i][1]:
            return None
        line_start = self.folded.rfind("\n", max(0, d.start - 21), d.start) + 1
        if (line_start == 0 and d.start > 21) or not _LINE_LEAD.fullmatch(self.folded, line_start, d.start):
            return None
        return self.tables[i][2]

    def _governing(self, start: int, sentence_start: int, tight_only: bool) -> tuple[_Span, int] | None:
        i = bisect_right(self.cue_ends, start) - 1
        while i >= 0:
            span = self.cues[i]
            if span.start < sentence_start or start - span.end > 150:
                return None
            gap = start - span.end
            if gap <= span.cue.max_gap:
                tight = self.lex.gap.fullmatch(self.folded, span.end, start) is not None
                if tight or (not span.cue.tight and not tight_only):
                    return span, gap
            i -= 1
        return None

    def _still_governs(self, span: _Span, d: _Date) -> bool:
        """A cue reaches past another date only when a new kind keyword introduces this one."""
        i = bisect_left(self.date_starts, d.start) - 1
        if i < 0 or self.dates[i].start < span.end:
            return True
        k = bisect_left(self.kw_starts, self.dates[i].end)
        return k < len(self.keywords) and self.keywords[k][1] <= d.start

    def _cue_after(self, d: _Date, sentence_end: int) -> _Span | None:
        i = bisect_left(self.cue_starts, d.end)
        if i >= len(self.cues):
            return None
        span = self.cues[i]
        if not span.cue.heading or span.start - d.end > 40 or span.end > sentence_end:
            return None
        if any(ch.isdigit() for ch in self.folded[d.end:span.start]):
            return None
        j = bisect_left(self.date_starts, span.end)
        if j < len(self.dates) and self.dates[j].start < min(sentence_end, span.end + span.cue.max_gap):
            return None
        return span

    def _nearest_kind(self, d: _Date, s_index: int, s_start: int, s_end: int) -> tuple[DeadlineKind, float]:
        j = bisect_left(self.date_starts, d.end)
        limit = min(s_end, self.dates[j].start if j < len(self.dates) else s_end)
        best: tuple[float, DeadlineKind] | None = None
        i = bisect_right(self.kw_ends, d.start) - 1
        if i >= 0 and self.keywords[i][0] >= s_start:
            best = (d.start - self.keywords[i][1], self.keywords[i][2])
        k = bisect_left(self.kw_starts, d.end)
        if k < len(self.keywords) and self.keywords[k][1] <= limit:
            distance = (self.keywords[k][0] - d.end) * 1.5
            if best is None or distance < best[0]:
                best = (distance, self.keywords[k][2])
        if best is not None:
            return best[1], 0.2
        if s_index > 0 and not self.paragraph[s_index] and i >= 0 and self.keywords[i][0] >= self.starts[s_index - 1]:
            return self.keywords[i][2], 0.1
        if self.subject_kind is not None:
            return self.subject_kind, 0.05
        return DeadlineKind.OTHER, 0.0

    def _table_kinds(self, d: _Date, region_end: int) -> list[DeadlineKind]:
        j = bisect_left(self.date_starts, d.end)
        end = min(region_end, self.dates[j].start if j < len(self.dates) else region_end)
        blank = _BLANK_LINE.search(self.folded, d.end, end)
        if blank is not None:
            end = blank.start()
        kinds: list[DeadlineKind] = []
        for k in range(bisect_left(self.kw_starts, d.end), len(self.keywords)):
            _, stop, kind = self.keywords[k]
            if stop > end:
                break
            if kind not in kinds:
                kinds.append(kind)
        return kinds

    def _confidence(self, base: float, d: _Date, bonus: float) -> float:
        value = base + bonus
        if d.guessed_year:
            value -= 0.1
        if self.sent is not None and d.due is not None:
            if d.due < self.sent - timedelta(days=31):
                value -= 0.3
            elif d.due < self.sent:
                value -= 0.1
            elif d.due > self.sent + timedelta(days=3 * 366):
                value -= 0.2
        return round(min(1.0, max(0.05, value)), 2)

    def _language(self, d: _Date, cue_lang: str) -> str:
        if len(d.langs) == 1:
            return d.langs[0]
        if cue_lang and (not d.langs or cue_lang in d.langs):
            return cue_lang
        return d.langs[0] if d.langs else cue_lang

    def excerpt(self, d: _Date, s_start: int, s_end: int) -> str:
        window_start = max(s_start, d.start - 3 * EXCERPT_LIMIT)
        window_end = min(s_end, d.end + 3 * EXCERPT_LIMIT)
        pre = _SPACES.sub(" ", self.text[window_start:d.start])
        core = _SPACES.sub(" ", self.text[d.start:d.end])
        post = _SPACES.sub(" ", self.text[d.end:window_end])
        pre = pre.lstrip() if window_start == s_start else pre
        post = post.rstrip() if window_end == s_end else post
        more_before, more_after = window_start > s_start, window_end < s_end
        if not (more_before or more_after) and len(pre) + len(core) + len(post) <= EXCERPT_LIMIT:
            return pre + core + post
        room = max(0, EXCERPT_LIMIT - len(core) - 2)
        left = min(len(pre), max(room * 2 // 3, room - len(post)))
        right = min(len(post), room - left)
        head = pre[len(pre) - left:] if left else ""
        tail = post[:right]
        if more_before or left < len(pre):
            space = head.find(" ", 0, 25)
            head = "…" + (head[space + 1:] if space >= 0 else head).lstrip()
        if more_after or right < len(post):
            space = tail.rfind(" ", max(0, len(tail) - 25))
            tail = (tail[:space] if space >= 0 else tail).rstrip() + "…"
        excerpt = head + core + tail
        return excerpt if len(excerpt) <= EXCERPT_LIMIT else excerpt[:EXCERPT_LIMIT - 1] + "…"

    def _hit(self, d: _Date, due: date, kind: DeadlineKind, confidence: float, lang: str,
             sentence: tuple[int, int]) -> _Hit:
        return _Hit(kind, due, confidence, self._language(d, lang), d, sentence, self)

    def run(self) -> list[_Hit]:
        hits: list[_Hit] = []
        for d in self.dates:
            if d.due is None or d.opens_range:
                continue
            s_index, s_start, s_end = self._sentence(d.start)
            table = self._table(d) if d.range_start is None else None
            governing = self._governing(d.range_start if d.range_start is not None else d.start, s_start,
                                        tight_only=d.range_start is not None)
            if governing is not None and not self._still_governs(governing[0], d):
                governing = None
            if table is not None:
                table_end = self.tables[bisect_right(self.table_starts, d.start) - 1][1]
                kinds = self._table_kinds(d, table_end)
                base = max(0.7, governing[0].cue.weight if governing else 0.0)
                for kind in kinds:
                    hits.append(self._hit(d, d.due, kind, self._confidence(base, d, 0.2), table.lang,
                                          (s_start, s_end)))
                if kinds:
                    continue
            if governing is not None:
                span, gap = governing
                base, lang = span.cue.weight, span.cue.lang
                if d.range_start is not None:
                    base -= 0.15
                elif not span.cue.tight:
                    base -= 0.1 if gap > 100 else 0.05 if gap > 60 else 0.0
                base -= 0.1 * self._dates_between(span.end, d.start)
            elif table is not None:
                base, lang = 0.7, table.lang
            elif d.range_start is None and (after := self._cue_after(d, s_end)) is not None:
                base, lang = 0.65, after.cue.lang
            else:
                continue
            kind, bonus = self._nearest_kind(d, s_index, s_start, s_end)
            hits.append(self._hit(d, d.due, kind, self._confidence(base, d, bonus), lang, (s_start, s_end)))
        return hits


def _subject_kind(subject: str) -> DeadlineKind | None:
    m = _lexicon().kinds.search(_fold(subject))
    if m is None or m.lastgroup is None:
        return None
    return _KINDS[int(m.lastgroup[1:])][0]


_DIGIT = re.compile(r"\d")
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")


def _dated_chunks(text: str) -> list[str]:
    """The parts of `text` the finder needs to read: every paragraph with a date in it, with the
    paragraph before it (a heading such as "Key deadlines" or the sentence that names the kind).
    Letters are mostly boilerplate without dates; a cue or keyword further away never counts."""
    dates = _lexicon().dates
    if _DIGIT.search(text) is None:
        return []  # every date has a digit: most of a letter is read by this one quick scan
    folded = _fold(text)
    bounds = [0]
    for m in _PARAGRAPH_BREAK.finditer(text):
        bounds.append(m.start())
        bounds.append(m.end())
    bounds.append(len(text))
    paragraphs = list(zip(bounds[::2], bounds[1::2], strict=True))
    wanted = [_DIGIT.search(text, start, end) is not None and dates.search(folded, start, end) is not None
              for start, end in paragraphs]
    keep = [w or (i + 1 < len(wanted) and wanted[i + 1]) for i, w in enumerate(wanted)]
    chunks: list[str] = []
    i = 0
    while i < len(paragraphs):
        if not keep[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(paragraphs) and keep[j + 1]:
            j += 1
        chunks.append(text[paragraphs[i][0]:paragraphs[j][1]])
        i = j + 1
    return chunks


def find_deadlines(text: str, *, subject: str = "", sent: date | None = None) -> tuple[FoundDeadline, ...]:
    """Deadlines in `text`, in the order they appear, one per (kind, due) pair (the most confident occurrence kept)."""
    if isinstance(sent, datetime):
        sent = sent.date()
    subject = subject if isinstance(subject, str) else ""
    text = text if isinstance(text, str) else ""
    hits = _Finder(subject, sent, None).run() if subject.strip() else []
    subject_kind = _subject_kind(subject) if subject else None
    for chunk in _dated_chunks(text):
        hits += _Finder(chunk, sent, subject_kind).run()
    best: dict[tuple[DeadlineKind, date], _Hit] = {}
    for hit in hits:
        key = (hit.kind, hit.due)
        if key not in best or hit.confidence > best[key].confidence:
            best[key] = hit
    return tuple(hit.found() for hit in best.values())
