"""Where a recipient is, as an ISO 3166 code: which codes exist, and what a number says.

A region is an ISO 3166-2 subdivision (``"US-FL"``, ``"GB-SCT"``) or, when only the country is
known, its ISO 3166-1 alpha-2 code (``"US"``). Codes are checked against ``pycountry``'s copy
of the ISO lists. From a number alone the region is the US state of its NANP area code (the
table shipped in ``dispatcher/core/rules/us_area_codes.csv``), else the number's country.
"""

from __future__ import annotations

import csv
import re
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import phonenumbers
import pycountry

REGION_RE = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})?")
_NANP_RE = re.compile(r"\+1([2-9][0-9]{2})[2-9][0-9]{6}")


def subdivision(code: str) -> Any:
    """pycountry's record of an ISO 3166-2 code (``parent_code``, ``name``), or None."""
    return pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]


@lru_cache(maxsize=4096)
def is_known_region(code: str) -> bool:
    """True for an ISO 3166-2 subdivision code or an ISO 3166-1 alpha-2 country code."""
    if not REGION_RE.fullmatch(code):
        return False
    if "-" in code:
        return subdivision(code) is not None
    return pycountry.countries.get(alpha_2=code) is not None


def country_of(region: str) -> str:
    return region.partition("-")[0]


@cache
def area_codes() -> dict[str, str]:
    """NANP area code (``"305"``) -> US region (``"US-FL"``), read once from the package."""
    text = resources.files("dispatcher.core.rules").joinpath("us_area_codes.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {row["area_code"]: row["region"] for row in rows}


@lru_cache(maxsize=65536)
def region_of_number(e164: str) -> str | None:
    """The region a number points to: its US state by area code, else its country, else None."""
    match = _NANP_RE.fullmatch(e164)
    if match:
        state = area_codes().get(match.group(1))
        if state is not None:
            return state
    try:
        country = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return None
    return country if country and is_known_region(country) else None
