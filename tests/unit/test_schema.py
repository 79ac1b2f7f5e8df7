"""The JSON Schemas in docs/schemas agree with the parser on the shared corpus.

Patterns are judged with ECMA-262 semantics, as ajv and Go validators do: Python's ``re``
lets ``$`` match before a trailing newline, which the contract (and the parser) refuses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError, validators

from dispatcher.core.decide import Finish
from dispatcher.core.jobs import (
    ID_RE,
    KNOWN_FIELDS,
    MAX_ATTEMPTS_CAP,
    NAME_RE,
    PRIORITIES,
    RFC3339_RE,
    TEXT_RE,
    ZONE_MAX_LEN,
    ZONE_RE,
    InvalidJob,
    parse_job,
)
from dispatcher.core.model import Outcome
from dispatcher.engine import results
from tests.corpus import NOW, Case, bad_cases, good_cases
from tests.corpus import results as example_results

SCHEMAS = Path(__file__).parents[2] / "docs" / "schemas"
JOB_SCHEMA = json.loads((SCHEMAS / "job.schema.json").read_text(encoding="utf-8"))
RESULT_SCHEMA = json.loads((SCHEMAS / "result.schema.json").read_text(encoding="utf-8"))


def ecma(pattern: str) -> re.Pattern[str]:
    """Python's re with ECMA-262's ``$``: the end of the string, never before a newline."""
    out: list[str] = []
    in_class, i = False, 0
    while i < len(pattern):
        step = 2 if pattern[i] == "\\" else 1
        piece = pattern[i:i + step]
        if step == 1 and in_class:
            in_class = piece != "]"
        elif piece == "[":
            in_class = True
        elif piece == "$":
            piece = r"\Z"
        out.append(piece)
        i += step
    return re.compile("".join(out))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[
        ValidationError]:
    if isinstance(instance, str) and not ecma(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})
JOB = EcmaValidator(JOB_SCHEMA)
RESULT = EcmaValidator(RESULT_SCHEMA)


def schema_cases(cases: list[Case], judged: bool) -> list[Case]:
    return [c for c in cases if c.has_json and c.schema is judged]


def test_ecma_dollar_is_the_end_of_the_string() -> None:
    assert ecma("^a$").search("a") and not ecma("^a$").search("a\n")
    assert ecma("^[$]$").search("$") and ecma(r"^\$$").search("$")


@pytest.mark.parametrize("schema", [JOB_SCHEMA, RESULT_SCHEMA], ids=["job", "result"])
def test_schema_is_valid_draft_2020_12(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("case", schema_cases(good_cases(), True), ids=str)
def test_schema_accepts_every_good_job(case: Case) -> None:
    assert list(JOB.iter_errors(case.job)) == []


@pytest.mark.parametrize("case", schema_cases(bad_cases(), True), ids=str)
def test_schema_refuses_every_bad_job_it_can_judge(case: Case) -> None:
    assert not JOB.is_valid(case.job)


@pytest.mark.parametrize("case", schema_cases(bad_cases(), False), ids=str)
def test_cases_marked_beyond_the_schema_really_are(case: Case) -> None:
    """Only the parser refuses these: the marking in the corpus is honest."""
    assert JOB.is_valid(case.job)


def test_schema_lists_exactly_the_parsers_fields() -> None:
    assert set(JOB_SCHEMA["properties"]) == KNOWN_FIELDS
    assert JOB_SCHEMA["additionalProperties"] is False
    assert JOB_SCHEMA["required"] == ["id", "to"]


def test_schema_patterns_are_the_parsers() -> None:
    props, defs = JOB_SCHEMA["properties"], JOB_SCHEMA["$defs"]
    assert props["id"]["pattern"] == f"^{ID_RE.pattern}$"
    for name in ("provider", "campaign"):
        assert props[name]["anyOf"][0]["pattern"] == f"^{NAME_RE.pattern}$"
    assert defs["time"]["pattern"] == f"^{RFC3339_RE.pattern}$"
    assert RESULT_SCHEMA["$defs"]["time"]["pattern"] == f"^{RFC3339_RE.pattern}$"
    assert defs["timezone"]["pattern"] == f"^{ZONE_RE.pattern}$"
    assert defs["timezone"]["maxLength"] == ZONE_MAX_LEN


@pytest.mark.parametrize("name", ["from", "agent_id", "workflow_id"])
def test_schema_text_pattern_refuses_the_characters_the_parser_refuses(name: str) -> None:
    schema = ecma(JOB_SCHEMA["properties"][name]["anyOf"][0]["pattern"])
    for code in [*range(0x100), 0x2028, 0xFEFF, 0x1F600]:
        text = f"a{chr(code)}b"
        assert bool(schema.search(text)) == bool(TEXT_RE.fullmatch(text)), hex(code)


def test_schema_enums_and_bounds_are_the_parsers() -> None:
    props = JOB_SCHEMA["properties"]
    assert tuple(props["priority"]["anyOf"][0]["enum"]) == PRIORITIES
    assert props["max_attempts"]["anyOf"][0]["maximum"] == MAX_ATTEMPTS_CAP


@pytest.mark.parametrize("example", example_results("results_good.jsonl"),
                         ids=lambda e: e["note"])
def test_example_result_is_valid(example: dict[str, Any]) -> None:
    assert list(RESULT.iter_errors(example["result"])) == []


@pytest.mark.parametrize("example", example_results("results_bad.jsonl"),
                         ids=lambda e: e["note"])
def test_broken_result_is_refused(example: dict[str, Any]) -> None:
    assert not RESULT.is_valid(example["result"])


@pytest.mark.parametrize("case", bad_cases(), ids=str)
def test_invalid_result_of_every_bad_job_matches_the_result_schema(case: Case) -> None:
    res = parse_job(case.payload, case.rules, now=NOW)
    assert isinstance(res, InvalidJob)
    fin = Finish(Outcome.INVALID, {"error_message": res.error})
    body = results.build(res, fin, attempts=0, first_seen_ms=None,
                         now_ms=int(NOW * 1000)).to_json()
    wire = json.loads(json.dumps(body, allow_nan=False))
    assert list(RESULT.iter_errors(wire)) == []


def test_the_result_schema_lists_every_blocked_reason() -> None:
    from dispatcher.core.model import BlockReason
    blocked = next(part for part in RESULT_SCHEMA["allOf"]
                   if part["if"]["properties"]["outcome"].get("const") == "blocked")
    assert set(blocked["then"]["properties"]["reason"]["enum"]) == {r.value for r in BlockReason}
