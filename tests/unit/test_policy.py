"""The policy configuration: loading, naming bad items, campaign merging and the decisions."""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dispatcher.core.hours import ALWAYS, parse_hours
from dispatcher.core.jobs import Job
from dispatcher.core.limits import Window
from dispatcher.core.model import BlockReason
from dispatcher.core.numbers import time_zones
from dispatcher.core.policies import JobPolicy
from dispatcher.core.policy import (
    GLOBAL_KEYS,
    CampaignConfig,
    CampaignMap,
    EffectivePolicy,
    PolicyConfig,
    RedialRule,
    calling_decision,
    effective_policy,
    parse_duration,
    parse_number_cap,
    recipient_zones,
    redial_after,
)


class Root(BaseModel):
    """The two tables as ``Settings`` holds them."""

    model_config = ConfigDict(extra="forbid")
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    campaigns: CampaignMap = Field(default_factory=dict)


def load(text: str) -> Root:
    return Root.model_validate(tomllib.loads(text))


def load_errors(text: str) -> str:
    """The messages as the configuration loader prints them: ``dotted.key: message``."""
    with pytest.raises(ValidationError) as exc:
        load(text)
    return "\n".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                     for e in exc.value.errors())


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: float = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp() + s


EXAMPLE = """
[policy]
calling_hours = ["mon-sun 08:00-21:00"]
holidays = ["2026-12-25"]
default_timezone = "America/Chicago"
number_check = "possible"
max_calls_per_number = ["2/day", "5/week", "1/3600s"]
predial_url = "https://hooks.example.com/predial"
predial_timeout_s = 1.5
dnc_hashed = true

[policy.redial]
user_busy        = { after = "10m", max = 2 }
user_unavailable = { after = 7200, max = 1 }

[campaigns.winter-sale]
calling_hours = ["mon-fri 09:00-18:00"]
max_concurrent_calls = 10
share = 2.5

[campaigns.quiet]
redial = {}
"""


# --- loading ---------------------------------------------------------------------------------

def test_defaults_are_the_documented_ones() -> None:
    p = PolicyConfig()
    assert p.calling_hours == ["mon-sun 08:00-21:00"] and p.holidays == []
    assert (p.default_timezone, p.number_check, p.max_calls_per_number) == ("", "valid", [])
    assert (p.predial_url, p.predial_timeout_s, p.dnc_hashed, p.redial) == ("", 2.0, False, {})
    c = CampaignConfig()
    assert all(getattr(c, k) is None for k in PolicyConfig.model_fields if k not in GLOBAL_KEYS)
    assert (p.require_consent, p.revoke_adds_dnc) == (False, True)
    assert (c.max_concurrent_calls, c.share) == (None, 1.0)


def test_a_campaign_can_override_every_policy_key() -> None:
    assert set(PolicyConfig.model_fields) - GLOBAL_KEYS < set(CampaignConfig.model_fields)
    assert not GLOBAL_KEYS & set(CampaignConfig.model_fields)


def test_a_full_configuration_loads_and_parses() -> None:
    root = load(EXAMPLE)
    pol = effective_policy(root.policy, root.campaigns, None)
    assert pol.hours == parse_hours(["mon-sun 08:00-21:00"])
    assert pol.holidays == {date(2026, 12, 25)}
    assert (pol.default_timezone, pol.number_check) == ("America/Chicago", "possible")
    assert pol.number_caps == (Window(86400, 2), Window(7 * 86400, 5), Window(3600, 1))
    assert (pol.predial_url, pol.predial_timeout_s) == ("https://hooks.example.com/predial", 1.5)
    assert pol.dnc_hashed is True
    assert pol.redial == {"user_busy": RedialRule(after=600, max=2),
                          "user_unavailable": RedialRule(after=7200, max=1)}
    assert (pol.max_concurrent_calls, pol.share, pol.campaign) == (None, 1.0, None)


