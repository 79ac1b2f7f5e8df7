"""Erasure finds a number in stored text in any spelling a producer may have written."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.store.mentions import mentions, needle

ALICE = "+14155550111"
VIENNA = "+43720123456"

FOUND = [
    (ALICE, "+14155550111"), (ALICE, "+1 415 555 0111"), (ALICE, "+1-415-555-0111"),
    (ALICE, "+1 (415) 555-0111"), (ALICE, "(415) 555-0111"), (ALICE, "415.555.0111"),
    (ALICE, "4155550111"), (ALICE, "1-415-555-0111"), (ALICE, "14155550111"),
    (ALICE, "+14155550111\n"), (ALICE, json.dumps({"to": "+14155550111\n"})),
    (ALICE, "to: '+14155550111\\n' is not"), (ALICE, '{"alt_phone":"(415) 555-0111"}'),
    (VIENNA, "+43 720 123456"), (VIENNA, "0720 123456"), (VIENNA, "+43 (0)720 123456"),
    (VIENNA, "0043 720 123456"),
]
NOT_FOUND = [
    (ALICE, "+14155550112"), (ALICE, "41555501110"), (ALICE, "+141555501119"),
    (ALICE, "94155550111"), (ALICE, "415 555 011"), (ALICE, "job-4155550"),
    (VIENNA, "+43 720 1234567"), (VIENNA, "+44 720 123456"),
]


@pytest.mark.parametrize(("number", "text"), FOUND)
def test_a_spelling_is_found(number: str, text: str) -> None:
    assert mentions(f"x {text} y", [needle(number)]) == {number}
    assert mentions(text, [needle(number)]) == {number}


@pytest.mark.parametrize(("number", "text"), NOT_FOUND)
def test_another_number_is_not_found(number: str, text: str) -> None:
    assert mentions(text, [needle(number)]) == set()


spelled = st.builds(
    lambda lead, seps: lead + "".join(s + d for s, d in zip(seps, "4155550111", strict=True)),
    st.sampled_from(["+1", "+1 ", "1-", "", "(", "+1 ("]),
    st.lists(st.sampled_from(["", "", " ", "-", ".", ") "]), min_size=10, max_size=10))


@settings(deadline=None)
@given(spelled, st.sampled_from(["", "\n", '"', " and more", ", "]))
def test_any_separators_between_the_digits_are_found(text: str, after: str) -> None:
    assert mentions(f"note: {text}{after}", [needle(ALICE)]) == {ALICE}
