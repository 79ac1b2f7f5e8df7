"""Shortcuts taken on the per-job path give exactly what the plain code gives."""

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.core import codec, jobs
from dispatcher.core.model import iso

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


def _plain_iso(ms: int | float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


# up to 2100: later, a float of seconds no longer holds every millisecond and the plain format
# itself is off by one (the shortcut, on integers, is not)
@given(st.integers(min_value=0, max_value=4102444800000))
def test_iso_of_whole_milliseconds_is_the_plain_format(ms: int) -> None:
    assert iso(ms) == _plain_iso(ms)


@given(st.floats(min_value=0, max_value=4102444800000, allow_nan=False))
def test_iso_of_fractional_milliseconds_is_the_plain_format(ms: float) -> None:
    assert iso(ms) == _plain_iso(ms)


def test_iso_reuses_a_second_but_not_its_milliseconds() -> None:
    assert iso(1764959913123) == "2025-12-05T18:38:33.123Z"
    assert iso(1764959913007) == "2025-12-05T18:38:33.007Z"
    assert iso(1764959914000) == "2025-12-05T18:38:34.000Z"
    assert iso(None) is None


@given(JSON)
def test_codec_writes_the_value_the_standard_library_writes(value: Any) -> None:
    assert json.loads(codec.dumps(value)) == json.loads(json.dumps(value))
    assert json.loads(codec.dumpb(value)) == json.loads(json.dumps(value))


@given(JSON.filter(lambda v: not _big_int(v)), st.booleans())
def test_codec_reads_what_the_standard_library_reads(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert codec.loads(text) == json.loads(text)
    assert codec.loads(text.encode()) == json.loads(text)


def _big_int(value: Any) -> bool:
    if isinstance(value, list):
        return any(_big_int(v) for v in value)
    if isinstance(value, dict):
        return any(_big_int(v) for v in value.values())
    return isinstance(value, int) and not -(2**63) <= value < 2**64


def test_codec_falls_back_for_what_orjson_refuses() -> None:
    assert codec.dumps({1: "a"}) == '{"1":"a"}'  # a non-string key
    assert codec.dumps(2**70) == str(2**70)
    assert codec.dumpb("\ud800") == b'"\\ud800"'  # a lone surrogate, escaped as before
    assert math.isnan(codec.loads("NaN"))
    assert codec.dumps(float("nan")) == "null"  # the standard library writes NaN: not JSON


@given(JSON)
def test_exact_reads_are_the_standard_librarys_value_for_value(value: Any) -> None:
    """Integers beyond 64 bits included: they stay integers (orjson would make floats)."""
    text = json.dumps(value)
    assert repr(codec.loads_exact(text)) == repr(json.loads(text))
    assert repr(codec.loads_exact(text.encode())) == repr(json.loads(text))


def test_exact_reads_keep_the_standard_librarys_errors_and_extensions() -> None:
    assert codec.loads_exact('{"id": 123456789012345678901234567890}') == {
        "id": 123456789012345678901234567890}
    assert math.isinf(codec.loads_exact("1e400"))
    assert math.isnan(codec.loads_exact("NaN"))
    assert codec.loads_exact('{"a": 1, "a": 2}') == {"a": 2}
    for bad in ("", "{", b"\xff"):
        with pytest.raises(ValueError):
            codec.loads_exact(bad)
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(RecursionError):
        json.loads(deep)
    with pytest.raises(RecursionError):
        codec.loads_exact(deep)


def _outcome(fn: Any, text: str) -> tuple[str, str]:
    try:
        return "ok", repr(fn(text))
    except jobs._Refused as exc:
        return "refused", str(exc)


KEYS = st.sampled_from(["id", "to", "a", "metadata", "é", 'q"t', "x\\y"]) | st.text(max_size=3)


@settings(max_examples=500)
@given(st.lists(st.tuples(KEYS, JSON), max_size=5), st.booleans())
def test_a_payload_reads_as_the_strict_decoder_reads_it(members: list[tuple[str, Any]],
                                                        ascii_only: bool) -> None:
    """Keys given twice, escapes, floats and integers beyond 64 bits included: the quick read
    takes only what the strict decoder would take the same way."""
    text = "{" + ",".join(f"{json.dumps(k, ensure_ascii=ascii_only)}:"
                          f"{json.dumps(v, ensure_ascii=ascii_only)}" for k, v in members) + "}"
    assert _outcome(jobs._load, text) == _outcome(jobs._strict, text)


@pytest.mark.parametrize("text", [
    '{"id":"a","id":"b"}', '{"metadata":{"x":1,"x":2}}', '{"a":"\\ud800"}', '{"a":NaN}',
    '{"a":1e400}', '{"a":123456789012345678901234567890}', '{"a":[1,2,]}', '{"a":1.5}',
    '{"a":"x"}', "[]", "null", '{"a":"\\u00e9"}', '{"a":"é"}'])
def test_payload_edges_read_as_the_strict_decoder_reads_them(text: str) -> None:
    assert _outcome(jobs._load, text) == _outcome(jobs._strict, text)
