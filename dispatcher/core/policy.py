"""The call policy: ``[policy]`` defaults, ``[campaigns.NAME]`` overrides, and the merged view.

Everything is checked when the configuration loads, so a bad calling-hours range or redial rule
stops the service at start-up with the item named, instead of surprising a job at 3 a.m.
``effective_policy`` merges and parses once per campaign; the decision core then asks
``calling_decision`` and ``redial_after`` with plain values and a fixed clock.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, NoReturn
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from dispatcher.core.budgets import BudgetText
from dispatcher.core.hours import (
    DEFAULT_HORIZON_S,
    Hours,
    describe_instant,
    is_valid_zone,
    next_open,
    open_until,
    parse_holidays,
    parse_hours,
)
from dispatcher.core.limits import Window, parse_limit
from dispatcher.core.regions import is_known_region

DEFAULT_CALLING_HOURS = ("mon-sun 08:00-21:00",)
REDIAL_STATUSES = ("user_busy", "user_unavailable", "user_rejected", "machine", "unknown")
"""Answer statuses after which a job may call again (a person who answered is never redialled)."""

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WEEK_RE = re.compile(r"^\s*(\d+)\s*/\s*week\s*$")
_SPAN_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")  # rolling "3/24h"
_CAMPAIGN_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
WEEK_S = 7 * 86400.0


def parse_duration(value: str | float) -> float:
    """``"30s"``, ``"10m"``, ``"2h"``, ``"1d"`` or a number of seconds; must be positive."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(
            f"{value!r}: expected a positive duration like '30s', '10m', '2h', '1d' "
            "or a number of seconds"
        )
    return seconds


def parse_number_cap(text: str) -> Window:
    """``"2/day"``, ``"5/week"``, ``"1/3600s"``, ``"3/24h"``: at most N call starts per rolling
    window (to one number, or on one subject)."""
    match = _WEEK_RE.match(text)
    if match and int(match.group(1)) >= 1:
        return Window(seconds=WEEK_S, limit=int(match.group(1)))
    match = _SPAN_RE.match(text)
    if match and int(match.group(1)) >= 1 and float(match.group(2)) > 0:
        return Window(seconds=float(match.group(2)) * _DURATION_UNITS[match.group(3)],
                      limit=int(match.group(1)))
    try:
        return parse_limit(text)
    except ValueError:
        raise ValueError(
            f"{text!r}: expected 'N/second|minute|hour|day|week' or a rolling window "
            "'N/<number><s|m|h|d>' (e.g. '3/24h') with N >= 1"
        ) from None


def _fail(msg: str) -> NoReturn:
    # a custom error keeps pydantic's "Value error, " prefix out of the operator's message
    raise PydanticCustomError("policy", "{msg}", {"msg": msg})


def _check_hours(value: list[str]) -> list[str]:
    try:
        parse_hours(value)
    except ValueError as exc:
        _fail(str(exc))
    return value


def _check_holidays(value: list[str]) -> list[str]:
    try:
        parse_holidays(value)
    except ValueError as exc:
        _fail(str(exc))
    return value


def _check_zone(value: str) -> str:
    if value and not is_valid_zone(value):
        _fail(f"{value!r}: not a known IANA time zone (e.g. 'America/Chicago'); \"\" for none")
    return value


def _check_caps(value: list[str]) -> list[str]:
    for item in value:
        try:
            parse_number_cap(item)
        except ValueError as exc:
            _fail(str(exc))
    return value


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.netloc):
        _fail(f"{value!r}: expected an http:// or https:// URL, or \"\" for none")
    return value


def _check_redial(value: dict[str, RedialRule]) -> dict[str, RedialRule]:
    for status in value:
        if status == "human":
            _fail("'human': a call a person answered is never redialled; "
                  f"expected one of {', '.join(REDIAL_STATUSES)}")
        if status not in REDIAL_STATUSES:
            _fail(f"{status!r}: expected one of {', '.join(REDIAL_STATUSES)}")
    return value


