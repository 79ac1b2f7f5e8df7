"""Finding a phone number in stored text, in any spelling a producer may have written it.

Erasure must find a person's number wherever the dispatcher kept it: in a payload (its
``to``, ``from`` or metadata), a result, a cached reply, in E.164, with spaces, dashes, dots
or parentheses, in the national format of the number's region, with a trailing newline. The
text is searched for the number's national significant number with any separators between
its digits; each hit, with what stands before it (a ``+``, the country code, the national
prefix), is read by libphonenumber in the number's region and must give the same E.164.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from dispatcher.core.numbers import parse

_SEP = r"[ ().\-]*"
_PREFIX = re.compile(r"[0-9+ ().\-]{0,12}$")  # what may stand before the number's own digits
_CUT = re.compile(r"[ ().\-]")


@dataclass(frozen=True)
class Needle:
    """One number to look for: its E.164, region, and digits as a pattern."""

    e164: str
    region: str
    pattern: re.Pattern[str]
    lua: str  # the same search as a Lua pattern (digits, separators between them)


def needle(e164: str) -> Needle:
    """The needle for a number in E.164 (raises ValueError when it is not a number)."""
    number = parse(e164)
    nsn = phonenumbers.national_significant_number(number)
    region = phonenumbers.region_code_for_number(number) or "ZZ"
    between = _SEP.join(nsn)
    lua = "[ %(%)%.%-]*".join(nsn)
    return Needle(e164, region, re.compile(between + r"(?![0-9])"), lua)


def _same(candidate: str, target: Needle) -> bool:
    try:
        found = phonenumbers.parse(candidate, target.region)
    except NumberParseException:
        return False
    return phonenumbers.format_number(found, PhoneNumberFormat.E164) == target.e164


def _candidates(text: str, start: int, end: int) -> Iterable[str]:
    """The hit with each prefix that may belong to it, longest first: cut only where a
    separator stands, never inside a run of digits; after a ``+``, only with all of it (a
    country code given is the number's, not another's)."""
    head = _PREFIX.search(text, max(0, start - 12), start)
    prefix = head.group() if head else ""
    body = text[start:end]
    if "+" in prefix:
        yield prefix[prefix.rindex("+"):] + body
        return
    yield prefix + body
    for cut in _CUT.finditer(prefix):
        yield prefix[cut.start():] + body
        yield prefix[cut.end():] + body


def mentions(text: str, needles: Iterable[Needle]) -> set[str]:
    """The E.164 numbers among ``needles`` that ``text`` names, in any spelling."""
    found: set[str] = set()
    for target in needles:
        for hit in target.pattern.finditer(text):
            if any(_same(c, target) for c in _candidates(text, hit.start(), hit.end())):
                found.add(target.e164)
                break
    return found
