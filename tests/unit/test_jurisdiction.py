"""Jurisdiction rule sets: a region's rules only tighten the configured policy, on a fixed clock
across DST changes, and the wait says which rule holds."""

from __future__ import annotations

import csv
import re
from datetime import datetime
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import geocoder

from dispatcher.config.settings import ConfigError, load_settings
from dispatcher.core import decide
from dispatcher.core.jobs import InvalidJob, Job, parse_job
from dispatcher.core.jurisdiction import Jurisdiction, parse_rule_set, rule_set, rule_set_text
from dispatcher.core.limits import Window
from dispatcher.core.model import Outcome, WaitReason
from dispatcher.core.policies import PolicyBook
from dispatcher.core.policy import CampaignConfig, PolicyConfig, parse_number_cap
from dispatcher.core.regions import area_codes, is_known_region, region_of_number

FL = "+13055550123"  # Miami: area code 305
NY = "+12125550123"  # New York: 212
LONDON = "+442079460000"
NY_TZ, LONDON_TZ = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
DAY_MS = 86_400_000
DASH = "\u2013"  # the en dash of "08:00-20:00" in wait reasons


def at(zone: ZoneInfo, *parts: int) -> int:
    y, mo, d, h, mi = parts[:5]
    sec = parts[5] if len(parts) > 5 else 0
    return round(datetime(y, mo, d, h, mi, sec, tzinfo=zone).timestamp() * 1000)


def job(to: str, **extra: str) -> Job:
    fields = "".join(f', "{k}": "{v}"' for k, v in extra.items())
    got = parse_job(f'{{"id": "j1", "to": "{to}"{fields}}}', now=1.7e9)
    assert isinstance(got, Job), got
    return got


def book(jurisdiction: str = "us", **policy: object) -> PolicyBook:
    return PolicyBook(PolicyConfig(jurisdiction=jurisdiction, **policy), {})  # type: ignore[arg-type]


def schedule(b: PolicyBook, j: Job, now: int) -> decide.Ready | decide.Wait | decide.Finish:
    return decide.schedule(j, b.for_job(j), now, 3_600_000)


# -- Florida: 08:00-20:00 recipient time -------------------------------------------------------

@pytest.mark.parametrize(("evening", "morning", "span"), [
    ((2026, 3, 7, 20, 30), (2026, 3, 8, 8, 0), "10 h 30 min"),  # the clocks go forward
    ((2026, 10, 31, 20, 30), (2026, 11, 1, 8, 0), "12 h 30 min"),  # the clocks go back
    ((2026, 6, 15, 20, 30), (2026, 6, 16, 8, 0), "11 h 30 min"),
])
def test_a_florida_number_at_2030_local_waits_until_0800_next_day(
        evening: tuple[int, ...], morning: tuple[int, ...], span: str) -> None:
    now = at(NY_TZ, *evening)
    got = schedule(book(), job(FL), now)
    assert isinstance(got, decide.Wait) and got.reason is WaitReason.WINDOW
    assert got.until_ms == at(NY_TZ, *morning)
    assert got.until_ms - now == int(span.split()[0]) * 3_600_000 + 30 * 60_000
    assert got.detail.startswith(
        f"Florida: 08:00{DASH}20:00 recipient time, opens in {span} (08:00 ")


def test_a_florida_number_at_1959_local_may_dial() -> None:
    now = at(NY_TZ, 2026, 3, 9, 19, 59)
    assert isinstance(schedule(book(), job(FL), now), decide.Ready)
    j = job(FL)
    assert isinstance(decide.at_grant(j, book().for_job(j), now, unsure=False), decide.Dial)


def test_the_grant_after_2000_waits_even_if_the_job_was_ready_before() -> None:
    j = job(FL)
    got = decide.at_grant(j, book().for_job(j), at(NY_TZ, 2026, 3, 9, 20, 0, 1), unsure=False)
    assert isinstance(got, decide.Wait) and got.until_ms == at(NY_TZ, 2026, 3, 10, 8, 0)


def test_a_new_york_number_at_2030_may_dial_under_the_federal_floor() -> None:
    assert isinstance(schedule(book(), job(NY), at(NY_TZ, 2026, 3, 9, 20, 30)), decide.Ready)