BAD = [
    ('calling_hours = ["mon-fri 9-18"]',
     "policy.calling_hours: 'mon-fri 9-18': expected 'DAYS HH:MM-HH:MM'"),
    ('calling_hours = ["fri 22:00-02:00"]',
     "policy.calling_hours: 'fri 22:00-02:00': the end must be after the start"),
    ("calling_hours = []", "policy.calling_hours: expected at least one range"),
    ('holidays = ["2026-12-25", "2026-13-01"]',
     "policy.holidays: '2026-13-01': expected an ISO date YYYY-MM-DD"),
    ('default_timezone = "Mars/Base"',
     "policy.default_timezone: 'Mars/Base': not a known IANA time zone"),
    ('number_check = "strict"', "policy.number_check: Input should be 'valid' or 'possible'"),
    ('max_calls_per_number = ["2/day", "2/fortnight"]',
     "policy.max_calls_per_number: '2/fortnight': expected 'N/second|minute|hour|day|week'"),
    ('max_calls_per_number = ["0/week"]', "policy.max_calls_per_number: '0/week'"),
    ('predial_url = "ftp://hooks"',
     "policy.predial_url: 'ftp://hooks': expected an http:// or https:// URL"),
    ('predial_url = "https://"', "policy.predial_url: 'https://'"),
    ("predial_timeout_s = 0", "policy.predial_timeout_s: Input should be greater than 0"),
    ("calling_hour = []", "policy.calling_hour: Extra inputs are not permitted"),
    ('redial.human = { after = "1h", max = 1 }',
     "policy.redial: 'human': a call a person answered is never redialled"),
    ('redial.voicemail = { after = "1h", max = 1 }',
     "policy.redial: 'voicemail': expected one of user_busy, user_unavailable, user_rejected, "
     "machine, unknown"),
    ('redial.user_busy = { after = "10 minutes", max = 2 }',
     "policy.redial.user_busy.after: '10 minutes': expected a positive duration"),
    ('redial.user_busy = { after = "10m", max = -1 }',
     "policy.redial.user_busy.max: Input should be greater than or equal to 0"),
    ('redial.user_busy = { after = "10m" }', "policy.redial.user_busy.max: Field required"),
    ('redial.user_busy = { after = "10m", max = 1, tries = 3 }',
     "policy.redial.user_busy.tries: Extra inputs are not permitted"),
    ("registries.us = { applies_to = [] }",
     "policy.registries.us.applies_to: expected at least one country or region code"),
    ('registries.us = { applies_to = ["US-ZZ"] }',
     "policy.registries.us.applies_to: 'US-ZZ': not a known region"),
    ('registries.us = { applies_to = ["US"], max_age_days = 0 }',
     "policy.registries.us.max_age_days: Input should be greater than or equal to 1"),
    ('registries."u s" = { applies_to = ["US"] }',
     "policy.registries: 'u s': a registry name is 1-64 of"),
    ('require_consent = "yes please"', "policy.require_consent: Input should be a valid boolean"),
]


@pytest.mark.parametrize(("line", "needle"), BAD)
def test_a_bad_policy_item_is_named(line: str, needle: str) -> None:
    assert needle in load_errors(f"[policy]\n{line}\n")


@pytest.mark.parametrize(("line", "needle"), BAD[:12])
def test_a_bad_campaign_item_is_named(line: str, needle: str) -> None:
    text = load_errors(f"[campaigns.spring]\n{line}\n")
    assert needle.replace("policy.", "campaigns.spring.", 1) in text


@pytest.mark.parametrize(("text", "needle"), [
    ("[campaigns.x]\nshare = 0\n", "campaigns.x.share: Input should be greater than 0"),
    ("[campaigns.x]\nshare = inf\n", "campaigns.x.share"),
    ("[campaigns.x]\nmax_concurrent_calls = 0\n", "campaigns.x.max_concurrent_calls"),
    ('[campaigns."bad name!"]\n', "campaigns: 'bad name!': a campaign name is 1-64 of"),
    ("[campaigns.x.redial]\nhuman = { after = 60, max = 1 }\n", "campaigns.x.redial: 'human'"),
])
def test_a_bad_campaign_table_is_named(text: str, needle: str) -> None:
    assert needle in load_errors(text)


def test_every_bad_item_is_reported_at_once() -> None:
    text = load_errors('[policy]\ncalling_hours = ["9-5"]\nholidays = ["tomorrow"]\n'
                       "[campaigns.x]\nshare = -1\n")
    assert "'9-5'" in text and "'tomorrow'" in text and "campaigns.x.share" in text


