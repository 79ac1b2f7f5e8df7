"""Phone numbers: the E.164 form of a job's ``to``, its time zones, and its do-not-call key.

Pure functions over ``phonenumbers`` (libphonenumber's metadata). A number must come with its
country code: a national number is refused, never guessed, because dialling the wrong country
is worse than not dialling.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    PhoneNumberDesc,
    PhoneNumberFormat,
    PhoneNumberType,
)
from phonenumbers import timezone as pn_timezone

# numbers tied to a service, not a place: libphonenumber gives them every zone of their
# country (42 for +1), which says nothing of where the person is unless those zones keep one
# clock (Austria's, or the UK's four names for London time)
_PLACELESS = frozenset({
    PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.PAGER,
    PhoneNumberType.UAN, PhoneNumberType.VOICEMAIL})

NumberCheck = Literal["valid", "possible"]
NUMBER_CHECKS: tuple[NumberCheck, ...] = ("valid", "possible")

EXAMPLE = "+14155550100"
# ASCII only: '+', digits and the usual separators; [0-9] (not \d) refuses other digit scripts
_INTERNATIONAL = re.compile(r"\+[0-9 ().\-]{1,39}")
_NATIONAL = re.compile(r"[0-9 ().\-]{1,40}")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_QUOTE_MAX = 40
_CACHE_SIZE = 4096  # repeated parses of one job (retries, tracking) hit it; bounded

_POSSIBLE_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "a length no number in its country has",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "diallable only locally",
}


def quote(text: str) -> str:
    """A short, printable quote of an input value: never more than ~40 of its characters."""
    if len(text) <= _QUOTE_MAX:
        return repr(text)
    return repr(text[:_QUOTE_MAX]) + "..."


def normalise(text: str, check: NumberCheck) -> str:
    """The E.164 form of ``text``; ValueError (message starts with ``to: ``) when refused.

    ``check="valid"``: the number must be assigned and diallable in its country;
    ``"possible"``: only its country code and length are checked.
    """
    if check not in NUMBER_CHECKS:
        raise ValueError(f"number check must be one of {NUMBER_CHECKS}, got {check!r}")
    return _normalise(text, check)


@lru_cache(maxsize=_CACHE_SIZE)
def _normalise(text: str, check: NumberCheck) -> str:
    if not _INTERNATIONAL.fullmatch(text):
        if _NATIONAL.fullmatch(text) and any(c.isdigit() for c in text):
            raise ValueError(f"to: national number {quote(text)}; "
                             "write it with + and the country code")
        raise ValueError(f"to: expected an E.164 number like {EXAMPLE}, got {quote(text)}")
    split = _split_plain(text)
    if split is not None and check == "valid":  # the usual case: no PhoneNumber built
        if not _valid(*split):
            raise ValueError(_NOT_VALID.format(quote(text)))
        return text
    number = _number(text)  # a check other than 'valid', or not plain E.164
    if check == "valid" and not is_valid(number):
        raise ValueError(_NOT_VALID.format(quote(text)))
    if check == "possible":
        reason = phonenumbers.is_possible_number_with_reason(number)
        if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
            why = _POSSIBLE_REASONS.get(reason, "not possible")
            raise ValueError(f"to: {quote(text)} failed the 'possible' number check ({why})")
    if split is not None:
        return text
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if not _E164.fullmatch(e164):
        raise ValueError(f"to: {quote(text)} has no E.164 form")
    return e164


def _number(text: str) -> PhoneNumber:
    try:
        return parse(text)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            raise ValueError(f"to: {quote(text)} has no known country code") from None
        raise ValueError(f"to: {quote(text)} is not a phone number") from None


_NOT_VALID = ("to: {} failed the 'valid' number check "
              "(not an assigned, diallable number in its country)")


# -- parsing -----------------------------------------------------------------------------------
# ``phonenumbers.parse`` handles every way of writing a number. A job's ``to`` is almost always
# plain E.164, where parsing comes down to: the country code (the first 1-3 digits that are
# one), and the rest as the national number unless the country's national prefix could be
# stripped from it or it starts with 0 (Italian-style leading zeros). Those cases, and
# anything else, still go through ``phonenumbers.parse``; a property test checks that both
# give equal PhoneNumber objects.

_PLAIN = re.compile(r"\+([1-9][0-9]{2,14})")


def parse(text: str) -> PhoneNumber:
    """``phonenumbers.parse(text, None)``, quicker for plain E.164."""
    split = _split_plain(text)
    if split is None:
        return phonenumbers.parse(text, None)
    return PhoneNumber(country_code=split[0], national_number=int(split[1]))


def _split_plain(text: str) -> tuple[int, str] | None:
    """Plain E.164 as its country code and national number, when those are its digits as
    written (its E.164 form is then ``text`` itself); None for anything else."""
    match = _PLAIN.fullmatch(text)
    if match:
        digits = match.group(1)
        for width in (1, 2, 3):
            code = int(digits[:width])
            if code in COUNTRY_CODE_TO_REGION_CODE:
                nsn = digits[width:]
                if len(nsn) >= 2 and nsn[0] != "0":
                    known, prefix = _national_prefix(code)
                    if known and not (prefix and prefix.match(nsn)):
                        return code, nsn
                break
    return None


@cache
def _national_prefix(code: int) -> tuple[bool, re.Pattern[str] | None]:
    """Whether the calling code has metadata, and the national prefix its main region strips
    when parsing (a number that starts with it is left to ``phonenumbers.parse``)."""
    md = PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code))
    if md is None:
        return False, None
    prefix = md.national_prefix_for_parsing
    return True, _pattern(prefix) if prefix else None


# -- validity ----------------------------------------------------------------------------------
# ``phonenumbers.is_valid_number`` finds a +1 number's region by matching it against every
# number type of each candidate region, then matches the same ten types again for the region
# it found: about twenty regular expressions for one answer. The answer only needs "matches
# the region's general pattern and any one type", and fixed-line and mobile (the types nearly
# every number has) tried first usually settle it in two. Same metadata, same answer (a
# property test compares both over every region's example numbers and random digits).

_TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "voip",
          "personal_number", "pager", "uan", "voicemail")


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _matches(nsn: str, desc: PhoneNumberDesc | None) -> bool:
    if desc is None or not desc.national_number_pattern:
        return False
    if desc.possible_length and len(nsn) not in desc.possible_length:
        return False
    return _pattern(desc.national_number_pattern).fullmatch(nsn) is not None


def _known(nsn: str, md: PhoneMetadata) -> bool:
    """The number is of some known type in the region (not ``UNKNOWN``)."""
    if not _matches(nsn, md.general_desc):
        return False
    return any(_matches(nsn, getattr(md, t)) for t in _TYPES)


def is_valid(number: PhoneNumber) -> bool:
    """``phonenumbers.is_valid_number``, answered with fewer pattern matches."""
    code = number.country_code
    if code is None:
        return False
    return _valid(code, phonenumbers.national_significant_number(number))


def _valid(code: int, nsn: str) -> bool:
    for md, leading in _regions(code):
        if leading is not None:
            if leading.match(nsn):
                return _known(nsn, md)
        elif _known(nsn, md):
            return True
    return False


@cache
def _regions(code: int) -> tuple[tuple[PhoneMetadata, re.Pattern[str] | None], ...]:
    """The regions that share a calling code, each with the leading digits that pick it (a
    code of one region: that region, whatever the digits)."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(code) or ()
    if len(regions) == 1:
        md = PhoneMetadata.metadata_for_region_or_calling_code(code, regions[0].upper())
        return ((md, None),) if md is not None else ()
    out = []
    for region in regions:
        md = PhoneMetadata.metadata_for_region(region.upper(), None)
        if md is not None:
            out.append((md, _pattern(md.leading_digits) if md.leading_digits is not None
                        else None))
    return tuple(out)