def test_without_a_jurisdiction_nothing_changes() -> None:
    assert isinstance(schedule(book("none"), job(FL), at(NY_TZ, 2026, 3, 9, 20, 30)),
                      decide.Ready)


def test_when_the_configured_hours_hold_the_job_the_wait_names_them_not_the_region() -> None:
    b = book(calling_hours=["mon-fri 09:00-17:00"])
    got = schedule(b, job(FL), at(NY_TZ, 2026, 3, 9, 18, 0))
    assert isinstance(got, decide.Wait) and not got.detail.startswith("Florida")
    assert got.until_ms == at(NY_TZ, 2026, 3, 10, 9, 0)


# -- the job's region field ----------------------------------------------------------------------

def test_a_region_field_overrides_the_numbers_area_code() -> None:
    now = at(NY_TZ, 2026, 3, 9, 20, 30)
    assert isinstance(schedule(book(), job(FL, region="US-TX"), now), decide.Ready)
    got = schedule(book(), job(NY, region="US-FL"), now)
    assert isinstance(got, decide.Wait) and got.detail.startswith("Florida:")


@pytest.mark.parametrize("value", ['"US-XX"', '"us-fl"', '"Florida"', '"XX"', "7", '""'])
def test_an_unknown_region_is_an_invalid_job_naming_the_field(value: str) -> None:
    got = parse_job(f'{{"id": "j1", "to": "{FL}", "region": {value}}}', now=1.7e9)
    assert isinstance(got, InvalidJob) and got.error.startswith("region: expected an ISO 3166-2")


def test_region_and_subject_round_trip_through_the_wire_form() -> None:
    j = job(FL, region="GB-SCT", subject="lead-77")
    again = parse_job(__import__("json").dumps(j.to_wire()), now=1.7e9)
    assert again == j and (j.region, j.subject) == ("GB-SCT", "lead-77")


def test_a_subject_longer_than_128_characters_is_refused() -> None:
    got = parse_job(f'{{"id": "j1", "to": "{FL}", "subject": "{"x" * 129}"}}', now=1.7e9)
    assert isinstance(got, InvalidJob) and got.error.startswith("subject:")


# -- United Kingdom: no Sundays, no bank holidays ------------------------------------------------

def test_a_uk_number_on_a_sunday_waits_until_monday_0800() -> None:
    now = at(LONDON_TZ, 2026, 3, 29, 12, 0)  # a Sunday, the day British Summer Time starts
    got = schedule(book("uk"), job(LONDON), now)
    assert isinstance(got, decide.Wait) and got.until_ms == at(LONDON_TZ, 2026, 3, 30, 8, 0)
    assert got.detail.startswith(
        f"United Kingdom: Mon{DASH}Fri 08:00{DASH}21:00, Sat 09:00{DASH}21:00")


def test_a_uk_number_on_the_substitute_boxing_day_waits() -> None:
    got = schedule(book("uk"), job(LONDON), at(LONDON_TZ, 2026, 12, 28, 12, 0))
    assert isinstance(got, decide.Wait) and got.until_ms == at(LONDON_TZ, 2026, 12, 29, 8, 0)
    assert "2026-12-28 is a public holiday (Boxing Day" in got.detail


def test_a_uk_saturday_opens_at_0900() -> None:
    got = schedule(book("uk"), job(LONDON), at(LONDON_TZ, 2026, 10, 24, 8, 30))
    assert isinstance(got, decide.Wait) and got.until_ms == at(LONDON_TZ, 2026, 10, 24, 9, 0)


def test_scottish_bank_holidays_follow_the_region_field() -> None:
    now = at(LONDON_TZ, 2026, 1, 2, 12, 0)  # 2 January: a bank holiday in Scotland only
    assert isinstance(schedule(book("uk"), job(LONDON, region="GB-ENG"), now), decide.Ready)
    assert isinstance(schedule(book("uk"), job(LONDON, region="GB-SCT"), now), decide.Wait)
    # a number alone does not say which nation: every nation's bank holidays apply
    assert isinstance(schedule(book("uk"), job(LONDON), now), decide.Wait)


