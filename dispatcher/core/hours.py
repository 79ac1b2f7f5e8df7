"""Calling hours in the recipient's local time, pure and exact to the second.

The window follows the recipient's wall clock: an instant is open when the local clock in that
zone shows an allowed weekday, a date that is not a holiday, and a time of day inside one of the
configured ranges. Everything else follows from that one rule, including DST:

- spring forward: local times in the gap never occur, so a range starting at 02:30 on that day
  opens at the first real instant after the gap (03:00 by the new clock), and a range ending in
  the gap closes when the gap starts;
- fall back: the repeated hour is inside the window as often as the clock shows it, so a range
  that covers it is an hour longer that day, and a range that ends inside it closes at the first
  pass and opens again on the second (the clock shows allowed times again).

A number that maps to several zones is open only when every zone is open. The search works on
whole intervals computed from the local calendar and the zone's offset changes, never by
stepping through minutes. Offset changes are found by sampling once a day and bisecting to the
second; since 1970 no zone in tzdata changes offset twice within a week, so none is missed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_S = 86400
DEFAULT_HORIZON_S = 400.0 * DAY_S
_SAMPLE_S = DAY_S
_EPOCH_ORD = date(1970, 1, 1).toordinal()
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPEC_RE = re.compile(r"^\s*([a-z,\- ]+?)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EXPECTED = "expected 'DAYS HH:MM-HH:MM' (e.g. 'mon-fri 09:00-18:00', 'sat,sun 10:00-14:00')"

Interval = tuple[float, float]


@dataclass(frozen=True)
class Hours:
    """Open time-of-day ranges per weekday (Monday first), in minutes, sorted and merged."""

    days: tuple[tuple[tuple[int, int], ...], ...]
    always: bool = False

    @property
    def never(self) -> bool:
        """No day has any open range: no instant can ever be open."""
        return not any(self.days)


ALWAYS = Hours(days=((((0, 1440),),) * 7), always=True)
"""No restriction by the clock (holidays, if any, still close whole days)."""


def parse_hours(specs: list[str]) -> Hours:
    """Parse ``["mon-fri 09:00-18:00", "sat 10:00-14:00"]`` or ``["always"]``."""
    if not specs:
        raise ValueError("expected at least one range; use ['always'] for no restriction")
    if any(s.strip().lower() == "always" for s in specs):
        if len(specs) > 1:
            raise ValueError("'always' must be the only entry")
        return ALWAYS
    per_day: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    for spec in specs:
        spec_days, rng = _parse_spec(spec)
        for day in spec_days:
            per_day[day].append(rng)
    days = tuple(_merge_minutes(r) for r in per_day)
    return ALWAYS if days == ALWAYS.days else Hours(days=days)


def _parse_spec(spec: str) -> tuple[list[int], tuple[int, int]]:
    match = _SPEC_RE.match(spec.lower())
    if not match:
        raise ValueError(f"{spec!r}: {_EXPECTED}")
    days = _parse_days(spec, match.group(1))
    start = _minutes(spec, int(match.group(2)), int(match.group(3)))
    end = _minutes(spec, int(match.group(4)), int(match.group(5)))
    if start >= 1440:
        raise ValueError(f"{spec!r}: a range cannot start at 24:00")
    if end <= start:
        raise ValueError(
            f"{spec!r}: the end must be after the start; write a range past midnight as two "
            "entries (e.g. 'fri 22:00-24:00' and 'sat 00:00-02:00')"
        )
    return days, (start, end)


def _parse_days(spec: str, text: str) -> list[int]:
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        ends = part.split("-")
        if len(ends) > 2 or any(e not in _DAY_NAMES for e in ends):
            raise ValueError(
                f"{spec!r}: bad days {part!r}; expected day names mon..sun, ranges like "
                f"'mon-fri' or 'fri-mon', separated by commas"
            )
        first, last = _DAY_NAMES.index(ends[0]), _DAY_NAMES.index(ends[-1])
        out.extend((first + i) % 7 for i in range((last - first) % 7 + 1))
    return out


def _minutes(spec: str, hh: int, mm: int) -> int:
    if mm > 59 or hh > 24 or (hh == 24 and mm != 0):
        raise ValueError(f"{spec!r}: bad time {hh:02d}:{mm:02d}; expected 00:00 to 24:00")
    return hh * 60 + mm


def _merge_minutes(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def parse_holidays(dates: list[str]) -> frozenset[date]:
    """Parse ISO dates (``"2026-12-25"``), each local to the recipient."""
    out: set[date] = set()
    for text in dates:
        try:
            if not _DATE_RE.match(text):
                raise ValueError
            out.add(date.fromisoformat(text))
        except ValueError:
            raise ValueError(f"{text!r}: expected an ISO date YYYY-MM-DD") from None
    return frozenset(out)


def is_valid_zone(name: str) -> bool:
    """True when ``name`` is an IANA zone that zoneinfo can load."""
    try:
        _zone(name)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"{name!r}: not a known IANA time zone") from None


@lru_cache(maxsize=64)
def _holiday_days(holidays: frozenset[date]) -> frozenset[int]:
    return frozenset(d.toordinal() - _EPOCH_ORD for d in holidays)


def _offset(tz: ZoneInfo, instant: int) -> int:
    off = datetime.fromtimestamp(instant, UTC).astimezone(tz).utcoffset()
    assert off is not None
    return int(off.total_seconds())


def _segments(tz: ZoneInfo, begin: float, finish: float) -> list[tuple[float, float, int]]:
    """Split [a, b) into stretches of constant UTC offset: (start, end, offset)."""
    off = _offset(tz, math.floor(begin))
    segs: list[tuple[float, float, int]] = []
    start: float = begin
    probe, stop = math.floor(begin), math.ceil(finish)
    while probe < stop:
        nxt = min(probe + _SAMPLE_S, stop)
        if _offset(tz, nxt) == off:
            probe = nxt
            continue
        lo, hi = probe, nxt  # offset changes in (lo, hi]: find the first second it differs
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if _offset(tz, mid) == off else (lo, mid)
        if hi >= finish:
            break
        segs.append((start, hi, off))
        start, off, probe = hi, _offset(tz, hi), hi
    segs.append((start, finish, off))
    return segs


def _zone_open(hours: Hours, holidays: frozenset[date], tz: ZoneInfo, begin: float, finish: float
               ) -> list[Interval]:
    """The open instants within [a, b) in one zone, as sorted, merged half-open intervals."""
    hdays = _holiday_days(holidays)
    out: list[Interval] = []
    for seg_start, seg_end, off in _segments(tz, begin, finish):
        first = math.floor((seg_start + off) / DAY_S) - 1
        last = math.floor((seg_end + off) / DAY_S) + 1
        for day in range(first, last + 1):
            if day in hdays:
                continue
            base = day * DAY_S - off
            for m0, m1 in hours.days[(day + _EPOCH_ORD - 1) % 7]:
                lo, hi = max(base + m0 * 60, seg_start), min(base + m1 * 60, seg_end)
                if lo >= hi:
                    continue
                if out and lo <= out[-1][1]:
                    out[-1] = (out[-1][0], max(out[-1][1], hi))
                else:
                    out.append((lo, hi))
    return out


def _intersect(xs: list[Interval], ys: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    left = right = 0
    while left < len(xs) and right < len(ys):
        lo, hi = max(xs[left][0], ys[right][0]), min(xs[left][1], ys[right][1])
        if lo < hi:
            out.append((lo, hi))
        if xs[left][1] < ys[right][1]:
            left += 1
        else:
            right += 1
    return out


def _tzs(zones: tuple[str, ...]) -> list[ZoneInfo]:
    if not zones:
        raise ValueError("at least one time zone is needed")
    return [_zone(z) for z in zones]


def _open_all(hours: Hours, holidays: frozenset[date], zones: tuple[str, ...], begin: float,
              finish: float) -> list[Interval]:
    tzs = _tzs(zones)
    ivs = _zone_open(hours, holidays, tzs[0], begin, finish)
    for tz in tzs[1:]:
        if not ivs:
            break
        ivs = _intersect(ivs, _zone_open(hours, holidays, tz, begin, finish))
    return ivs


def _unrestricted(hours: Hours, holidays: frozenset[date]) -> bool:
    return hours.always and not holidays


def is_open(hours: Hours, holidays: frozenset[date], zone: str, instant: float) -> bool:
    """True when the window is open at instant ``t`` (epoch seconds) in ``zone``."""
    tz = _zone(zone)
    if _unrestricted(hours, holidays):
        return True
    ivs = _zone_open(hours, holidays, tz, instant, instant + 1)
    return bool(ivs) and ivs[0][0] == instant


def next_open(hours: Hours, holidays: frozenset[date], zones: tuple[str, ...], instant: float,
              horizon_s: float = DEFAULT_HORIZON_S) -> float | None:
    """The earliest t' >= t open in every zone, or None if none before t + horizon_s."""
    _tzs(zones)
    if _unrestricted(hours, holidays):
        return instant
    if hours.never:
        return None
    end, begin, span = instant + horizon_s, instant, 8.0 * DAY_S
    while begin < end:
        finish = min(begin + span, end)
        ivs = _open_all(hours, holidays, zones, begin, finish)
        if ivs:
            return ivs[0][0]
        begin, span = finish, span * 4
    return None


