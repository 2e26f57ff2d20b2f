"""VTIMEZONE components computed from a tzinfo (pytz or zoneinfo) over a range of dates.

icalendar's `Timezone.from_tzinfo` puts an observance's DTSTART at the first wall-clock time
*after* a switch (02:00 for the end of summer time in Zurich), while RFC 5545 §3.6.5 wants
the onset as wall-clock time in the offset being left (03:00, as in the RFC's own examples).
So the transitions are found here: by day, then bisected to the second. Each switch gets its
own STANDARD/DAYLIGHT sub-component with just a DTSTART (no RRULE/RDATE), the form every
client understands; the first one is the last switch before the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

from icalendar import Timezone, TimezoneDaylight, TimezoneStandard


@dataclass(frozen=True)
class Observance:
    """From `onset` (UTC) on, wall-clock time is UTC + `offset`."""

    onset: datetime
    offset_from: timedelta
    offset: timedelta
    tz_dst: bool
    name: str

    @property
    def daylight(self) -> bool:
        """DAYLIGHT when clocks go forward, STANDARD when they go back.

        Not the tz database's own flag: it has negative DST (Ireland in winter, Morocco in
        Ramadan), and readers such as dateutil take TZOFFSETTO - TZOFFSETFROM of a DAYLIGHT
        observance as the time it adds, so a DAYLIGHT that goes back breaks their conversion
        in the hour around the switch. This is the tz database's "rearguard" form.
        """
        if self.offset != self.offset_from:
            return self.offset > self.offset_from
        return self.tz_dst


def _state(tz: tzinfo, moment: datetime) -> tuple[timedelta, bool, str]:
    local = moment.astimezone(tz)
    offset = local.utcoffset() or timedelta()
    dst = bool(local.dst())
    return offset, dst, local.tzname() or _offset_name(offset)


def _local_midnight(tz: tzinfo, day: date) -> datetime:
    naive = datetime.combine(day, time())
    localize = getattr(tz, "localize", None)  # pytz zones need localize, not tzinfo=
    local: datetime = localize(naive) if localize is not None else naive.replace(tzinfo=tz)
    return local.astimezone(UTC)


def _offset_name(offset: timedelta) -> str:
    sign = "-" if offset < timedelta() else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


_LOOK_BACK = timedelta(days=2 * 366)


def _bisect(tz: tzinfo, low: datetime, high: datetime) -> datetime:
    """The first second in (low, high] whose state differs from the state at `low`."""
    before = _state(tz, low)
    while high - low > timedelta(seconds=1):
        mid = (low + (high - low) / 2).replace(microsecond=0)
        if _state(tz, mid) == before:
            low = mid
        else:
            high = mid
    return high


@lru_cache(maxsize=64)
def observances(tz: tzinfo, first: date, last: date) -> tuple[Observance, ...]:
    """The offsets in effect from local midnight of `first` to the end of `last`, in order.

    The first observance starts at the last switch before the range, with its real
    TZOFFSETFROM: readers such as dateutil derive the DST amount of an observance from
    TZOFFSETTO - TZOFFSETFROM, so a summer-time observance claiming FROM = TO would make
    them convert UTC to local time an hour wrong. Zones without a switch in the two years
    before get an observance with FROM = TO at the start of the range.
    """
    # Start a day early and stop a day late so the range is covered whatever the offset.
    start = _local_midnight(tz, first - timedelta(days=1))
    stop = _local_midnight(tz, last + timedelta(days=2))
    current = _state(tz, start)
    found = [Observance(start, current[0], current[0], current[1], current[2])]
    day = start
    while start - day < _LOOK_BACK:
        earlier = day - timedelta(days=1)
        if _state(tz, earlier) != current:
            onset = _bisect(tz, earlier, day)
            found = [Observance(onset, _state(tz, earlier)[0], *current)]
            break
        day = earlier
    day = start
    while day < stop:
        nxt = day + timedelta(days=1)
        state = _state(tz, nxt)
        if state != current:
            onset = _bisect(tz, day, nxt)
            state = _state(tz, onset)
            found.append(Observance(onset, current[0], *state))
            current = state
        day = nxt
    return tuple(found)


def vtimezone(tzid: str, tz: tzinfo, first: date, last: date) -> Timezone:
    """A VTIMEZONE for `tz`, correct for every wall-clock time from `first` to `last`."""
    component = Timezone()
    component.add("TZID", tzid)
    for obs in observances(tz, first, last):
        sub = TimezoneDaylight() if obs.daylight else TimezoneStandard()
        # DTSTART is local time in the offset in effect *before* the onset (RFC 5545 §3.6.5).
        sub.add("DTSTART", (obs.onset + obs.offset_from).replace(tzinfo=None))
        sub.add("TZOFFSETFROM", obs.offset_from)
        sub.add("TZOFFSETTO", obs.offset)
        sub.add("TZNAME", obs.name)
        component.add_component(sub)
    return component
