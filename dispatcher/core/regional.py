"""The policy for one recipient's region: ``[policy.regions.X]`` over the campaign's policy,
then the jurisdiction rule set's row, which only tightens. Pure; cached per campaign, region
and year (public holidays are per year).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dispatcher.core.hours import describe_instant, parse_holidays, parse_hours
from dispatcher.core.jurisdiction import (
    RegionRule,
    RuleSet,
    holidays_around,
    intersect_hours,
    merge_caps,
    public_holidays,
)
from dispatcher.core.limits import Window
from dispatcher.core.policy import CallingWindow, EffectivePolicy, RegionConfig, parse_number_cap
from dispatcher.core.regions import country_of, region_of_number


@dataclass(frozen=True)
class RegionView:
    region: str | None  # "US-FL"; None when neither the job nor the number says
    rule: RegionRule | None  # the built-in row that applies, if any
    configured: EffectivePolicy  # the campaign's policy with the region's override
    effective: EffectivePolicy  # ... tightened by the rule: what the job follows

    @property
    def subject_caps(self) -> tuple[Window, ...]:
        return self.effective.subject_caps


class RegionalPolicy:
    """Region overrides and a rule set, shared by every campaign's view."""

    def __init__(self, rules: RuleSet | None, overrides: dict[str, RegionConfig]):
        self.rules = rules
        self.overrides = overrides
        self._cache: dict[tuple[int, str | None, int], RegionView] = {}
        self._pols: dict[int, EffectivePolicy] = {}  # keeps each keyed policy alive

    def view(self, pol: EffectivePolicy, job_region: str | None, to: str, instant: float
             ) -> RegionView:
        region = job_region or region_of_number(to)
        year = datetime.fromtimestamp(instant, UTC).year
        key = (id(pol), region, year)
        hit = self._cache.get(key)
        if hit is not None and self._pols.get(id(pol)) is pol:
            return hit
        if len(self._cache) >= 4096:
            self._cache.clear()
        self._pols[id(pol)] = pol
        got = self._cache[key] = self._build(pol, region, year)
        return got

    def _override(self, region: str | None) -> RegionConfig | None:
        if region is None:
            return None
        return self.overrides.get(region) or self.overrides.get(country_of(region))

    def _build(self, pol: EffectivePolicy, region: str | None, year: int) -> RegionView:
        configured = pol
        over = self._override(region)
        if over is not None:
            configured = replace(
                pol,
                hours=pol.hours if over.calling_hours is None else parse_hours(over.calling_hours),
                holidays=pol.holidays if over.holidays is None else parse_holidays(over.holidays),
                subject_caps=pol.subject_caps if over.max_calls_per_subject is None else tuple(
                    parse_number_cap(x) for x in over.max_calls_per_subject))
        rule = self.rules.rule_for(region) if self.rules is not None else None
        if rule is None or region is None:
            return RegionView(region, None, configured, configured)
        holidays = configured.holidays
        if rule.public_holidays:
            holidays = holidays | holidays_around(region, year)
        effective = replace(configured, hours=intersect_hours(configured.hours, rule.hours),
                            holidays=holidays,
                            subject_caps=merge_caps(configured.subject_caps, rule.subject_caps))
        return RegionView(region, rule, configured, effective)


def span_text(seconds: float) -> str:
    """``"2 h 10 min"``, ``"1 d 3 h"``, ``"45 min"``; rounded up to the minute."""
    minutes = max(1, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if mins and not days:
        parts.append(f"{mins} min")
    return " ".join(parts) or "1 min"


def region_text(rv: RegionView, zones: tuple[str, ...], instant: float,
                window: CallingWindow) -> str:
    """Which region rule holds the job, in plain words: ``"Florida: 08:00-20:00 recipient
    time, opens in 2 h 10 min (08:00 America/New_York (Tue 2026-03-10))"``."""
    assert rv.rule is not None and rv.region is not None
    rule = rv.rule
    note = ""
    if rule.public_holidays and zones:
        today = datetime.fromtimestamp(instant, UTC).astimezone(ZoneInfo(zones[0])).date()
        name = public_holidays(rv.region, today.year).get(today)
        if name is not None:
            note = f"; {today.isoformat()} is a public holiday ({name})"
    head = f"{rule.name}: {rule.summary}{note}"
    if window.state == "closed" and window.opens_at is not None:
        return (f"{head}, opens in {span_text(window.opens_at - instant)} "
                f"({describe_instant(zones, window.opens_at)})")
    return f"{head}; {window.description}"
