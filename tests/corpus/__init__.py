"""The shared job corpus: the JSONL files plus payloads that cannot live in JSON text.

Each bad case names the field its error must start with. ``job`` holds the job as a JSON
value; ``raw`` holds payload text (or bytes) exactly as a producer wrote it. ``schema: false``
marks a case the JSON Schema cannot judge (phone validity, zones, the horizon, sizes, ...).
Every time-dependent case is judged at NOW.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatcher.core.jobs import JobRules

HERE = Path(__file__).parent
NOW = 1767225600.0  # 2026-01-01T00:00:00Z: the clock every corpus case is judged at
GOOD_TO = "+14155550100"
_MISSING = object()


@dataclass(frozen=True)
class Case:
    note: str
    job: Any = _MISSING  # the job as a JSON value
    raw: str | bytes | None = None  # or the payload exactly as written
    field: str | None = None  # bad cases: the field the error starts with
    rules: JobRules = dataclasses.field(default_factory=JobRules)
    schema: bool = True  # False: the JSON Schema cannot judge this case
    expect: dict[str, Any] = dataclasses.field(default_factory=dict)  # good cases: Job attributes

    @property
    def payload(self) -> str | bytes | None:
        return self.raw if self.job is _MISSING else json.dumps(self.job)

    @property
    def has_json(self) -> bool:
        """The case is a JSON value a schema validator can be given."""
        return self.job is not _MISSING

    def __str__(self) -> str:
        return self.note


def _read(name: str) -> list[Case]:
    cases = []
    for line in (HERE / name).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rules = JobRules(number_check=row.pop("check", "valid"))
        cases.append(Case(rules=rules, **row))
    return cases


def _job(**fields: Any) -> str:
    return json.dumps({"id": "a1", "to": GOOD_TO, **fields})


def generated_bad() -> list[Case]:
    """Payloads that JSON text cannot carry, or that are too large to keep in a file."""
    latin1 = '{"id": "a1", "to": "+14155550100", "metadata": {"name": "Zo\u00eb"}}'
    roomy = JobRules(max_payload_bytes=4_000_000)
    return [
        Case("bytes: Latin-1 inside a string", raw=latin1.encode("latin-1"), field="job"),
        Case("bytes: a lone 0xff", raw=b"\xff", field="job"),
        Case("bytes: overlong encoding of /", raw=b'{"id": "a\xc0\xaf", "to": "x"}',
             field="job"),
        Case("bytes: an encoded surrogate", raw=b'{"id": "a\xed\xa0\x80"}', field="job"),
        Case("bytes: truncated multi-byte sequence", raw='{"id": "\u00e9'.encode()[:-1],
             field="job"),
        Case("text: a lone surrogate character", raw=_job(metadata={"k": "x"}).replace(
            '"x"', '"\ud800"'), field="job"),
        Case("text: 100,000-deep nesting within the default size limit is refused by size",
             raw="[" * 100_000 + "]" * 100_000, field="job"),
        Case("text: 100,000-deep nesting with a roomy size limit",
             raw="[" * 100_000 + "]" * 100_000, field="job", rules=roomy),
        Case("text: 100,000-deep objects in metadata", raw='{"id": "a1", "to": "+14155550100", '
             '"metadata": ' + '{"a":' * 100_000 + "1" + "}" * 100_001, field="job", rules=roomy),
        Case("text: 30,000-deep arrays under 64 KiB", raw="[" * 30_000 + "]" * 30_000,
             field="job"),
        Case("text: 1 MB metadata is over the payload limit", raw=_job(metadata={
            "x": "y" * 1_000_000}), field="job"),
        Case("text: 1 MB metadata with a roomy payload limit", raw=_job(metadata={
            "x": "y" * 1_000_000}), field="metadata", rules=roomy),
        Case("bytes: payload one byte over the limit", raw=_job(metadata={
            "x": "y" * (65536 - len(_job(metadata={"x": ""})) + 1)}).encode(), field="job"),
        Case("bytes: 1 MB of 0xff", raw=b"\xff" * 1_000_000, field="job"),
    ]


def generated_good() -> list[Case]:
    exact = _job(metadata={"x": "z" * 4000}, campaign="c")
    pad = 65536 - len(exact.encode())
    return [
        Case("bytes: a UTF-8 job", raw=_job(metadata={"name": "Zo\u00eb \U0001F600"}).encode()),
        Case("text: a payload of exactly 64 KiB", raw=exact[:-1] + " " * pad + "}"),
    ]


def bad_cases() -> list[Case]:
    return _read("jobs_bad.jsonl") + generated_bad()


def good_cases() -> list[Case]:
    return _read("jobs_good.jsonl") + generated_good()


def results(name: str) -> list[dict[str, Any]]:
    """Example results (``results_good.jsonl`` / ``results_bad.jsonl``), each with a note."""
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]
