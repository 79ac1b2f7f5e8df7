import json
import math
import zoneinfo
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import phonenumbers
import pytest

from dispatcher.core.jobs import (
    KNOWN_FIELDS,
    MAX_ATTEMPTS_CAP,
    METADATA_MAX_BYTES,
    NAME_RE,
    ZONES_REFUSED,
    InvalidJob,
    Job,
    JobRules,
    parse_job,
)
from dispatcher.engine.context import Parsed

NOW = 1767225600.0  # 2026-01-01T00:00:00Z
# libphonenumber's example numbers: valid in every supported region, mobile and fixed line
VALID_NUMBERS = sorted({
    phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
    for region in phonenumbers.SUPPORTED_REGIONS
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)
    if (n := phonenumbers.example_number_for_type(region, kind)) is not None})
ZONES = sorted(zoneinfo.available_timezones() - set(ZONES_REFUSED))


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
    ({"id": "a", "to": "+14155550100", "agent_id": "x", "workflow_id": "y"}, "workflow_id"),
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
    to=st.sampled_from(VALID_NUMBERS),
    metadata=st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
    max_attempts=st.integers(1, 20)))
def test_valid_jobs_round_trip_through_the_wire_form(job: dict[str, object]) -> None:
    parsed = parse_job(json.dumps(job))
    assert isinstance(parsed, Job)
    assert parse_job(json.dumps(parsed.to_wire())) == parsed


# -- the hardened contract ----------------------------------------------------------------------

def job(**fields: Any) -> str:
    return json.dumps({"id": "a1", "to": "+14155550100", **fields})


def test_new_fields_default_to_absent_and_normal() -> None:
    parsed = parse_job(job(), now=NOW)
    assert isinstance(parsed, Job)
    assert (parsed.campaign, parsed.priority, parsed.timezone) == (None, "normal", None)


def test_new_fields_are_read() -> None:
    parsed = parse_job(job(campaign="spring:2026", priority="low", timezone="Europe/Vienna"),
                       now=NOW)
    assert isinstance(parsed, Job)
    assert (parsed.campaign, parsed.priority, parsed.timezone) == (
        "spring:2026", "low", "Europe/Vienna")


def test_to_is_stored_in_e164_form() -> None:
    parsed = parse_job(job(to="+1 (415) 555-0100"), now=NOW)
    assert isinstance(parsed, Job) and parsed.to == "+14155550100"


def test_possible_check_accepts_what_the_valid_check_refuses() -> None:
    raw = job(to="+1 555 555 0100")
    refused = parse_job(raw, now=NOW)
    assert isinstance(refused, InvalidJob) and "'valid'" in refused.error
    accepted = parse_job(raw, JobRules(number_check="possible"), now=NOW)
    assert isinstance(accepted, Job) and accepted.to == "+15555550100"


def test_horizon_is_counted_from_now_and_named_in_the_error() -> None:
    rules = JobRules(max_schedule_ahead_s=3600)
    inside = parse_job(job(expires_at="2026-01-01T01:00:00Z"), rules, now=NOW)
    outside = parse_job(job(expires_at="2026-01-01T01:00:01Z"), rules, now=NOW)
    later = parse_job(job(expires_at="2026-01-01T01:00:01Z"), rules, now=NOW + 1)
    assert isinstance(inside, Job) and isinstance(later, Job)
    assert isinstance(outside, InvalidJob)
    assert outside.error.startswith("expires_at:") and "3600 seconds" in outside.error


def test_default_horizon_is_366_days() -> None:
    res = parse_job(job(not_before="9999-12-31T00:00:00Z"), now=NOW)
    assert isinstance(res, InvalidJob) and "366 days" in res.error


def test_the_horizon_is_a_setting_of_the_deployment() -> None:
    from dispatcher.config.settings import Settings

    rules = Settings.model_validate({"jobs": {"max_schedule_ahead_s": 3600}}).job_rules()
    res = parse_job(job(not_before="2026-01-01T01:00:01Z"), rules, now=NOW)
    assert isinstance(res, InvalidJob) and "jobs.max_schedule_ahead_s" in res.error
    assert Settings().job_rules().max_schedule_ahead_s == 366 * 86400


def test_payload_limit_is_a_rule() -> None:
    raw = job(metadata={"x": "y" * 100})
    assert isinstance(parse_job(raw, now=NOW), Job)
    small = parse_job(raw, JobRules(max_payload_bytes=100), now=NOW)
    assert isinstance(small, InvalidJob) and small.error.startswith("job:")