@lru_cache(maxsize=_CACHE_SIZE)
def time_zones(e164: str) -> tuple[str, ...]:
    """The IANA zones libphonenumber maps the number to; empty when it knows none, and for a
    toll-free, premium-rate, shared-cost, VoIP, personal, pager, UAN or voicemail number in a
    country whose zones do not all keep one clock.

    Raises ValueError when ``e164`` is not a number (pass ``normalise``'s result).
    """
    try:
        number = parse(e164)
    except NumberParseException:
        raise ValueError(f"to: {quote(e164)} is not a phone number") from None
    zones = tuple(z for z in pn_timezone.time_zones_for_number(number)
                  if z != pn_timezone.UNKNOWN_TIMEZONE)
    if phonenumbers.number_type(number) in _PLACELESS and not _one_clock(zones):
        return ()
    return zones


_SAMPLES = tuple(datetime(2026, m, 15, 12, tzinfo=UTC) for m in (1, 4, 7, 10))


def _one_clock(zones: tuple[str, ...]) -> bool:
    """True when every zone shows the same time (sampled across a year's seasons)."""
    try:
        offsets = {tuple(t.astimezone(ZoneInfo(z)).utcoffset() for t in _SAMPLES)
                   for z in zones}
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return len(offsets) == 1


def dnc_key(e164: str, hashed: bool) -> str:
    """The do-not-call list's key: the E.164 itself, or its SHA-256 hex digest."""
    if not hashed:
        return e164
    return hashlib.sha256(e164.encode("utf-8")).hexdigest()