@pytest.mark.parametrize(("value", "seconds"), [
    ("30s", 30.0), ("10m", 600.0), ("2h", 7200.0), ("1d", 86400.0), (" 1.5h ", 5400.0),
    (45, 45.0), (0.5, 0.5),
])
def test_parse_duration_reads_units_and_plain_seconds(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["0s", 0, -5, True, "10", "10 minutes", "", "1w", math.inf,
                                   math.nan])
def test_parse_duration_refuses_and_names_the_value(value: str | float) -> None:
    with pytest.raises(ValueError, match="expected a positive duration"):
        parse_duration(value)


@pytest.mark.parametrize(("text", "window"), [
    ("2/day", Window(86400, 2)), ("5/week", Window(604800, 5)), (" 3 / week ", Window(604800, 3)),
    ("1/3600s", Window(3600, 1)), ("4/hour", Window(3600, 4)),
])
def test_parse_number_cap_reads_windows_including_weeks(text: str, window: Window) -> None:
    assert parse_number_cap(text) == window


@pytest.mark.parametrize("text", ["0/week", "0/day", "2/fortnight", "two/day", "2/", "/week"])
def test_parse_number_cap_refuses_and_names_the_text(text: str) -> None:
    with pytest.raises(ValueError, match=f"'{text}': expected"):
        parse_number_cap(text)


# --- merging ---------------------------------------------------------------------------------

def test_a_campaign_overrides_only_the_keys_it_sets() -> None:
    root = load(EXAMPLE)
    base = effective_policy(root.policy, root.campaigns, None)
    sale = effective_policy(root.policy, root.campaigns, "winter-sale")
    assert sale.hours == parse_hours(["mon-fri 09:00-18:00"]) != base.hours
    assert (sale.max_concurrent_calls, sale.share, sale.campaign) == (10, 2.5, "winter-sale")
    for same in ("holidays", "default_timezone", "number_check", "number_caps", "predial_url",
                 "predial_timeout_s", "dnc_hashed", "redial_rules"):
        assert getattr(sale, same) == getattr(base, same), same


def test_a_campaign_table_replaces_the_policy_table_whole() -> None:
    root = load(EXAMPLE + '[campaigns.busy-only.redial]\nuser_busy = { after = "1m", max = 5 }\n')
    assert effective_policy(root.policy, root.campaigns, "quiet").redial == {}
    assert effective_policy(root.policy, root.campaigns, "busy-only").redial == {
        "user_busy": RedialRule(after=60, max=5)}


def test_an_unknown_campaign_follows_the_policy_table() -> None:
    root = load(EXAMPLE)
    unknown = effective_policy(root.policy, root.campaigns, "no-such-campaign")
    assert unknown == effective_policy(root.policy, root.campaigns, None)
    assert (unknown.campaign, unknown.share, unknown.max_concurrent_calls) == (None, 1.0, None)


def test_effective_policy_is_cached_per_configuration() -> None:
    root = load(EXAMPLE)
    a = effective_policy(root.policy, root.campaigns, "winter-sale")
    assert effective_policy(root.policy, root.campaigns, "winter-sale") is a
    assert effective_policy(root.policy, root.campaigns, "x") is effective_policy(
        root.policy, root.campaigns, "y")
    other = load(EXAMPLE.replace("share = 2.5", "share = 3"))
    assert effective_policy(other.policy, other.campaigns, "winter-sale").share == 3.0


def test_configuration_and_views_are_immutable_values() -> None:
    root = load(EXAMPLE)
    with pytest.raises(ValidationError):
        root.policy.dnc_hashed = False
    pol = effective_policy(root.policy, root.campaigns, "winter-sale")
    assert isinstance(hash(pol), int) and isinstance(pol, EffectivePolicy)


# --- recipient zones, redials ----------------------------------------------------------------

NO_DEFAULT = effective_policy(PolicyConfig(), {}, None)
WITH_DEFAULT = effective_policy(PolicyConfig(default_timezone="Europe/Berlin"), {}, None)


