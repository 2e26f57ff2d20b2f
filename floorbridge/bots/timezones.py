"""Finding a delegate's timezone from what they type: an IANA name, a city or a country code."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import pytz

_BY_LOWER = {name.lower(): name for name in pytz.all_timezones}
_CITIES: dict[str, list[str]] = {}
for _name in pytz.common_timezones:
    _city = _name.rsplit("/", 1)[-1].replace("_", " ").lower()
    _CITIES.setdefault(_city, []).append(_name)
# Cities delegates type that have no zone of their own name (IANA names one city per zone).
_ALIASES = {
    "geneva": "Europe/Zurich",
    "genève": "Europe/Zurich",
    "geneve": "Europe/Zurich",
    "bern": "Europe/Zurich",
    "washington": "America/New_York",
    "beijing": "Asia/Shanghai",
    "new delhi": "Asia/Kolkata",
    "delhi": "Asia/Kolkata",
    "mumbai": "Asia/Kolkata",
    "san francisco": "America/Los_Angeles",
    "rio de janeiro": "America/Sao_Paulo",
    "st petersburg": "Europe/Moscow",
    "saint petersburg": "Europe/Moscow",
    "abu dhabi": "Asia/Dubai",
    "hanoi": "Asia/Ho_Chi_Minh",
}


@dataclass(frozen=True)
class TzLookup:
    """`zone` when the answer is one zone; otherwise `choices` (possibly empty) to offer."""

    zone: str | None
    choices: tuple[str, ...] = ()


def find_timezone(text: str) -> TzLookup:
    query = " ".join(text.strip().split())
    if not query:
        return TzLookup(None)
    lowered = query.lower()
    exact = _BY_LOWER.get(lowered.replace(" ", "_"))
    if exact is not None:
        return TzLookup(exact)
    if len(query) == 2 and query.isalpha():
        zones = pytz.country_timezones.get(query.upper(), [])
        if len(zones) == 1:
            return TzLookup(zones[0])
        if zones:
            return TzLookup(None, tuple(zones))
    if lowered in _ALIASES:
        return TzLookup(_ALIASES[lowered])
    cities = _CITIES.get(lowered)
    if cities and len(cities) == 1:
        return TzLookup(cities[0])
    if cities:
        return TzLookup(None, tuple(cities))
    near = difflib.get_close_matches(lowered, [*_CITIES, *_ALIASES], n=5, cutoff=0.75)
    suggestions: list[str] = []
    for city in near:
        for zone in _CITIES.get(city, [_ALIASES.get(city, "")]):
            if zone and zone not in suggestions:
                suggestions.append(zone)
    if not suggestions:
        names = difflib.get_close_matches(lowered.replace(" ", "_"), list(_BY_LOWER), n=5, cutoff=0.8)
        suggestions = [_BY_LOWER[n] for n in names]
    return TzLookup(None, tuple(suggestions[:8]))
