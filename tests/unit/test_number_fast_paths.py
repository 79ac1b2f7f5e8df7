"""The quick parse and validity check give phonenumbers' own answers for every number."""

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.core.numbers import NUMBER_CHECKS, NumberCheck, is_valid, normalise, parse

CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _examples() -> list[phonenumbers.PhoneNumber]:
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(12):
            ex = phonenumbers.example_number_for_type(region, kind)
            if ex is not None:
                out.append(ex)
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        ex = phonenumbers.example_number_for_non_geo_entity(code)
        if ex is not None:
            out.append(ex)
    return out


EXAMPLES = _examples()


def test_every_regions_example_numbers_agree() -> None:
    assert len(EXAMPLES) > 1000  # every region, every type it has an example for
    wrong = [phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
             for n in EXAMPLES if is_valid(n) != phonenumbers.is_valid_number(n)]
    assert wrong == []


@pytest.mark.parametrize("text", ["+12425550100", "+18765550100", "+14155550100",
                                  "+16135550100", "+17875550100", "+16495550100"])
def test_shared_country_code_numbers_agree(text: str) -> None:
    """+1 is shared by two dozen regions, found by leading digits or by full validation."""
    n = phonenumbers.parse(text, None)
    assert is_valid(n) == phonenumbers.is_valid_number(n)


@settings(max_examples=3000, deadline=None)
@given(code=st.one_of(st.sampled_from(CODES), st.integers(1, 999)),
       digits=st.text("0123456789", min_size=2, max_size=14))
def test_random_numbers_agree(code: int, digits: str) -> None:
    try:
        n = phonenumbers.parse(f"+{code}{digits}", None)
    except phonenumbers.NumberParseException:
        return
    assert is_valid(n) == phonenumbers.is_valid_number(n)


def _both(text: str) -> tuple[object, object]:
    """What phonenumbers.parse and the quick parse make of ``text`` (or which error)."""
    out: list[object] = []
    for fn in (lambda t: phonenumbers.parse(t, None), parse):
        try:
            out.append(fn(text))
        except phonenumbers.NumberParseException as exc:
            out.append(("error", exc.error_type))
    return out[0], out[1]


def test_every_regions_example_numbers_parse_alike() -> None:
    """As written in E.164, and with a 0 (a national prefix, or Italian-style leading zero)
    after the country code."""
    texts = []
    for n in EXAMPLES:
        e164 = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
        texts += [e164, f"+{n.country_code}0{n.national_number}"]
    wrong = [t for t in texts if _both(t)[0] != _both(t)[1]]
    assert wrong == []


@settings(max_examples=3000, deadline=None)
@given(code=st.one_of(st.sampled_from(CODES), st.integers(1, 999)),
       digits=st.text("0123456789", max_size=16))
def test_random_digits_parse_alike(code: int, digits: str) -> None:
    official, quick = _both(f"+{code}{digits}")
    assert quick == official


def _official_e164(text: str, check: NumberCheck) -> str | None:
    """The E.164 form phonenumbers itself gives ``text`` under ``check``, None if refused."""
    try:
        n = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    ok = (phonenumbers.is_valid_number(n) if check == "valid"  # local-only is not possible
          else phonenumbers.is_possible_number_with_reason(n)
          == phonenumbers.ValidationResult.IS_POSSIBLE)
    e164 = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
    return e164 if ok and len(e164) <= 16 else None  # E.164 has at most 15 digits


def _normalised(text: str, check: NumberCheck) -> str | None:
    try:
        return normalise(text, check)
    except ValueError:
        return None


def test_every_regions_example_numbers_normalise_alike() -> None:
    """Plain E.164 is its own E.164 form without formatting it again: the same text."""
    for check in NUMBER_CHECKS:
        texts = [phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
                 for n in EXAMPLES]
        wrong = [t for t in texts if _normalised(t, check) != _official_e164(t, check)]
        assert wrong == []


@settings(max_examples=3000, deadline=None)
@given(code=st.one_of(st.sampled_from(CODES), st.integers(1, 999)),
       digits=st.text("0123456789", min_size=2, max_size=13),
       check=st.sampled_from(NUMBER_CHECKS))
def test_random_numbers_normalise_alike(code: int, digits: str, check: NumberCheck) -> None:
    text = f"+{code}{digits}"
    assert _normalised(text, check) == _official_e164(text, check)