@pytest.mark.parametrize(("job_tz", "number_zones", "pol", "zones"), [
    ("America/Chicago", ("America/New_York",), WITH_DEFAULT, ("America/Chicago",)),
    (None, ("America/New_York", "America/Chicago"), WITH_DEFAULT,
     ("America/New_York", "America/Chicago")),
    ("", ("Asia/Tokyo", "Asia/Tokyo", "Etc/Unknown"), NO_DEFAULT, ("Asia/Tokyo",)),
    (None, ("Etc/Unknown",), WITH_DEFAULT, ("Europe/Berlin",)),
    (None, (), WITH_DEFAULT, ("Europe/Berlin",)),
    (None, ("Etc/Unknown",), NO_DEFAULT, ()),
    (None, (), NO_DEFAULT, ()),
])
def test_recipient_zones_prefers_job_then_number_then_default(
    job_tz: str | None, number_zones: tuple[str, ...], pol: EffectivePolicy,
    zones: tuple[str, ...]
) -> None:
    assert recipient_zones(job_tz, number_zones, pol) == zones


def test_redial_after_waits_until_the_rule_is_used_up() -> None:
    pol = effective_policy(load(EXAMPLE).policy, {}, None)
    assert [redial_after(pol, "user_busy", n) for n in range(4)] == [600, 600, None, None]
    assert redial_after(pol, "user_unavailable", 0) == 7200
    assert redial_after(pol, "user_rejected", 0) is None
    assert redial_after(pol, "human", 0) is None
    zero = effective_policy(PolicyConfig(redial={"machine": RedialRule(after=60, max=0)}), {}, None)
    assert redial_after(zero, "machine", 0) is None


# --- calling decisions -----------------------------------------------------------------------

OFFICE = effective_policy(PolicyConfig(calling_hours=["mon-fri 09:00-18:00"]), {}, None)
CHI = ("America/Chicago",)
SAT_NOON = utc(2026, 12, 5, 18)  # Saturday 12:00 in Chicago
MON_OPEN = utc(2026, 12, 7, 15)  # Monday 09:00 in Chicago


def test_decision_open_says_until_when() -> None:
    w = calling_decision(OFFICE, CHI, MON_OPEN + 3600, None)
    assert (w.state, w.open_until, w.opens_at, w.reason) == ("open", utc(2026, 12, 8), None, None)
    assert w.description == "open until 18:00 America/Chicago (Mon 2026-12-07)"


def test_decision_closed_says_when_it_opens() -> None:
    w = calling_decision(OFFICE, CHI, SAT_NOON, MON_OPEN + 1)
    assert (w.state, w.opens_at, w.open_until, w.reason) == ("closed", MON_OPEN, None, None)
    assert w.description == "09:00 America/Chicago (Mon 2026-12-07)"


@pytest.mark.parametrize("expires_at", [MON_OPEN, MON_OPEN - 1, SAT_NOON, SAT_NOON - 60])
def test_decision_never_open_before_expiry(expires_at: float) -> None:
    w = calling_decision(OFFICE, CHI, SAT_NOON, expires_at)
    assert (w.state, w.reason, w.opens_at) == ("never_open", "window_never_open", None)
    assert w.description == "the calling window does not open before the job expires"


@pytest.mark.parametrize("expires_at", [None, SAT_NOON + 1000 * 86400, SAT_NOON + 86400])
def test_zones_that_never_share_an_opening_are_a_zone_unknown_not_a_window_never_open(
        expires_at: float | None) -> None:
    """Window_never_open means the window cannot open before expires_at; a number whose zones
    never agree says nothing of where the person is: the default zone, else no_timezone."""
    short = effective_policy(PolicyConfig(calling_hours=["mon-sun 09:00-10:00"]), {}, None)
    zones = ("Asia/Tokyo", "America/New_York")
    w = calling_decision(short, zones, SAT_NOON, expires_at)
    assert (w.state, w.reason) == ("no_timezone", "no_timezone")
    assert w.description == ("the number's 2 time zones never share an opening within 400 days "
                             "and policy.default_timezone is not set")
    chicago = effective_policy(PolicyConfig(calling_hours=["mon-sun 09:00-10:00"],
                                            default_timezone="America/Chicago"), {}, None)
    w = calling_decision(chicago, zones, SAT_NOON, expires_at)
    assert (w.state, w.opens_at) == ("closed", utc(2026, 12, 6, 15))