def _check_region_keys(value: dict[str, RegionConfig]) -> dict[str, RegionConfig]:
    for code in value:
        if not is_known_region(code):
            _fail(f"{code!r}: not a known region; expected an ISO 3166-2 code such as "
                  "\"US-FL\" or \"GB-SCT\", or a country code such as \"GB\"")
    return value


def _check_campaign_names(value: dict[str, CampaignConfig]) -> dict[str, CampaignConfig]:
    for name in value:
        if not _CAMPAIGN_RE.match(name):
            _fail(f"{name!r}: a campaign name is 1-64 of A-Z a-z 0-9 . _ : -")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RedialRule(_Strict):
    """Call again ``after`` seconds (written "10m", "2h", ...), at most ``max`` times."""

    after: float
    max: int = Field(ge=0)

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            _fail(str(exc))


HoursList = Annotated[list[str], AfterValidator(_check_hours)]
HolidayList = Annotated[list[str], AfterValidator(_check_holidays)]
ZoneName = Annotated[str, AfterValidator(_check_zone)]
NumberCheck = Literal["valid", "possible"]
CapList = Annotated[list[str], AfterValidator(_check_caps)]
HookUrl = Annotated[str, AfterValidator(_check_url)]
Timeout = Annotated[float, Field(gt=0, allow_inf_nan=False)]
RedialMap = Annotated[dict[str, RedialRule], AfterValidator(_check_redial)]
JurisdictionName = Literal["none", "us", "uk"]


class RegionConfig(_Strict):
    """``[policy.regions."US-FL"]``: what the operator sets for recipients in one region.

    Each key replaces the job's (campaign or ``[policy]``) value for that region; a built-in
    jurisdiction rule set then still tightens it.
    """

    calling_hours: HoursList | None = None
    holidays: HolidayList | None = None
    max_calls_per_subject: CapList | None = None


RegionMap = Annotated[dict[str, RegionConfig], AfterValidator(_check_region_keys)]

REGISTRY_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _check_applies(value: list[str]) -> list[str]:
    if not value:
        _fail("expected at least one country or region code, e.g. [\"US\"]")
    for code in value:
        if not is_known_region(code):
            _fail(f"{code!r}: not a known region; expected a country code such as \"US\" or "
                  "an ISO 3166-2 code such as \"US-FL\"")
    return value


class RegistryConfig(_Strict):
    """``[policy.registries.NAME]``: a national do-not-call list that must be kept fresh."""

    max_age_days: int = Field(default=31, ge=1)
    applies_to: Annotated[list[str], AfterValidator(_check_applies)]


def _check_registry_names(value: dict[str, RegistryConfig]) -> dict[str, RegistryConfig]:
    for name in value:
        if not REGISTRY_NAME_RE.fullmatch(name):
            _fail(f"{name!r}: a registry name is 1-64 of A-Z a-z 0-9 _ . -")
    return value


RegistryMap = Annotated[dict[str, RegistryConfig], AfterValidator(_check_registry_names)]


class PolicyConfig(_Strict):
    """``[policy]``: the rules every job follows unless its campaign overrides them."""

    calling_hours: HoursList = Field(default_factory=lambda: list(DEFAULT_CALLING_HOURS))
    holidays: HolidayList = Field(default_factory=list)
    default_timezone: ZoneName = ""
    number_check: NumberCheck = "valid"
    max_calls_per_number: CapList = Field(default_factory=list)
    predial_url: HookUrl = ""
    predial_timeout_s: Timeout = 2.0
    dnc_hashed: bool = False
    redial: RedialMap = Field(default_factory=dict)
    max_calls_per_subject: CapList = Field(default_factory=list)
    jurisdiction: JurisdictionName = "none"
    regions: RegionMap = Field(default_factory=dict)
    require_consent: bool = False
    revoke_adds_dnc: bool = True
    registries: RegistryMap = Field(default_factory=dict)


GLOBAL_KEYS = frozenset({"revoke_adds_dnc", "registries"})
"""``[policy]`` keys about the whole deployment, which a campaign cannot override."""