def test_bytes_are_decoded_as_utf8() -> None:
    parsed = parse_job(job(metadata={"name": "Zoë"}).encode(), now=NOW)
    assert isinstance(parsed, Job) and parsed.metadata == {"name": "Zoë"}
    latin1 = '{"id": "a1", "to": "+14155550100", "metadata": {"name": "Zoë"}}'.encode("latin-1")
    res = parse_job(latin1, now=NOW)
    assert isinstance(res, InvalidJob) and res.error.startswith("job: not UTF-8")


def test_input_that_is_not_text_is_refused_not_raised() -> None:
    res = parse_job(12345, now=NOW)  # type: ignore[arg-type]
    assert isinstance(res, InvalidJob) and res.error.startswith("job:")


def test_to_wire_writes_times_in_utc() -> None:
    parsed = parse_job(job(not_before="2026-01-01T09:30:00+09:30"), now=NOW)
    assert isinstance(parsed, Job)
    assert parsed.to_wire()["not_before"] == "2026-01-01T00:00:00Z"


def test_to_wire_writes_only_fields_that_differ_from_the_defaults() -> None:
    parsed = parse_job(job(priority="normal", campaign=None), now=NOW)
    assert isinstance(parsed, Job) and parsed.to_wire() == {"id": "a1", "to": "+14155550100"}


def test_invalid_job_keeps_a_valid_campaign() -> None:
    res = parse_job(job(to="nope", campaign="c1", provider="eu"), now=NOW)
    assert isinstance(res, InvalidJob) and (res.campaign, res.provider) == ("c1", "eu")


def test_invalid_job_drops_pieces_that_are_not_safe_to_echo() -> None:
    res = InvalidJob("a\n", "x" * 10_000, {"n": math.nan}, "eu west", "c" * 65)
    assert (res.job_id, res.metadata, res.provider, res.campaign) == (None, {}, "default", None)
    assert len(res.error) == 300


def test_invalid_job_drops_metadata_over_4_kib() -> None:
    big = {"x": "y" * METADATA_MAX_BYTES}
    assert InvalidJob("a", "job: x", big).metadata == {}
    assert InvalidJob("a", "job: x", {"x": "y"}).metadata == {"x": "y"}


def test_invalid_job_from_a_1_mb_metadata_is_small() -> None:
    raw = job(to="nope", metadata={"x": "y" * 1_000_000})
    res = parse_job(raw, JobRules(max_payload_bytes=2_000_000), now=NOW)
    assert isinstance(res, InvalidJob)
    assert (res.job_id, res.metadata) == ("a1", {}) and res.error.startswith("to:")


def test_deep_nesting_is_refused_without_recursion() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    res = parse_job(deep, JobRules(max_payload_bytes=1_000_000), now=NOW)
    assert isinstance(res, InvalidJob) and "nested deeper than 32" in res.error


# -- properties ---------------------------------------------------------------------------------

FIELD_NAMES = sorted(KNOWN_FIELDS)
ERROR_PREFIXES = {"job", *KNOWN_FIELDS}
tricky_strings = st.sampled_from([
    "", " ", "a\n", "+14155550100", "+14155550100\n", "+1 415 555 0100", "+1415555",
    "04155550100", "+١٤١٥٥٥٥٠١٠٠", "2026-01-01T00:00:00Z", "9999-12-31T00:00:00Z",
    "2026-01-01T00:00:00", "high", "normal", "Europe/Vienna", "localtime", "../etc", "America",
    "x" * 300, "\ud800", "\x00", "NaN"])
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | tricky_strings,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(FIELD_NAMES) | st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
job_objects = st.dictionaries(st.sampled_from([*FIELD_NAMES, "x", "my field"]), values,
                              max_size=10)


def top_level_keys(payload: str | bytes) -> set[str]:
    """The payload's own field names: an unknown one may head the error."""
    try:
        value = json.loads(payload)
    except ValueError:
        return set()
    return set(value) if isinstance(value, dict) else set()


