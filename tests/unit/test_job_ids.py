"""A payload refused by the strict parser is still answered by its id when the id is plain."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.core.jobid import SCAN_CHARS, scan_id
from dispatcher.core.jobs import ID_RE, InvalidJob, JobRules, parse_job
from tests.corpus import NOW, Case, bad_cases

ids = st.from_regex(ID_RE, fullmatch=True)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=3),
    max_leaves=10)
others = st.dictionaries(st.text(max_size=8).filter(lambda k: k != "id"), JSON, max_size=5)


def _lenient(raw: str | bytes) -> Any:
    """What a forgiving reader makes of a payload: duplicates kept, NaN and 1e400 allowed."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    value, _ = json.JSONDecoder(object_pairs_hook=lambda p: p).raw_decode(
        text.lstrip(" \t\r\n\ufeff"))
    return value


def _expected(raw: str | bytes) -> str | None:
    """The id a payload plainly names: its top-level "id" given, once or more, as one valid id
    string (None when it names none, two, or one that is not a valid id)."""
    pairs = _lenient(raw)
    if not isinstance(pairs, list) or not all(isinstance(p, tuple) for p in pairs):
        return None
    given_ids = {json.dumps(v) for k, v in pairs if k == "id"}
    if len(given_ids) != 1:
        return None
    value = json.loads(given_ids.pop())
    return value if isinstance(value, str) and ID_RE.fullmatch(value) else None


def _readable(case: Case) -> bool:
    try:
        _lenient(case.payload or "")
    except (ValueError, RecursionError):
        return False
    return len(case.payload or "") <= SCAN_CHARS


@pytest.mark.parametrize("case", [c for c in bad_cases() if _readable(c)], ids=str)
def test_a_refused_corpus_job_is_answered_by_the_id_it_plainly_names(case: Case) -> None:
    res = parse_job(case.payload, case.rules, now=NOW)
    assert isinstance(res, InvalidJob)
    assert res.job_id == _expected(case.payload or "")


@pytest.mark.parametrize("note", [
    "duplicate field to", "duplicate key inside metadata", "NaN in metadata",
    "Infinity in metadata", "1e400 overflows to infinity",
    "lone UTF-16 surrogate escape in metadata", "nesting 33 levels deep",
    "text: a lone surrogate character", "text: 1 MB metadata is over the payload limit",
    "bytes: payload one byte over the limit", "text: 100,000-deep objects in metadata"])
def test_each_kind_of_refusal_named_in_the_contract_keeps_the_id(note: str) -> None:
    [case] = [c for c in bad_cases() if c.note == note]
    res = parse_job(case.payload, case.rules, now=NOW)
    assert isinstance(res, InvalidJob) and res.job_id == "a1", (res.job_id, res.error)


SPOILERS = {
    "nan": lambda d: json.dumps(d)[:-1] + ', "zz": NaN}',
    "infinity": lambda d: json.dumps(d)[:-1] + ', "zz": -Infinity}',
    "1e400": lambda d: json.dumps(d)[:-1] + ', "zz": 1e400}',
    "duplicate": lambda d: json.dumps(d)[:-1] + ', "zz": 1, "zz": 2}',
    "surrogate": lambda d: json.dumps(d)[:-1] + ', "zz": "\\udc00"}',
    "deep": lambda d: json.dumps(d)[:-1] + ', "zz": ' + "[" * 40 + "]" * 40 + "}",
    "oversize": lambda d: json.dumps(d)[:-1] + ', "zz": "' + "y" * 70_000 + '"}',
}


@settings(deadline=None, max_examples=200)
@given(ids, others, st.integers(min_value=0, max_value=5), st.sampled_from(sorted(SPOILERS)))
def test_a_payload_with_one_valid_top_level_id_gets_that_id_back(
        job_id: str, rest: dict[str, Any], at: int, spoiler: str) -> None:
    items = list(rest.items())
    items.insert(min(at, len(items)), ("id", job_id))
    raw = SPOILERS[spoiler](dict(items))
    res = parse_job(raw, JobRules(), now=NOW)
    assert isinstance(res, InvalidJob) and res.job_id == job_id, (res.error, raw[:200])


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "to", "x"]) | st.text(max_size=4),
                       JSON | ids, max_size=6))
def test_the_scan_reads_exactly_the_top_level_id_of_any_json_object(obj: dict[str, Any]) -> None:
    value = obj.get("id")
    want = value if isinstance(value, str) and ID_RE.fullmatch(value) else None
    assert scan_id(json.dumps(obj)) == want
    assert scan_id(json.dumps(obj, ensure_ascii=False).encode()) == want


@given(ids, ids)
def test_two_different_ids_give_none(a: str, b: str) -> None:
    raw = f'{{"id": "{a}", "to": "+14155550100", "id": "{b}"}}'
    assert scan_id(raw) == (a if a == b else None)


@pytest.mark.parametrize("raw", [
    '{"metadata": {"id": "inner"}, "to": NaN}',   # an id inside metadata is not the job's
    '{"id": 5, "to": NaN}', '{"id": "bad id", "to": NaN}', '{"id": ["a1"], "x": NaN}',
    '{"id" "a1", "x": NaN}', '{"id": "a1', '[{"id": "a1"}, NaN]', '{"x": "\\"id\\": \\"a1\\""}',
    '{"id": x"a1", "y": NaN}', '{"id": "a1", "id": null}', '{"id": ' + " " * SCAN_CHARS + '"a1"}',
])
def test_an_id_that_is_not_plainly_the_jobs_is_not_read(raw: str) -> None:
    assert scan_id(raw) is None
    res = parse_job(raw, now=NOW)
    assert isinstance(res, InvalidJob) and res.job_id is None


@given(st.text(max_size=300) | st.binary(max_size=300).map(bytes))
def test_the_scan_never_raises_and_answers_only_valid_ids(raw: str | bytes) -> None:
    found = scan_id(raw)
    assert found is None or ID_RE.fullmatch(found)


def test_the_scan_is_linear_on_unclosed_strings() -> None:
    assert scan_id('{"x": "' + '\\"' * 200_000) is None  # finishes: no quadratic back-tracking