class CampaignConfig(_Strict):
    """``[campaigns.NAME]``: any ``[policy]`` key (None inherits it) plus the campaign's share.

    A table value such as ``redial`` replaces the ``[policy]`` one whole (``{}`` turns it off).
    """

    calling_hours: HoursList | None = None
    holidays: HolidayList | None = None
    default_timezone: ZoneName | None = None
    number_check: NumberCheck | None = None
    max_calls_per_number: CapList | None = None
    predial_url: HookUrl | None = None
    predial_timeout_s: Timeout | None = None
    dnc_hashed: bool | None = None
    redial: RedialMap | None = None
    max_calls_per_subject: CapList | None = None
    jurisdiction: JurisdictionName | None = None
    regions: RegionMap | None = None
    require_consent: bool | None = None
    max_concurrent_calls: int | None = Field(default=None, ge=1)
    share: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    budget: BudgetText | None = None   # "500/day": spend per day in budget_timezone
    budget_timezone: ZoneName = "UTC"


CampaignMap = Annotated[dict[str, CampaignConfig], AfterValidator(_check_campaign_names)]
"""The ``campaigns`` table with its names checked, for ``Settings``."""


@dataclass(frozen=True)
class EffectivePolicy:
    """The merged, parsed policy one campaign's jobs follow."""

    campaign: str | None  # the [campaigns.NAME] table merged in; None for [policy] alone
    hours: Hours
    holidays: frozenset[date]
    default_timezone: str
    number_check: NumberCheck
    number_caps: tuple[Window, ...]
    subject_caps: tuple[Window, ...]
    predial_url: str
    predial_timeout_s: float
    dnc_hashed: bool
    redial_rules: tuple[tuple[str, RedialRule], ...]  # kept as pairs so the value is hashable
    jurisdiction: JurisdictionName
    region_rules: tuple[tuple[str, RegionConfig], ...]  # [policy.regions], as pairs
    max_concurrent_calls: int | None
    share: float
    require_consent: bool = False

    @property
    def redial(self) -> dict[str, RedialRule]:
        return dict(self.redial_rules)

    @property
    def unrestricted(self) -> bool:
        """No calling-hours limit at all: the recipient's zone does not matter."""
        return self.hours.always and not self.holidays


def _merge(policy: PolicyConfig, camp: CampaignConfig) -> PolicyConfig:
    overrides = {k: getattr(camp, k) for k in PolicyConfig.model_fields if k not in GLOBAL_KEYS}
    return policy.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def _view(config: PolicyConfig, name: str | None, camp: CampaignConfig | None) -> EffectivePolicy:
    return EffectivePolicy(
        campaign=name,
        hours=parse_hours(config.calling_hours),
        holidays=parse_holidays(config.holidays),
        default_timezone=config.default_timezone,
        number_check=config.number_check,
        number_caps=tuple(parse_number_cap(x) for x in config.max_calls_per_number),
        subject_caps=tuple(parse_number_cap(x) for x in config.max_calls_per_subject),
        predial_url=config.predial_url,
        predial_timeout_s=config.predial_timeout_s,
        dnc_hashed=config.dnc_hashed,
        redial_rules=tuple(sorted(config.redial.items())),
        jurisdiction=config.jurisdiction,
        region_rules=tuple(sorted(config.regions.items())),
        max_concurrent_calls=camp.max_concurrent_calls if camp else None,
        share=camp.share if camp else 1.0,
        require_consent=config.require_consent,
    )


_CacheEntry = tuple[PolicyConfig, dict[str, CampaignConfig], EffectivePolicy]
_cache: dict[tuple[int, int, str | None], _CacheEntry] = {}


def effective_policy(policy: PolicyConfig, campaigns: dict[str, CampaignConfig],
                     campaign: str | None) -> EffectivePolicy:
    """The policy for ``campaign``: its table over ``[policy]``; unknown names get ``[policy]``.

    Cached per configuration object (the entry holds the objects, so an id is never reused
    while cached); configuration models are frozen and must not be mutated in place.
    """
    name = campaign if campaign is not None and campaign in campaigns else None
    key = (id(policy), id(campaigns), name)
    hit = _cache.get(key)
    if hit is not None and hit[0] is policy and hit[1] is campaigns:
        return hit[2]
    camp = campaigns[name] if name is not None else None
    pol = _view(_merge(policy, camp) if camp else policy, name, camp)
    if len(_cache) >= 1024:
        _cache.clear()
    _cache[key] = (policy, campaigns, pol)
    return pol