def test_utah_has_no_calls_on_its_legal_holidays() -> None:
    denver = ZoneInfo("America/Denver")
    pioneer_day = at(denver, 2026, 7, 24, 12, 0)
    got = schedule(book(), job("+18015550123"), pioneer_day)  # 801: Salt Lake City
    assert isinstance(got, decide.Wait) and "Pioneer Day" in got.detail


def test_alabama_has_no_calls_on_sundays_or_its_state_holidays() -> None:
    chicago = ZoneInfo("America/Chicago")
    al = job("+12055550123")  # 205: Birmingham
    sunday = schedule(book(), al, at(chicago, 2026, 3, 8, 12, 0))
    assert isinstance(sunday, decide.Wait) and sunday.until_ms == at(chicago, 2026, 3, 9, 8, 0)
    memorial = schedule(book(), al, at(chicago, 2026, 4, 27, 12, 0))  # Confederate Memorial Day
    assert isinstance(memorial, decide.Wait) and "Alabama:" in memorial.detail
    assert isinstance(schedule(book(), al, at(chicago, 2026, 4, 28, 12, 0)), decide.Ready)


# -- rules only tighten -------------------------------------------------------------------------

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REGIONS = ["US-FL", "US-OK", "US-MD", "US-WA", "US-UT", "US-MS", "US-AL", "US-LA", "US-RI", "US-TX",
           "US-NY"]


@st.composite
def configured_hours(draw: st.DrawFn) -> list[str]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        day = draw(st.sampled_from(DAYS))
        start = draw(st.integers(0, 23 * 60))
        end = draw(st.integers(start + 1, 24 * 60))
        out.append(f"{day} {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}")
    return out


@settings(max_examples=60, deadline=None)
@given(hours=configured_hours(), region=st.sampled_from(REGIONS),
       t=st.integers(at(NY_TZ, 2026, 1, 1, 0, 0), at(NY_TZ, 2027, 1, 1, 0, 0)))
def test_rules_never_open_what_the_configuration_keeps_shut(hours: list[str], region: str,
                                                           t: int) -> None:
    j = job(NY, region=region)
    tight = book("us", calling_hours=hours).for_job(j).window(j, t, None)
    plain = book("none", calling_hours=hours).for_job(j).window(j, t, None)
    if tight.open:
        assert plain.open
        assert tight.until_ms is not None and plain.until_ms is not None
        assert tight.until_ms <= plain.until_ms
    if not tight.open and not plain.open and tight.until_ms and plain.until_ms:
        assert tight.until_ms >= plain.until_ms


def test_a_region_override_sets_hours_and_the_rule_still_tightens_them() -> None:
    b = book(regions={"US-FL": {"calling_hours": ["always"]}})
    assert isinstance(schedule(b, job(FL), at(NY_TZ, 2026, 3, 9, 20, 30)), decide.Wait)
    b = book(regions={"US-FL": {"calling_hours": ["mon-sun 10:00-18:00"]}})
    got = schedule(b, job(FL), at(NY_TZ, 2026, 3, 9, 9, 0))
    assert isinstance(got, decide.Wait) and got.until_ms == at(NY_TZ, 2026, 3, 9, 10, 0)
    assert isinstance(schedule(b, job(NY), at(NY_TZ, 2026, 3, 9, 9, 0)), decide.Ready)


# -- caps ---------------------------------------------------------------------------------------

def test_rolling_caps_parse() -> None:
    assert parse_number_cap("3/24h") == Window(86400, 3)
    assert parse_number_cap("1/90m") == Window(5400, 1)
    assert parse_number_cap("2/7d") == Window(7 * 86400, 2)
    for bad in ("0/24h", "3/0h", "3/24x", "3/h"):
        with pytest.raises(ValueError, match="rolling window"):
            parse_number_cap(bad)


