import json

import pytest

from dispatcher.jobs import InvalidJob, Job, parse_job


def bad(payload: object) -> InvalidJob:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    res = parse_job(raw)
    assert isinstance(res, InvalidJob), res
    return res


def test_minimal_job_parses_with_defaults() -> None:
    job = parse_job('{"id": "a1", "to": "+14155550100"}')
    assert isinstance(job, Job)
    assert (job.id, job.to, job.provider, job.metadata) == ("a1", "+14155550100", "default", {})


@pytest.mark.parametrize(("payload", "field"), [
    ("{not json", "job"),
    ("[1, 2]", "job"),
    ({"to": "+14155550100"}, "id"),
    ({"id": "has space", "to": "+14155550100"}, "id"),
    ({"id": "x" * 129, "to": "+14155550100"}, "id"),
    ({"id": "a"}, "to"),
    ({"id": "a", "to": "04155550100"}, "to"),
    ({"id": "a", "to": 14155550100}, "to"),
    ({"id": "a", "to": "+1415555", "agent_id": "x", "workflow_id": "y"}, "workflow_id"),
    ({"id": "a", "to": "+14155550100", "metadata": {"x": "y" * 5000}}, "metadata"),
    ({"id": "a", "to": "+14155550100", "metadata": [1]}, "metadata"),
    ({"id": "a", "to": "+14155550100", "not_before": "tomorrow"}, "not_before"),
    ({"id": "a", "to": "+14155550100", "expires_at": "2026-01-01T00:00:00"}, "expires_at"),
    ({"id": "a", "to": "+14155550100", "max_attempts": 0}, "max_attempts"),
    ({"id": "a", "to": "+14155550100", "max_attempts": True}, "max_attempts"),
    ({"id": "a", "to": "+14155550100", "agent_id": ""}, "agent_id"),
    ({"id": "a", "to": "+14155550100", "colour": "red"}, "colour"),
])
def test_malformed_job_names_the_field(payload: object, field: str) -> None:
    res = bad(payload)
    assert res.error.startswith(field + ":"), res.error


def test_invalid_job_keeps_its_id_and_metadata_for_the_result() -> None:
    res = bad({"id": "k9", "to": "nope", "metadata": {"lead": 3}, "provider": "eu"})
    assert (res.job_id, res.metadata, res.provider) == ("k9", {"lead": 3}, "eu")


def test_times_are_parsed_with_offsets() -> None:
    job = parse_job(json.dumps({"id": "a", "to": "+14155550100",
                                "not_before": "2026-01-01T00:00:00Z",
                                "expires_at": "2026-01-01T01:00:00+01:00"}))
    assert isinstance(job, Job)
    assert job.not_before == job.expires_at == 1767225600.0


def test_wire_round_trip() -> None:
    raw = {"id": "a", "to": "+14155550100", "from": "tel_pn_x", "agent_id": "ag",
           "provider": "eu", "metadata": {"k": 1}, "max_attempts": 3}
    job = parse_job(json.dumps(raw))
    assert isinstance(job, Job)
    assert job.to_wire() == raw


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=10)
fields = st.sampled_from(["id", "to", "from", "agent_id", "workflow_id", "provider",
                          "metadata", "not_before", "expires_at", "max_attempts", "x"])


@settings(deadline=None)
@given(st.dictionaries(fields, json_values, max_size=8) | st.binary(max_size=50).map(repr))
def test_parse_never_raises_and_always_names_a_field(payload: object) -> None:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    res = parse_job(raw)
    if isinstance(res, InvalidJob):
        assert ":" in res.error and res.error.split(":")[0] in (
            "job", "id", "to", "from", "agent_id", "workflow_id", "provider", "metadata",
            "not_before", "expires_at", "max_attempts", "x")


@settings(deadline=None)
@given(st.builds(
    dict, id=st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True),
    to=st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
    metadata=st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
    max_attempts=st.integers(1, 20)))
def test_valid_jobs_round_trip_through_the_wire_form(job: dict[str, object]) -> None:
    parsed = parse_job(json.dumps(job))
    assert isinstance(parsed, Job)
    assert parse_job(json.dumps(parsed.to_wire())) == parsed