def check_invalid(payload: str | bytes, res: Job | InvalidJob) -> None:
    """An invalid result names a field and is small, valid JSON."""
    if isinstance(res, Job):
        return
    prefix = res.error.split(":")[0]
    assert prefix in ERROR_PREFIXES | top_level_keys(payload), res.error
    assert "internal error" not in res.error
    assert len(res.error) <= 300
    pieces = {"job_id": res.job_id, "error_message": res.error, "metadata": res.metadata,
              "provider": res.provider, "campaign": res.campaign}
    encoded = json.dumps(pieces, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert len(encoded) < METADATA_MAX_BYTES + 2048
    assert NAME_RE.fullmatch(res.provider)
    assert res.campaign is None or NAME_RE.fullmatch(res.campaign)


@settings(deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(text: str) -> None:
    check_invalid(text, parse_job(text, now=NOW))


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    check_invalid(data, parse_job(data, now=NOW))


@settings(deadline=None)
@given(values)
def test_arbitrary_json_values_never_raise(value: object) -> None:
    raw = json.dumps(value)
    check_invalid(raw, parse_job(raw, now=NOW))


@settings(deadline=None)
@given(job_objects, st.sampled_from(["valid", "possible"]))
def test_job_like_objects_never_raise_and_name_a_field(obj: dict[str, Any], check: str) -> None:
    raw = json.dumps(obj)
    check_invalid(raw, parse_job(raw, JobRules(number_check=check), now=NOW))  # type: ignore[arg-type]


@settings(deadline=None)
@given(st.sampled_from([*FIELD_NAMES, "x" * 50]), st.text(min_size=41, max_size=200))
def test_errors_never_quote_more_than_40_characters(name: str, long: str) -> None:
    marker = "Q" * 41 + long
    res = parse_job(json.dumps({"id": "a1", "to": "+14155550100", name: marker}), now=NOW)
    if isinstance(res, InvalidJob):
        assert "Q" * 41 not in res.error


def wire_time(dt: datetime) -> str:
    return dt.isoformat()


times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2026, 12, 31),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                timezone(-timedelta(hours=8))])).map(wire_time)
json_safe = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)
names = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
valid_jobs = st.fixed_dictionaries(
    {"id": st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True),
     "to": st.sampled_from(VALID_NUMBERS)},
    optional={"from": st.from_regex(r"[A-Za-z0-9_+]{1,64}", fullmatch=True),
              "agent_id": st.text(min_size=1, max_size=20).filter(str.isprintable),
              "workflow_id": st.text(min_size=1, max_size=20).filter(str.isprintable),
              "provider": names, "campaign": names,
              "metadata": st.dictionaries(st.text(max_size=8), json_safe, max_size=4),
              "not_before": times, "expires_at": times,
              "max_attempts": st.integers(1, MAX_ATTEMPTS_CAP),
              "priority": st.sampled_from(["high", "normal", "low"]),
              "timezone": st.sampled_from(ZONES)},
).filter(lambda d: not ("agent_id" in d and "workflow_id" in d))


@settings(deadline=None)
@given(valid_jobs)
def test_every_valid_job_round_trips_through_to_wire(obj: dict[str, Any]) -> None:
    parsed = parse_job(json.dumps(obj), now=NOW)
    assert isinstance(parsed, Job), parsed
    again = parse_job(json.dumps(parsed.to_wire(), allow_nan=False), now=NOW)
    assert again == parsed


STORED = JobRules(stored=True)


@settings(deadline=None)
@given(valid_jobs | job_objects)
def test_a_stored_payload_parses_to_the_job_it_was_at_intake(obj: dict[str, Any]) -> None:
    """The dial re-reads the stored payload without the checks it passed at intake: whatever
    intake accepted comes back as the same job."""
    raw = json.dumps(obj)
    at_intake = parse_job(raw, now=NOW)
    if isinstance(at_intake, Job):
        assert parse_job(raw, STORED, now=NOW) == at_intake


def test_parsed_payloads_are_kept_up_to_a_count_and_a_size() -> None:
    """The oldest go first; a payload padded to the size limit cannot make the cache big."""
    job = parse_job('{"id":"a","to":"+14155550100"}')
    kept = Parsed(entries=3, chars=100)
    for raw in ("a" * 10, "b" * 10, "c" * 10, "d" * 10):
        kept.put(raw, job)
    assert [kept.get(c * 10) is job for c in "abcd"] == [False, True, True, True]
    kept.put("d" * 10, job)  # again: counted once
    kept.put("e" * 85, job)  # 115 characters in 4 entries: b goes, then c
    assert len(kept) == 2 and kept.get("d" * 10) is job and kept.get("e" * 85) is job
    kept.put("f" * 500, job)  # alone over the size: not kept, and nothing else either
    assert len(kept) == 0
