"""Calling hours: parsing, the recipient's wall clock across DST, and the exact next opening."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from dispatcher.core.hours import (
    ALWAYS,
    Hours,
    describe_opening,
    is_open,
    is_valid_zone,
    next_open,
    open_until,
    parse_holidays,
    parse_hours,
)

NONE: frozenset[date] = frozenset()
WEEK = (((540, 1080),),) * 5 + ((), ())  # mon-fri 09:00-18:00


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: float = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp() + s


def hrs(*specs: str) -> Hours:
    return parse_hours(list(specs))


# --- parsing ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("specs", "days"), [
    (["mon-fri 09:00-18:00"], WEEK),
    (["MON-Fri 9:00 - 18:00"], WEEK),
    (["mon,wed,fri 09:00-12:00"], tuple(((540, 720),) if d in (0, 2, 4) else () for d in range(7))),
    (["fri-mon 10:00-12:00"], tuple(((600, 720),) if d in (4, 5, 6, 0) else () for d in range(7))),
    (["sun-sun 22:00-24:00"], ((),) * 6 + (((1320, 1440),),)),
    (["mon 09:00-12:00", "mon 11:00-13:00", "mon 13:00-14:00", "mon 15:00-16:00"],
     (((540, 840), (900, 960)),) + ((),) * 6),
])
def test_parse_hours_builds_merged_ranges_per_weekday(specs: list[str], days: object) -> None:
    assert parse_hours(specs).days == days


def test_always_and_a_full_week_are_the_same_unrestricted_value() -> None:
    assert parse_hours(["always"]) is ALWAYS and parse_hours([" Always "]) is ALWAYS
    assert parse_hours(["mon-sun 00:00-24:00"]) == ALWAYS
    assert hash(hrs("mon 09:00-10:00")) == hash(hrs("mon 09:00-10:00"))


@pytest.mark.parametrize(("specs", "needle"), [
    (["mon-fri 9-18"], "'mon-fri 9-18': expected 'DAYS HH:MM-HH:MM'"),
    (["mon-fri 18:00-09:00"], "'mon-fri 18:00-09:00': the end must be after the start"),
    (["mon 09:00-09:00"], "end must be after the start"),
    (["funday 09:00-10:00"], "'funday 09:00-10:00': bad days 'funday'"),
    (["mon-fri-sat 09:00-10:00"], "bad days 'mon-fri-sat'"),
    (["mon 24:00-24:00"], "cannot start at 24:00"),
    (["mon 09:60-10:00"], "bad time 09:60"),
    (["mon 23:00-24:30"], "bad time 24:30"),
    (["09:00-18:00"], "expected 'DAYS HH:MM-HH:MM'"),
    ([], "use ['always']"),
    (["always", "mon 09:00-10:00"], "'always' must be the only entry"),
])
def test_parse_hours_refuses_and_names_the_bad_spec(specs: list[str], needle: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_hours(specs)
    assert needle in str(exc.value)


def test_parse_holidays_reads_iso_dates_and_names_a_bad_one() -> None:
    assert parse_holidays(["2026-12-25", "2027-01-01"]) == {date(2026, 12, 25), date(2027, 1, 1)}
    for bad in ("2026-12-5", "20261225", "2026-02-30", "Dec 25"):
        with pytest.raises(ValueError, match=f"'{bad}': expected an ISO date YYYY-MM-DD"):
            parse_holidays(["2026-12-24", bad])


def test_zones_are_checked() -> None:
    assert is_valid_zone("Asia/Kathmandu") and not is_valid_zone("Mars/Olympus")
    assert not is_valid_zone("../etc/passwd") and not is_valid_zone("")
    with pytest.raises(ValueError, match="'Mars/Olympus': not a known IANA time zone"):
        next_open(ALWAYS, NONE, ("Mars/Olympus",), 0.0)
    with pytest.raises(ValueError, match="at least one time zone"):
        next_open(ALWAYS, NONE, (), 0.0)


# --- fixed instants --------------------------------------------------------------------------

H = hrs("mon-fri 09:00-18:00")
IS_OPEN_CASES = [
    # zone, instant, open?   (2026-12-07 is a Monday; Chicago is UTC-6 in December)
    ("America/Chicago", utc(2026, 12, 7, 14, 59, 59.999), False),
    ("America/Chicago", utc(2026, 12, 7, 15), True),
    ("America/Chicago", utc(2026, 12, 7, 23, 59, 59), True),
    ("America/Chicago", utc(2026, 12, 8, 0), False),
    ("America/Chicago", utc(2026, 12, 5, 18), False),  # Saturday noon
    ("Asia/Kolkata", utc(2026, 12, 7, 3, 29, 59), False),  # UTC+5:30
    ("Asia/Kolkata", utc(2026, 12, 7, 3, 30), True),
    ("Asia/Kolkata", utc(2026, 12, 7, 12, 29, 59), True),
    ("Asia/Kolkata", utc(2026, 12, 7, 12, 30), False),
    ("Asia/Kathmandu", utc(2026, 12, 7, 3, 14, 59), False),  # UTC+5:45
    ("Asia/Kathmandu", utc(2026, 12, 7, 3, 15), True),
    ("Australia/Lord_Howe", utc(2026, 12, 6, 21, 59), False),  # UTC+11 in summer
    ("Australia/Lord_Howe", utc(2026, 12, 6, 22), True),
    ("Australia/Lord_Howe", utc(2026, 7, 5, 22, 29), False),  # UTC+10:30 in winter
    ("Australia/Lord_Howe", utc(2026, 7, 5, 22, 30), True),
]


@pytest.mark.parametrize(("zone", "t", "expected"), IS_OPEN_CASES)
def test_is_open_at_fixed_instants(zone: str, t: float, expected: bool) -> None:
    assert is_open(H, NONE, zone, t) is expected


@pytest.mark.parametrize(("spec", "zone", "t", "expected"), [
    # the second before and the second of each offset change
    ("sun 03:00-04:00", "America/New_York", utc(2026, 3, 8, 6, 59, 59), False),  # 01:59:59 EST
    ("sun 03:00-04:00", "America/New_York", utc(2026, 3, 8, 7), True),  # 03:00 EDT
    ("sun 01:00-01:30", "America/New_York", utc(2026, 11, 1, 5, 59, 59), False),  # 01:59:59 EDT
    ("sun 01:00-01:30", "America/New_York", utc(2026, 11, 1, 6), True),  # 01:00 EST
    ("sun 02:30-02:45", "Australia/Lord_Howe", utc(2026, 10, 3, 15, 29, 59), False),
    ("sun 02:30-02:45", "Australia/Lord_Howe", utc(2026, 10, 3, 15, 30), True),
    ("sun 01:30-01:45", "Australia/Lord_Howe", utc(2026, 4, 4, 14, 59, 59), False),
    ("sun 01:30-01:45", "Australia/Lord_Howe", utc(2026, 4, 4, 15), True),
])
def test_is_open_at_offset_changes(spec: str, zone: str, t: float, expected: bool) -> None:
    assert is_open(hrs(spec), NONE, zone, t) is expected


NY, LDN, SYD, LHI = "America/New_York", "Europe/London", "Australia/Sydney", "Australia/Lord_Howe"
# (hours, zones, t, next_open, open_until(next_open)): the opening that starts at or after t
NEXT_CASES = [
    # weekend -> Monday 09:00 CST; seconds-exact for a fractional t
    (H, ("America/Chicago",), utc(2026, 12, 5, 18), utc(2026, 12, 7, 15), utc(2026, 12, 8)),
    (H, ("America/Chicago",), utc(2026, 12, 7, 14, 59, 59.9), utc(2026, 12, 7, 15),
     utc(2026, 12, 8)),
    # New York spring forward (2026-03-08, 02:00 EST -> 03:00 EDT at 07:00 UTC):
    # a range starting in the gap opens at the first real instant after it
    (hrs("sun 02:30-04:00"), (NY,), utc(2026, 3, 8, 5), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)),
    # ... and a range ending in the gap closes when the gap starts
    (hrs("sun 01:00-02:30"), (NY,), utc(2026, 3, 8, 5), utc(2026, 3, 8, 6), utc(2026, 3, 8, 7)),
    # New York fall back (2026-11-01, 02:00 EDT -> 01:00 EST at 06:00 UTC): the repeated hour
    # counts twice inside a range ...
    (hrs("sun 00:30-03:00"), (NY,), utc(2026, 11, 1, 4), utc(2026, 11, 1, 4, 30),
     utc(2026, 11, 1, 8)),
    # ... a range starting inside it opens on both passes ...
    (hrs("sun 01:30-03:00"), (NY,), utc(2026, 11, 1, 4), utc(2026, 11, 1, 5, 30),
     utc(2026, 11, 1, 6)),
    (hrs("sun 01:30-03:00"), (NY,), utc(2026, 11, 1, 6), utc(2026, 11, 1, 6, 30),
     utc(2026, 11, 1, 8)),
    # ... and a range ending inside it closes at the first pass and opens on the second
    (hrs("sun 00:00-01:30"), (NY,), utc(2026, 11, 1, 4), utc(2026, 11, 1, 4),
     utc(2026, 11, 1, 5, 30)),
    (hrs("sun 00:00-01:30"), (NY,), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6),
     utc(2026, 11, 1, 6, 30)),
    # London spring forward (2026-03-29 01:00 UTC, 01:00 GMT -> 02:00 BST)
    (hrs("sun 01:30-02:30"), (LDN,), utc(2026, 3, 29), utc(2026, 3, 29, 1),
     utc(2026, 3, 29, 1, 30)),
    # London fall back (2026-10-25 01:00 UTC): 09:00 is 08:00 UTC on Saturday, 09:00 on Sunday
    (hrs("mon-sun 09:00-18:00"), (LDN,), utc(2026, 10, 24), utc(2026, 10, 24, 8),
     utc(2026, 10, 24, 17)),
    (hrs("mon-sun 09:00-18:00"), (LDN,), utc(2026, 10, 24, 17), utc(2026, 10, 25, 9),
     utc(2026, 10, 25, 18)),
    # Sydney fall back (2026-04-04 16:00 UTC, 03:00 AEDT -> 02:00 AEST): 02:30-04:00 closes at
    # the transition (the clock shows 02:00) and reopens at 02:30 AEST
    (hrs("sun 02:30-04:00"), (SYD,), utc(2026, 4, 4, 14), utc(2026, 4, 4, 15, 30),
     utc(2026, 4, 4, 16)),
    (hrs("sun 02:30-04:00"), (SYD,), utc(2026, 4, 4, 16), utc(2026, 4, 4, 16, 30),
     utc(2026, 4, 4, 18)),
    # Sydney spring forward (2026-10-03 16:00 UTC, 02:00 AEST -> 03:00 AEDT)
    (hrs("sun 02:15-05:00"), (SYD,), utc(2026, 10, 3, 14), utc(2026, 10, 3, 16),
     utc(2026, 10, 3, 18)),
    # Lord Howe's half-hour shift: spring 2026-10-03 15:30 UTC (02:00 -> 02:30, +10:30 -> +11)
    (hrs("sun 02:10-03:00"), (LHI,), utc(2026, 10, 3, 14), utc(2026, 10, 3, 15, 30),
     utc(2026, 10, 3, 16)),
    # ... and fall 2026-04-04 15:00 UTC (02:00 -> 01:30): 01:45-02:15 opens twice
    (hrs("sun 01:45-02:15"), (LHI,), utc(2026, 4, 4, 14), utc(2026, 4, 4, 14, 45),
     utc(2026, 4, 4, 15)),
    (hrs("sun 01:45-02:15"), (LHI,), utc(2026, 4, 4, 15), utc(2026, 4, 4, 15, 15),
     utc(2026, 4, 4, 15, 45)),
    # two zones: 09:00-18:00 in both New York and Los Angeles is 17:00-23:00 UTC in winter
    (H, (NY, "America/Los_Angeles"), utc(2026, 12, 7, 14), utc(2026, 12, 7, 17),
     utc(2026, 12, 7, 23)),
    # New York on EDT, London still on GMT (between the two spring-forward dates)
    (hrs("mon-fri 09:00-17:00"), (LDN, NY), utc(2026, 3, 16), utc(2026, 3, 16, 13),
     utc(2026, 3, 16, 17)),
    # ranges joined across midnight and across a wrapped day range
    (hrs("fri-mon 12:00-24:00", "sat-tue 00:00-12:00"), ("UTC",), utc(2026, 12, 4),
     utc(2026, 12, 4, 12), utc(2026, 12, 8, 12)),
    # Kathmandu, 45-minute offset
    (H, ("Asia/Kathmandu",), utc(2026, 12, 6), utc(2026, 12, 7, 3, 15), utc(2026, 12, 7, 12, 15)),
]


@pytest.mark.parametrize(("hours", "zones", "t", "opens", "closes"), NEXT_CASES)
def test_next_open_and_open_until_at_fixed_instants(
    hours: Hours, zones: tuple[str, ...], t: float, opens: float, closes: float
) -> None:
    assert next_open(hours, NONE, zones, t) == opens
    assert open_until(hours, NONE, zones, opens) == closes
    assert all(is_open(hours, NONE, z, opens) for z in zones)
    assert not all(is_open(hours, NONE, z, closes) for z in zones)


def test_open_until_refuses_a_grant_that_slipped_past_closing() -> None:
    h = hrs("mon-sun 08:00-21:00")
    t = utc(2026, 12, 7, 20, 59, 59.9)
    assert open_until(h, NONE, ("UTC",), t) == utc(2026, 12, 7, 21)
    assert open_until(h, NONE, ("UTC",), t + 0.2) is None
    assert not is_open(h, NONE, "UTC", t + 0.2)


def test_a_holiday_closes_the_whole_local_day() -> None:
    hol = parse_holidays(["2026-12-07"])
    t = utc(2026, 12, 5, 18)
    assert next_open(H, hol, ("America/Chicago",), t) == utc(2026, 12, 8, 15)
    # 2026-12-07 in Chicago starts at 06:00 UTC; 05:59 UTC is still Sunday there
    assert is_open(ALWAYS, hol, "America/Chicago", utc(2026, 12, 7, 5, 59))
    assert not is_open(ALWAYS, hol, "America/Chicago", utc(2026, 12, 7, 6))
    assert open_until(ALWAYS, hol, ("America/Chicago",), utc(2026, 12, 6)) == utc(2026, 12, 7, 6)
    assert next_open(ALWAYS, hol, ("America/Chicago",), utc(2026, 12, 7, 6)) == utc(2026, 12, 8, 6)


def test_always_is_open_at_every_instant_and_never_closes() -> None:
    t = utc(2031, 2, 3, 4, 5, 6.5)
    assert is_open(ALWAYS, NONE, "Pacific/Chatham", t)
    assert next_open(ALWAYS, NONE, (NY, "Asia/Tokyo"), t) == t
    assert open_until(ALWAYS, NONE, (NY, "Asia/Tokyo"), t) == math.inf


def test_no_opening_within_the_horizon_is_none() -> None:
    t = utc(2026, 12, 7)
    # 09:00-10:00 in Tokyo and New York never overlap
    assert next_open(hrs("mon-sun 09:00-10:00"), NONE, ("Asia/Tokyo", NY), t) is None
    # every Monday of the next 400 days is a holiday
    mondays = [(date(2026, 12, 7) + timedelta(weeks=i)).isoformat() for i in range(60)]
    assert next_open(hrs("mon 09:00-10:00"), parse_holidays(mondays), ("UTC",), t) is None
    # the horizon bounds the search
    assert next_open(H, NONE, ("UTC",), utc(2026, 12, 5), horizon_s=86400) is None
    three_days = next_open(H, NONE, ("UTC",), utc(2026, 12, 5), horizon_s=3 * 86400)
    assert three_days == utc(2026, 12, 7, 9)


def test_describe_opening_names_the_local_time_in_every_zone() -> None:
    t = utc(2026, 12, 5, 18)
    assert describe_opening(H, NONE, ("America/Chicago",), t) == (
        "09:00 America/Chicago (Mon 2026-12-07)")
    assert describe_opening(H, NONE, (NY, "America/Los_Angeles"), t) == (
        "12:00 America/New_York (Mon 2026-12-07) / 09:00 America/Los_Angeles (Mon 2026-12-07)")
    assert describe_opening(hrs("mon 09:00-10:00"), NONE, ("Asia/Tokyo", NY), t) == (
        "never within 400 days")


# --- properties against a brute-force reference ----------------------------------------------
# The reference reads the local clock with datetime and checks the ranges as generated, before
# parsing; it visits every instant at which the answer can change (minute boundaries, since all
# offsets here are whole minutes, and every offset change), so it is slow but plainly right.

Range = tuple[frozenset[int], int, int]  # weekdays (Monday = 0), start minute, end minute
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PROP_ZONES = [NY, LDN, SYD, LHI, "Asia/Kolkata", "Asia/Kathmandu", "America/Los_Angeles",
              "Pacific/Chatham", "America/St_Johns", "Asia/Tokyo", "UTC"]
T_MIN, T_MAX = int(utc(2020, 1, 1)), int(utc(2035, 12, 31))


def offset_s(zone: str, x: float) -> int:
    off = datetime.fromtimestamp(x, ZoneInfo(zone)).utcoffset()
    assert off is not None
    return int(off.total_seconds())


def transitions(zone: str, a: int, b: int) -> list[int]:
    """Offset changes in [a, b): daily samples, then a scan of the day that changed."""
    out = []
    for day in range(a, b, 86400):
        if offset_s(zone, day) != offset_s(zone, day + 86400):
            lo, hi = day, day + 86400
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset_s(zone, mid) == offset_s(zone, day) else (lo, mid)
            out.append(hi)
    return out


TRANSITIONS = sorted({x for z in PROP_ZONES for x in transitions(z, T_MIN, T_MAX)})


def ref_open(ranges: list[Range], hol: frozenset[date], zone: str, t: float) -> bool:
    local = datetime.fromtimestamp(t, ZoneInfo(zone))
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    return local.date() not in hol and any(
        local.weekday() in days and s <= minute < e for days, s, e in ranges)


def ref_open_all(ranges: list[Range], hol: frozenset[date], zones: tuple[str, ...],
                 t: float) -> bool:
    return all(ref_open(ranges, hol, z, t) for z in zones)


def change_points(zones: tuple[str, ...], t: float, u: float) -> list[float]:
    """Every instant in (t, u) where the open set can change."""
    points: list[float] = []
    m = math.floor(t / 60) * 60
    while m + 60 < u:
        points.append(m + 60)
        for z in zones:
            assert offset_s(z, m) % 60 == 0
            if offset_s(z, m) != offset_s(z, m + 60):
                points.extend(x for x in range(m + 1, m + 60)
                              if offset_s(z, x) != offset_s(z, x - 1))
        m += 60
    return sorted(p for p in points if t < p < u)


def spec(r: Range) -> str:
    days, s, e = r
    return (f"{','.join(DAY_NAMES[d] for d in sorted(days))} "
            f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}")


minutes = st.one_of(st.sampled_from(range(0, 1441, 30)), st.integers(0, 1440))


@st.composite
def day_range(draw: st.DrawFn) -> Range:
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    s, e = sorted((draw(minutes), draw(minutes)))
    if s == e:
        s, e = (s, s + 1) if s < 1440 else (1439, 1440)
    return days, s, e


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Range], frozenset[date], tuple[str, ...], float]:
    ranges = draw(st.lists(day_range(), min_size=1, max_size=3))
    zones = tuple(draw(st.lists(st.sampled_from(PROP_ZONES), min_size=1, max_size=2,
                                unique=True)))
    shift = st.one_of(st.integers(-7200, 7200), st.integers(-3 * 86400, 86400))
    near = st.builds(int.__add__, st.sampled_from(TRANSITIONS), shift)
    t = draw(st.one_of(st.integers(T_MIN, T_MAX), near)) + draw(st.sampled_from([0, 0.5, 0.999]))
    today = datetime.fromtimestamp(t, UTC).date()
    hol = frozenset(today + timedelta(days=d)
                    for d in draw(st.lists(st.integers(-1, 8), max_size=3)))
    return ranges, hol, zones, t


PROPS = settings(deadline=None, max_examples=150)


@seed(1)
@PROPS
@given(case=cases())
def test_is_open_matches_the_local_clock(
    case: tuple[list[Range], frozenset[date], tuple[str, ...], float]
) -> None:
    ranges, hol, zones, t = case
    hours = parse_hours([spec(r) for r in ranges])
    for z in zones:
        assert is_open(hours, hol, z, t) == ref_open(ranges, hol, z, t)


@seed(2)
@PROPS
@given(case=cases())
def test_next_open_is_the_first_instant_open_in_every_zone(
    case: tuple[list[Range], frozenset[date], tuple[str, ...], float]
) -> None:
    ranges, hol, zones, t = case
    nxt = next_open(parse_hours([spec(r) for r in ranges]), hol, zones, t)
    if nxt is not None:
        assert nxt >= t and ref_open_all(ranges, hol, zones, nxt)
    limit = nxt if nxt is not None else t + 3 * 86400
    before = ([t] if nxt != t else []) + change_points(zones, t, limit)
    assert not any(ref_open_all(ranges, hol, zones, p) for p in before)


@seed(3)
@PROPS
@given(case=cases())
def test_next_open_is_now_exactly_when_every_zone_is_open(
    case: tuple[list[Range], frozenset[date], tuple[str, ...], float]
) -> None:
    ranges, hol, zones, t = case
    nxt = next_open(parse_hours([spec(r) for r in ranges]), hol, zones, t)
    assert (nxt == t) == ref_open_all(ranges, hol, zones, t)


@seed(4)
@PROPS
@given(case=cases())
def test_open_until_is_the_first_instant_closed_in_some_zone(
    case: tuple[list[Range], frozenset[date], tuple[str, ...], float]
) -> None:
    ranges, hol, zones, t = case
    end = open_until(parse_hours([spec(r) for r in ranges]), hol, zones, t)
    if not ref_open_all(ranges, hol, zones, t):
        assert end is None
        return
    assert end is not None and end > t
    if end != math.inf:
        assert not ref_open_all(ranges, hol, zones, end)
    if end - t <= 3 * 86400:
        assert all(ref_open_all(ranges, hol, zones, p) for p in change_points(zones, t, end))


def test_no_zone_changes_offset_twice_within_the_sampling_step() -> None:
    """The search samples offsets once per step and bisects; two changes inside one step
    would hide each other. Checked against tzdata's own transition tables since 1970."""
    import importlib
    import itertools
    import zoneinfo

    import dispatcher.core.hours as hours_mod

    pure = importlib.import_module("zoneinfo._zoneinfo")  # the pure-Python twin of zoneinfo
    if not hasattr(pure.ZoneInfo.no_cache("UTC"), "_trans_utc"):
        pytest.skip("this Python's zoneinfo does not expose transition tables")
    for name in zoneinfo.available_timezones():
        trans = [x for x in pure.ZoneInfo.no_cache(name)._trans_utc if x >= 0]
        gaps = [b - a for a, b in itertools.pairwise(trans)]
        assert min(gaps, default=math.inf) > hours_mod._SAMPLE_S, name
