"""Phone numbers are masked by what they look like, under any key: logs, console, explain."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.console import pages
from dispatcher.logs import looks_like_phone, scrub, scrub_text
from dispatcher.ops.explain import event_words

SPELLINGS = ["+14155550123", "+1 415 555 0123", "+1-415-555-0123", "+1 (415) 555-0123",
             "(415) 555-0123", "415.555.0123", "4155550123", "04155550123", "0170 1234567",
             "07911 123456", "+44 7911 123456", "555-0123", " +43 720 123456\n"]
READABLE = ["2026-11-22", "1700000000000-0", "1234.56", "12345678.90",
            "192.168.100.200", "123456", "+12", "-1234567", "job-2026-11-22-000123",
            "call_8812345678", "7f3c0c1e-0000-4000-8000-00000000a001", "evt_1234567",
            "2026-11-22T10:00:00+01:00", "1.2.3", "v1234567", "12:30:45", ""]


# one dot is a decimal (1234.56), four groups of 1-3 digits an IPv4 address: not phones
NUMBERS_WITH_DOTS = re.compile(r"[0-9]+\.[0-9]+|[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


def run(**event: Any) -> dict[str, Any]:
    return dict(scrub(None, "info", dict(event)))


def digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


@pytest.mark.parametrize("number", SPELLINGS)
@pytest.mark.parametrize("key", ["mobile", "phone_alt", "alt_phone", "contact", "x"])
def test_a_number_under_any_metadata_key_is_masked_in_logs(key: str, number: str) -> None:
    out = run(metadata={key: number, "nested": [{key: number}]}, note=number)
    for shown in (out["metadata"][key], out["metadata"]["nested"][0][key], out["note"]):
        assert digits(number) not in digits(shown) or len(digits(number)) <= 3
        assert shown.endswith(digits(number)[-3:]) and "*" in shown


@pytest.mark.parametrize("value", READABLE)
def test_ids_timestamps_amounts_and_addresses_stay_readable(value: str) -> None:
    assert not looks_like_phone(value)
    assert run(metadata={"mobile": value}, value=value) == {
        "metadata": {"mobile": value}, "value": value}


def test_ids_stay_readable_whatever_digits_they_hold() -> None:
    event = {"job_id": "4155550123", "id": "0170 1234567", "call_ids": ["4155550123"],
             "metadata": {"customer_id": "4155550123"}}
    assert run(**event) == event


def test_integers_stay_readable_outside_phone_keys() -> None:
    """Counts, amounts and epoch milliseconds are integers; a number under a phone key is
    masked whatever its type."""
    assert run(count=1234567, finished_ms=1700000000000) == {
        "count": 1234567, "finished_ms": 1700000000000}
    assert run(to=14155550123) == {"to": "********123"}


separator = st.sampled_from(["", " ", "-", ".", " - "])
phone_spellings = st.builds(
    lambda plus, groups, seps, paren: (
        ("+" if plus else "") + (f"({groups[0]})" if paren else groups[0])
        + "".join(s + g for s, g in zip(seps, groups[1:], strict=False))),
    st.booleans(),
    st.lists(st.from_regex(r"[0-9]{1,4}", fullmatch=True), min_size=2, max_size=5).filter(
        lambda gs: 7 <= sum(map(len, gs)) <= 15),
    st.lists(separator.filter(bool), min_size=4, max_size=4),
    st.booleans()).filter(lambda s: not NUMBERS_WITH_DOTS.fullmatch(s))


@settings(deadline=None)
@given(phone_spellings, st.text(alphabet="abcdefghijklmnop_", min_size=1, max_size=10).filter(
    lambda k: k != "id" and not k.endswith("_id")))  # ids stay readable, by design
def test_any_spelling_of_7_to_15_digits_is_masked_to_its_last_three(
        number: str, key: str) -> None:
    assert looks_like_phone(number)
    shown = run(metadata={key: number})["metadata"][key]
    assert digits(shown) == digits(number)[-3:]


@settings(deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_iso_timestamps_and_dates_are_never_masked(t: Any) -> None:
    for text in (t.isoformat(), t.date().isoformat(), t.isoformat(sep=" ")):
        assert not looks_like_phone(text) and scrub_text(text) == text


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=10**14), st.integers(min_value=0, max_value=99))
def test_stream_entry_ids_and_decimal_amounts_are_never_masked(n: int, cents: int) -> None:
    for text in (f"{1_700_000_000_000 + n % 10**12}-{cents}", f"{n}.{cents:02d}"):
        assert not looks_like_phone(text)


@given(st.text(alphabet="0123456789 -.()+", max_size=30))
def test_what_looks_like_a_phone_has_7_to_15_digits(text: str) -> None:
    if looks_like_phone(text):
        assert 7 <= len(digits(text)) <= 15


def test_the_console_payload_masks_numbers_under_any_key() -> None:
    raw = json.dumps({"id": "a1", "to": "+14155550142",
                      "metadata": {"mobile": "+1 (415) 555-0177", "phone_alt": "4155550188",
                                   "order": "ord-2026-000123", "amount": "1234.56"}})
    html = pages._payload(raw, show_numbers=False)
    assert "0142" not in html and "0177" not in html and "0188" not in html
    assert "ord-2026-000123" in html and "1234.56" in html
    assert "0177" in pages._payload(raw, show_numbers=True)


def test_explain_masks_numbers_in_timeline_entries() -> None:
    words = event_words({"t": 0, "e": "note", "alt": "+1 415 555 0199", "n": 3})
    assert "0199" not in words and "199" in words
    assert "0199" not in event_words({"t": 0, "e": "waiting", "r": "window",
                                      "d": "(415) 555-0199"})