def test_subject_caps_are_the_configured_ones_plus_the_regions() -> None:
    now = at(NY_TZ, 2026, 3, 9, 12, 0)
    b = book(max_calls_per_subject=["5/7d"])
    assert b.default_subject_caps() == ((5, 7 * DAY_MS),)
    assert b.for_job(job(FL)).subject_caps(job(FL), now) == ((3, DAY_MS), (5, 7 * DAY_MS))
    assert b.for_job(job(NY)).subject_caps(job(NY), now) == ((5, 7 * DAY_MS),)
    assert book("none").for_job(job(FL)).subject_caps(job(FL), now) == ()
    camp = PolicyBook(PolicyConfig(), {"spring": CampaignConfig(max_calls_per_subject=["2/24h"])}
                      ).grant_campaigns()
    assert camp["spring"]["subject_caps"] == [[2, DAY_MS]]


# -- configuration errors -----------------------------------------------------------------------

PROV = '[providers.default]\nkind = "telecho"\nbase_url = "http://x/api"\napi_key_env = "K"\n'


def config_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(PROV + text)
    with pytest.raises(ConfigError) as exc:
        load_settings(str(path))
    return str(exc.value)


def test_an_unknown_jurisdiction_names_the_key_and_the_choices(tmp_path: Path) -> None:
    msg = config_error(tmp_path, '[policy]\njurisdiction = "fr"\n')
    assert "policy.jurisdiction" in msg and "'us'" in msg and "'uk'" in msg


def test_an_unknown_region_key_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, '[policy.regions."US-ZZ"]\ncalling_hours = ["always"]\n')
    assert "policy.regions" in msg and "'US-ZZ': not a known region" in msg


def test_an_unparsable_subject_cap_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, '[policy]\nmax_calls_per_subject = ["3 per day"]\n')
    assert "policy.max_calls_per_subject" in msg and "'3 per day'" in msg


def test_an_unknown_key_in_a_region_table_is_named(tmp_path: Path) -> None:
    msg = config_error(tmp_path, '[policy.regions."US-FL"]\npredial_url = "http://x"\n')
    assert 'policy.regions.US-FL.predial_url' in msg


# -- the data files -----------------------------------------------------------------------------

RULE_KEY = re.compile(r"^(calling_hours|public_holidays|max_calls_per_subject)\s*=")
CITATION = re.compile(r"§|\bCFR\b|\bRCW\b|\bR\.S\. \d|Admin\. Code r\. \d|Ofcom")


@pytest.mark.parametrize("name", [j for j in Jurisdiction if j is not Jurisdiction.NONE])
def test_every_rule_row_has_a_source_comment_and_the_file_parses(name: Jurisdiction) -> None:
    text = rule_set_text(name)
    lines = text.splitlines()
    rows = [i for i, line in enumerate(lines) if RULE_KEY.match(line)]
    assert rows
    for i in rows:
        above = lines[i - 1]
        assert above.startswith("# source: ") and len(above) > 40, f"{name}.toml line {i + 1}"
        assert CITATION.search(above), f"{name}.toml line {i + 1}: no citation"
    assert "NOT LEGAL ADVICE" in text and "only tighten" in text
    parsed = parse_rule_set(name, text)
    assert parsed == rule_set(name)
    assert all(is_known_region(code) for code in parsed.regions)


def test_the_us_rule_set_has_the_federal_floor_and_florida_and_oklahoma() -> None:
    us = rule_set(Jurisdiction.US)
    assert us is not None
    assert us.default.hours.days[0] == ((8 * 60, 21 * 60),)
    for state in ("US-FL", "US-OK"):
        assert us.regions[state].hours.days == (((8 * 60, 20 * 60),),) * 7
        assert us.regions[state].subject_caps == (Window(86400, 3),)


def test_the_area_code_table_parses_and_agrees_with_libphonenumber() -> None:
    text = resources.files("dispatcher.core.rules").joinpath("us_area_codes.csv").read_text()
    assert "NANPA" in text.split("area_code,region")[0]
    rows = list(csv.DictReader(x for x in text.splitlines() if not x.startswith("#")))
    assert len(rows) == len(area_codes()) > 300
    for row in rows:
        assert re.fullmatch(r"[2-9][0-9]{2}", row["area_code"]) and is_known_region(row["region"])
        number = phonenumbers.parse(f"+1{row['area_code']}2345678")
        where = geocoder.description_for_valid_number(number, "en")
        assert where, row
    assert (area_codes()["305"], area_codes()["405"], area_codes()["212"]) == (
        "US-FL", "US-OK", "US-NY")