def test_a_single_zone_that_never_opens_within_the_horizon_is_window_never_open() -> None:
    pol = effective_policy(PolicyConfig(calling_hours=["mon-sun 09:00-10:00"], holidays=[
        f"{d}" for d in (date(2026, 12, 5) + timedelta(days=i) for i in range(401))]), {}, None)
    w = calling_decision(pol, CHI, SAT_NOON, None)
    assert (w.state, w.reason) == ("never_open", "window_never_open")
    assert w.description == "the calling window does not open within 400 days"


def test_decision_open_now_even_if_the_job_has_expired() -> None:
    assert calling_decision(OFFICE, CHI, MON_OPEN, MON_OPEN - 1).state == "open"


def test_decision_without_a_zone_blocks_only_when_hours_apply() -> None:
    w = calling_decision(OFFICE, (), MON_OPEN, None)
    assert (w.state, w.reason) == ("no_timezone", "no_timezone")
    free = effective_policy(PolicyConfig(calling_hours=["always"]), {}, None)
    assert free.hours is ALWAYS and free.unrestricted
    w = calling_decision(free, (), MON_OPEN, None)
    assert (w.state, w.open_until, w.reason) == ("open", math.inf, None)


def test_decision_with_always_and_a_holiday_still_closes_that_day() -> None:
    pol = effective_policy(PolicyConfig(calling_hours=["always"], holidays=["2026-12-07"]), {},
                           None)
    assert not pol.unrestricted
    w = calling_decision(pol, CHI, SAT_NOON, None)
    assert (w.state, w.open_until) == ("open", utc(2026, 12, 7, 6))
    w = calling_decision(pol, CHI, utc(2026, 12, 7, 12), None)
    assert (w.state, w.opens_at) == ("closed", utc(2026, 12, 8, 6))
    assert w.description == "00:00 America/Chicago (Tue 2026-12-08)"


def test_decision_for_a_number_in_two_zones_needs_both_open() -> None:
    zones = ("America/New_York", "America/Los_Angeles")
    w = calling_decision(OFFICE, zones, utc(2026, 12, 7, 14), None)
    assert (w.state, w.opens_at) == ("closed", utc(2026, 12, 7, 17))
    assert w.description == ("12:00 America/New_York (Mon 2026-12-07) / "
                             "09:00 America/Los_Angeles (Mon 2026-12-07)")
    w = calling_decision(OFFICE, zones, utc(2026, 12, 7, 17), None)
    assert (w.state, w.open_until) == ("open", utc(2026, 12, 7, 23))


@pytest.mark.parametrize("number", ["+18005550100", "+18885550100", "+19005550100"])
def test_a_toll_free_or_premium_number_has_no_zone_of_its_own(number: str) -> None:
    """Libphonenumber lists every zone of the country for such a number (42 for +1); where
    the person is, is unknown: the default zone, else blocked as no_timezone at once."""
    assert time_zones(number) == ()
    job = Job(id="t1", to=number)
    verdict = JobPolicy(OFFICE).window(job, round(MON_OPEN * 1000), None)
    assert (verdict.open, verdict.blocked) == (False, BlockReason.NO_TIMEZONE)
    office_chicago = effective_policy(PolicyConfig(calling_hours=["mon-fri 09:00-18:00"],
                                                   default_timezone="America/Chicago"), {}, None)
    verdict = JobPolicy(office_chicago).window(job, round(SAT_NOON * 1000), None)
    assert (verdict.open, verdict.until_ms) == (False, round(MON_OPEN * 1000))


def test_geographic_and_mobile_numbers_keep_their_zones() -> None:
    assert time_zones("+14155550100") == ("America/Los_Angeles",)
    assert "Europe/London" in time_zones("+447911123456")  # a UK mobile: the country's zones
    assert time_zones("+43720123456") == ("Europe/Vienna",)  # VoIP, in a one-zone country


def test_a_service_number_keeps_its_countrys_zones_when_they_keep_one_clock() -> None:
    assert "Europe/London" in time_zones("+448001234567")  # four names for London time
