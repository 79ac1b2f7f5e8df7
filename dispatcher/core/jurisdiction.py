"""Built-in jurisdiction rule sets: what a recipient's region adds to the configured policy.

A rule set (``dispatcher/core/rules/us.toml``, ``uk.toml``) is read once and cached. Each region
row can only tighten: its calling hours are intersected with the configured ones, its public
holidays (from the maintained ``holidays`` library) are added to ``policy.holidays``, its
per-subject caps are added to the configured caps. Pure apart from reading the package's own
data files once.
"""

from __future__ import annotations

import enum
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import holidays as holidays_lib

from dispatcher.core.hours import ALWAYS, Hours, parse_hours
from dispatcher.core.limits import Window
from dispatcher.core.policy import parse_number_cap
from dispatcher.core.regions import country_of, subdivision


class Jurisdiction(enum.StrEnum):
    NONE = "none"
    US = "us"
    UK = "uk"


@dataclass(frozen=True)
class RegionRule:
    """What one region's rows add: the country's default row merged with the region's own."""

    region: str  # "US-FL", or the country code for the default row
    name: str  # plain words for wait reasons: "Florida"
    summary: str  # the hours in plain words: "08:00-20:00 recipient time"
    hours: Hours
    public_holidays: bool
    subject_caps: tuple[Window, ...]


@dataclass(frozen=True)
class RuleSet:
    jurisdiction: Jurisdiction
    country: str
    default: RegionRule
    regions: dict[str, RegionRule]

    def rule_for(self, region: str | None) -> RegionRule | None:
        """The rule for a recipient in ``region``; None when the region is not in this country."""
        if region is None or country_of(region) != self.country:
            return None
        return self.regions.get(region, self.default)


def intersect_hours(one: Hours, other: Hours) -> Hours:
    """The instants open under both ``a`` and ``b`` (per weekday, minute ranges)."""
    if one.always:
        return other
    if other.always:
        return one
    return Hours(days=tuple(_intersect_ranges(x, y)
                            for x, y in zip(one.days, other.days, strict=True)))


def _intersect_ranges(xs: tuple[tuple[int, int], ...], ys: tuple[tuple[int, int], ...]
                      ) -> tuple[tuple[int, int], ...]:
    out = []
    for x0, x1 in xs:
        for y0, y1 in ys:
            lo, hi = max(x0, y0), min(x1, y1)
            if lo < hi:
                out.append((lo, hi))
    return tuple(sorted(out))


def merge_caps(*groups: tuple[Window, ...]) -> tuple[Window, ...]:
    """Every cap of every group (all hold at once, so the result is the strictest)."""
    return tuple(sorted({w for g in groups for w in g}, key=lambda w: (w.seconds, w.limit)))


_RULE_KEYS = frozenset({"name", "summary", "calling_hours", "public_holidays",
                        "max_calls_per_subject"})


def _row(region: str, raw: dict[str, Any], base: RegionRule | None) -> RegionRule:
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise ValueError(f"rule set row {region!r}: unknown key(s) {sorted(unknown)}")
    hours = parse_hours(raw["calling_hours"]) if "calling_hours" in raw else ALWAYS
    caps = tuple(parse_number_cap(c) for c in raw.get("max_calls_per_subject", []))
    if base is None:
        return RegionRule(region, str(raw["name"]), str(raw["summary"]), hours,
                          bool(raw.get("public_holidays", False)), caps)
    return RegionRule(region, str(raw["name"]), str(raw["summary"]),
                      intersect_hours(base.hours, hours),
                      base.public_holidays or bool(raw.get("public_holidays", False)),
                      merge_caps(base.subject_caps, caps))


def parse_rule_set(jurisdiction: Jurisdiction, text: str) -> RuleSet:
    data = tomllib.loads(text)
    country = str(data["country"])
    default = _row(country, data["default"], None)
    regions = {code: _row(code, raw, default) for code, raw in data.get("regions", {}).items()}
    for code in regions:
        if country_of(code) != country or subdivision(code) is None:
            raise ValueError(f"rule set {jurisdiction.value}: {code!r} is not a region of "
                             f"{country}")
    return RuleSet(jurisdiction, country, default, regions)


def rule_set_text(jurisdiction: Jurisdiction) -> str:
    return resources.files("dispatcher.core.rules").joinpath(f"{jurisdiction.value}.toml"
                                                        ).read_text("utf-8")


@cache
def rule_set(jurisdiction: Jurisdiction) -> RuleSet | None:
    """The built-in rule set, read and checked once; None for ``none``."""
    if jurisdiction is Jurisdiction.NONE:
        return None
    return parse_rule_set(jurisdiction, rule_set_text(jurisdiction))


# -- public holidays ---------------------------------------------------------------------------

def _library_subdivision(region: str) -> tuple[str, ...]:
    """The ``holidays`` subdivisions whose holidays apply to ``region``: its own, its parent's
    (a county's nation), or every one of the country when the region does not say (a number
    alone): holidays only close days, so the union is the careful choice."""
    country = country_of(region)
    known = holidays_lib.list_supported_countries().get(country)
    if known is None:
        return ()
    code: str | None = region
    while code:
        part = code.partition("-")[2]
        if part in known:
            return (part,)
        found = subdivision(code)
        code = getattr(found, "parent_code", None) if found is not None else None
    return tuple(known) if known else ("",)


@lru_cache(maxsize=512)
def public_holidays(region: str, year: int) -> dict[date, str]:
    """The region's public holidays in ``year`` (date -> name), from the holidays library."""
    country = country_of(region)
    out: dict[date, str] = {}
    for sub in _library_subdivision(region):
        cal = holidays_lib.country_holidays(country, subdiv=sub or None, years=year)
        for day, name in cal.items():
            out.setdefault(day, name)
    return out


@lru_cache(maxsize=512)
def holidays_around(region: str, year: int) -> frozenset[date]:
    """Public holidays from the year before ``year`` to two years after (the search horizon)."""
    return frozenset(d for y in range(year - 1, year + 3) for d in public_holidays(region, y))
