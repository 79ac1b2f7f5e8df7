"""Caller-ID pools (``[providers.NAME.caller_ids]``): the numbers a provider account calls
from, each with optional caps, and what the grant script needs to choose one per call.

The choice itself is made in the grant script (``lua/lib/callerid.lua``), atomically with the
caps: ``local`` prefers a caller ID with the destination's area code, then one in its region
(US state by NANP area code, else country), then any; ``rotate`` takes the least used in the
last 24 hours. Either way only caller IDs below every cap are taken. Prefix strings are
worked out here (``+1212`` for area 212, the area codes of a state for its region), so the
script only compares prefixes.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dispatcher.core.policy import parse_number_cap
from dispatcher.core.regions import area_codes, region_of_number

E164_RE = re.compile(r"\+[1-9][0-9]{6,14}")
DAY_MS = 86_400_000


def _caps(value: list[str]) -> list[str]:
    for text in value:
        parse_number_cap(text)
    return value


class CallerId(BaseModel):
    """One caller number of the pool. ``id``: TelEcho's ``phone_number_id`` of it; for
    itellicoAI the number itself is what is sent (``id`` may be left out)."""

    model_config = ConfigDict(extra="forbid")

    number: str
    id: str | None = Field(default=None, min_length=1, max_length=64)
    caps: list[str] | None = None  # None: the pool's caps
    # its name in metrics (default: a TelEcho id, else the number's last four digits)
    label: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,32}$")

    @field_validator("number")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not E164_RE.fullmatch(value):
            raise ValueError(f"{value!r}: expected an E.164 number (+ and 7-15 digits)")
        try:
            if not phonenumbers.is_possible_number(phonenumbers.parse(value)):
                raise ValueError(f"{value!r}: not a possible number in its country")
        except phonenumbers.NumberParseException:
            raise ValueError(f"{value!r}: expected an E.164 number") from None
        return value

    @field_validator("caps")
    @classmethod
    def _own_caps(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _caps(value)

    @property
    def key(self) -> str:
        """What the provider is sent (and results name as ``from``)."""
        return self.id or self.number

    @property
    def metric_label(self) -> str:
        """Never a whole phone number: metrics are read more widely than the pool."""
        if self.label:
            return self.label
        if self.id and self.id != self.number:
            return self.id
        return "…" + self.number[-4:]


class CallerIdPool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selection: Literal["local", "rotate"] = "local"
    caps: list[str] = Field(default_factory=list)  # for each number without its own
    numbers: list[CallerId] = Field(min_length=1)
    # health: flagged when the share answered by a person over its last flag_min_calls
    # calls falls below flag_answer_rate; rest_flagged takes it out of the pool then
    flag_answer_rate: float | None = Field(default=None, gt=0, le=1)
    flag_min_calls: int = Field(default=50, ge=1, le=10_000)
    rest_flagged: bool = False

    @field_validator("caps")
    @classmethod
    def _pool_caps(cls, value: list[str]) -> list[str]:
        return _caps(value)

    @model_validator(mode="after")
    def _unique(self) -> CallerIdPool:
        keys = [n.key for n in self.numbers]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"numbers: {', '.join(twice)} given twice")
        labels = [n.metric_label for n in self.numbers]
        same = sorted({x for x in labels if labels.count(x) > 1})
        if same:
            raise ValueError(f"numbers: the metric label {', '.join(same)} would name two "
                             "caller IDs; give them a label each")
        return self

    def keys(self) -> list[str]:
        return [n.key for n in self.numbers]

    def caps_of(self, caller: CallerId) -> list[tuple[int, int]]:
        caps = self.caps if caller.caps is None else caller.caps
        return [(w.limit, w.ms) for w in map(parse_number_cap, caps)]

    def grant_args(self) -> dict[str, Any]:
        """The grant script's view: each caller ID with its area prefix, region and caps,
        and each region's prefixes; ``keep``: how long a caller ID's log is kept."""
        ids, regions = [], {}
        keep = DAY_MS
        for caller in self.numbers:
            caps = self.caps_of(caller)
            keep = max([keep, *(ms for _, ms in caps)])
            rg = region_of_number(caller.number) or ""
            if rg and rg not in regions:
                regions[rg] = region_prefixes(rg)
            ids.append({"id": caller.key, "area": area_prefix(caller.number), "rg": rg,
                        "caps": [list(c) for c in caps]})
        return {"sel": self.selection, "ids": ids, "regions": regions, "keep": keep}


def area_prefix(e164: str) -> str:
    """``+1212`` for a New York number; a geographic area code elsewhere; "" when the number
    has none (mobile, VoIP, service numbers)."""
    try:
        pn = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return ""
    if pn.country_code == 1:
        return e164[:5]
    length = phonenumbers.length_of_geographical_area_code(pn)
    if length <= 0:
        return ""
    nsn = phonenumbers.national_significant_number(pn)
    return f"+{pn.country_code}{nsn[:length]}"


def region_prefixes(region: str) -> list[str]:
    """Every number prefix of a region: a US state's area codes, else its country code."""
    if region.startswith("US-"):
        return sorted(f"+1{ac}" for ac, rg in area_codes().items() if rg == region)
    code = phonenumbers.country_code_for_region(region.partition("-")[0])
    return [f"+{code}"] if code else []


def choose(pool: dict[str, Any], to: str, used: dict[str, int],
           capped: frozenset[str] = frozenset()) -> str | None:
    """Reference model of the script's choice (tests run both): the caller ID for a call to
    ``to``, given each one's calls in the last day and those at a cap."""
    best: tuple[int, int, int] | None = None
    pick = None
    dest_rg = _dest_region(pool["regions"], to)
    for index, entry in enumerate(pool["ids"]):
        if entry["id"] in capped:
            continue
        tier = 1
        if pool["sel"] == "local":
            tier = 1 if entry["area"] and to.startswith(entry["area"]) else (
                2 if dest_rg and entry["rg"] == dest_rg else 3)
        rank = (tier, used.get(entry["id"], 0), index)
        if best is None or rank < best:
            best, pick = rank, entry["id"]
    return pick


def _dest_region(regions: dict[str, list[str]], to: str) -> str | None:
    best, found = 0, None
    for rg, prefixes in regions.items():
        for prefix in prefixes:
            if len(prefix) > best and to.startswith(prefix):
                best, found = len(prefix), rg
    return found