def test_region_of_a_number() -> None:
    assert region_of_number(FL) == "US-FL"
    assert region_of_number("+18005550123") == "US"  # toll-free: the country only
    assert region_of_number(LONDON) == "GB"


# -- a region rule that can never open: blocked, reason region ---------------------------------

def expiring(to: str, expires_at: str, now: int) -> Job:
    got = parse_job(f'{{"id": "j1", "to": "{to}", "expires_at": "{expires_at}"}}',
                    now=now / 1000)
    assert isinstance(got, Job), got
    return got


def test_a_florida_job_expiring_before_0800_ends_blocked_region() -> None:
    """At 20:30 Miami time a job that expires at 23:00 can never be called under Florida's
    hours (the federal 21:00 floor would have let it wait, here nothing opens)."""
    now = at(NY_TZ, 2026, 3, 9, 20, 30)
    j = expiring(FL, "2026-03-09T23:00:00-04:00", now)
    got = schedule(book(), j, now)
    assert isinstance(got, decide.Finish) and got.outcome is Outcome.BLOCKED
    assert got.fields["reason"] == "region"
    assert got.fields["error_message"].startswith(f"Florida: 08:00{DASH}20:00 recipient time")
    late = decide.at_grant(j, book().for_job(j), now, unsure=False)
    assert isinstance(late, decide.Finish) and late.fields["reason"] == "region"


def test_a_region_rule_that_shuts_the_configured_hours_entirely_ends_blocked_region() -> None:
    """Configured hours 20:00-23:00 and Florida's 08:00-20:00 share no minute: the region
    forbids every call the configuration allows."""
    b = book(calling_hours=["mon-sun 20:00-23:00"])
    got = schedule(b, job(FL), at(NY_TZ, 2026, 3, 9, 12, 0))
    assert isinstance(got, decide.Finish) and got.fields["reason"] == "region"
    assert isinstance(schedule(b, job(NY), at(NY_TZ, 2026, 3, 9, 12, 0)), decide.Wait)


def test_configured_hours_that_never_open_stay_window_never_open() -> None:
    """Expiring before the configured hours open is the configuration's doing, not the
    region's: the reason stays window_never_open."""
    b = book(calling_hours=["mon-sun 09:00-10:00"])
    now = at(NY_TZ, 2026, 3, 9, 12, 0)
    j = expiring(FL, "2026-03-09T23:00:00-04:00", now)
    got = schedule(b, j, now)
    assert isinstance(got, decide.Finish) and got.fields["reason"] == "window_never_open"


# -- Rhode Island: weekdays 09:00-18:00, Saturdays 10:00-17:00, no holidays -----------------------

RI = "+14015550123"  # Providence: area code 401


def test_rhode_island_closes_at_1800_on_weekdays_and_1700_on_saturdays() -> None:
    friday = schedule(book(), job(RI), at(NY_TZ, 2026, 3, 6, 18, 30))
    assert isinstance(friday, decide.Wait) and friday.until_ms == at(NY_TZ, 2026, 3, 7, 10, 0)
    assert friday.detail.startswith("Rhode Island: ")
    saturday = schedule(book(), job(RI), at(NY_TZ, 2026, 3, 7, 17, 30))
    assert isinstance(saturday, decide.Wait)
    assert saturday.until_ms == at(NY_TZ, 2026, 3, 9, 9, 0)  # no Sunday calls
    assert isinstance(schedule(book(), job(RI), at(NY_TZ, 2026, 3, 9, 9, 0)), decide.Ready)


def test_rhode_island_has_no_calls_on_victory_day() -> None:
    got = schedule(book(), job(RI), at(NY_TZ, 2026, 8, 10, 12, 0))  # second Monday of August
    assert isinstance(got, decide.Wait) and "Victory Day" in got.detail
    assert got.until_ms == at(NY_TZ, 2026, 8, 11, 9, 0)