def recipient_zones(job_timezone: str | None, number_zones: tuple[str, ...],
                    pol: EffectivePolicy) -> tuple[str, ...]:
    """Where the recipient is: the job's zone, else the number's, else the default, else ().

    Zones the number lookup cannot place (e.g. phonenumbers' ``Etc/Unknown``) are dropped.
    """
    if job_timezone:
        return (job_timezone,)
    known = tuple(dict.fromkeys(z for z in number_zones if is_valid_zone(z)))
    if known:
        return known
    return (pol.default_timezone,) if pol.default_timezone else ()


def redial_after(pol: EffectivePolicy, answer_status: str, redials_done: int) -> float | None:
    """Seconds to wait before calling again, or None when no redial applies."""
    rule = pol.redial.get(answer_status)
    if rule is None or redials_done >= rule.max:
        return None
    return rule.after


WindowState = Literal["open", "closed", "never_open", "no_timezone"]


@dataclass(frozen=True)
class CallingWindow:
    """Whether a job may be dialled now, by the calling hours alone.

    ``open``: ``open_until`` is when the opening ends (``inf``: it does not). ``closed``:
    ``opens_at`` is the next opening. ``never_open`` and ``no_timezone`` end the job as
    ``blocked`` with ``reason``. ``description`` is text for operators.
    """

    state: WindowState
    open_until: float | None = None
    opens_at: float | None = None
    description: str = ""

    @property
    def reason(self) -> str | None:
        """The ``blocked`` result's reason, or None when the job may go on."""
        return {"never_open": "window_never_open", "no_timezone": "no_timezone"}.get(self.state)


NO_LIMIT = CallingWindow("open", open_until=math.inf, description="no calling-hours limit")


def calling_decision(pol: EffectivePolicy, zones: tuple[str, ...], instant: float,
                     expires_at: float | None) -> CallingWindow:
    """Decide at instant ``t`` for a recipient in ``zones`` (from ``recipient_zones``).

    Zones that never share an opening within the horizon (a number spread over a continent)
    say nothing of where the person is: they are treated as no zone known, so
    ``never_open`` only ever means "not before the job expires" or, for one zone, "not within
    the horizon".
    """
    if pol.unrestricted:
        return NO_LIMIT
    if not zones:
        return CallingWindow("no_timezone", description=(
            "no time zone known for the recipient and policy.default_timezone is not set"))
    window = _decision(pol, zones, instant, expires_at)
    if window.state != "never_open" or len(zones) < 2 or (
            expires_at is not None
            and next_open(pol.hours, pol.holidays, zones, instant) is not None):
        return window
    if pol.default_timezone:
        return _decision(pol, (pol.default_timezone,), instant, expires_at)
    return CallingWindow("no_timezone", description=(
        f"the number's {len(zones)} time zones never share an opening within "
        f"{DEFAULT_HORIZON_S / 86400:.0f} days and policy.default_timezone is not set"))


def _decision(pol: EffectivePolicy, zones: tuple[str, ...], instant: float,
              expires_at: float | None) -> CallingWindow:
    end = open_until(pol.hours, pol.holidays, zones, instant)
    if end is not None:
        text = describe_instant(zones, end) if end != math.inf else "no end in sight"
        return CallingWindow("open", open_until=end, description=f"open until {text}")
    by_expiry = expires_at is not None and expires_at - instant < DEFAULT_HORIZON_S
    horizon = expires_at - instant if expires_at is not None and by_expiry else DEFAULT_HORIZON_S
    nxt = next_open(pol.hours, pol.holidays, zones, instant, horizon) if horizon > 0 else None
    if nxt is not None:
        return CallingWindow("closed", opens_at=nxt, description=describe_instant(zones, nxt))
    limit = "before the job expires" if by_expiry else \
        f"within {DEFAULT_HORIZON_S / 86400:.0f} days"
    return CallingWindow("never_open", description=f"the calling window does not open {limit}")