def open_until(hours: Hours, holidays: frozenset[date], zones: tuple[str, ...], instant: float,
               horizon_s: float = DEFAULT_HORIZON_S) -> float | None:
    """When the opening that contains ``t`` ends; None if closed at ``t``.

    ``math.inf`` when the window does not close within ``horizon_s`` (e.g. ``["always"]``).
    """
    _tzs(zones)
    if _unrestricted(hours, holidays):
        return math.inf
    span = 2.0 * DAY_S
    while True:
        finish = min(instant + span, instant + horizon_s)
        ivs = _open_all(hours, holidays, zones, instant, finish)
        if not ivs or ivs[0][0] != instant:
            return None
        if ivs[0][1] < finish:
            return ivs[0][1]
        if finish >= instant + horizon_s:
            return math.inf
        span *= 4


def zone_label(name: str) -> str:
    """A zone's name for people: ``Etc/GMT-7`` (POSIX signs, inverted) is ``UTC+07:00``."""
    if name in ("UTC", "Etc/UTC", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT"):
        return "UTC"
    if name.startswith("Etc/GMT") and name[7:8] in ("+", "-") and name[8:].isdigit():
        east = name[7] == "-"
        return f"UTC{'+' if east else '-'}{int(name[8:]):02d}:00"
    return name


def describe_instant(zones: tuple[str, ...], instant: float) -> str:
    """``"09:00 America/Chicago (Mon 2026-12-07)"``, one part per zone joined by " / "."""
    parts = []
    for name in zones:
        dt = datetime.fromtimestamp(instant, UTC).astimezone(_zone(name))
        clock = f"{dt:%H:%M}" if dt.second == 0 else f"{dt:%H:%M:%S}"
        day = _DAY_NAMES[dt.weekday()].capitalize()
        parts.append(f"{clock} {zone_label(name)} ({day} {dt.date().isoformat()})")
    return " / ".join(parts)


def describe_opening(hours: Hours, holidays: frozenset[date], zones: tuple[str, ...], instant: float
                     ) -> str:
    """Human text for the next opening at or after ``t``, for "waiting until ..." messages."""
    nxt = next_open(hours, holidays, zones, instant)
    if nxt is None:
        return f"never within {DEFAULT_HORIZON_S / DAY_S:.0f} days"
    return describe_instant(zones, nxt)
