"""Untrusted input: both error envelopes, the FastAPI 422 body, garbage, the rate-limit
headers, the shared job corpus, and phone numbers."""

import json

import pytest

from dispatcher.core.jobs import METADATA_MAX_BYTES, InvalidJob, Job, parse_job
from dispatcher.core.numbers import dnc_key, normalise, time_zones
from dispatcher.providers.base import (
    Response,
    parse_error,
    parse_rate_headers,
    parse_retry_after,
)
from dispatcher.providers.itellico.adapter import normalise as itl
from dispatcher.providers.telecho.adapter import normalise as tel
from tests.corpus import NOW, Case, bad_cases, good_cases


def resp(status: int, body: object, **headers: str) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(status, headers, raw)


def test_telecho_envelope() -> None:
    e = parse_error(resp(429, {"error": {"type": "rate_limit_error",
                                         "code": "rate_limit_per_minute", "message": "slow"}},
                         **{"Retry-After": "7"}))
    assert (e.status, e.code, e.message, e.retry_after_s) == (429, "rate_limit_per_minute",
                                                              "slow", 7.0)


def test_itellico_envelope_names_fields() -> None:
    e = parse_error(resp(422, {"code": "validation_error", "message": "Validation failed",
                               "errors": [{"field": "to_number", "message": "bad",
                                           "type": "value_error"}]}))
    assert e.code == "validation_error" and e.fields == ("to_number",)
    assert "to_number: bad" in e.message


def test_fastapi_422() -> None:
    e = parse_error(resp(422, {"detail": [{"loc": ["body", "destination_number"],
                                           "msg": "invalid", "type": "value_error"}]}))
    assert e.code == "validation_error" and e.fields == ("destination_number",)


def test_garbage_body_keeps_status() -> None:
    e = parse_error(resp(502, b"<html>bad gateway</html>"))
    assert (e.status, e.code) == (502, "http_502") and "bad gateway" in e.message


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now=1767225600.0) == 10.0
    assert parse_retry_after("soon") is None


def test_rate_headers_all_windows() -> None:
    obs = parse_rate_headers({"X-RateLimit-Limit-Minute": "60",
                              "X-RateLimit-Remaining-Minute": "3",
                              "X-RateLimit-Reset-Minute": "12",
                              "x-ratelimit-remaining-hour": "900",
                              "X-RateLimit-Remaining-5s": "1"})
    assert [(o.seconds, o.remaining) for o in obs] == [(5, 1), (60, 3), (3600, 900)]
    assert obs[1].limit == 60 and obs[1].reset_s == 12


def test_normalise_telecho_answers() -> None:
    assert tel({"call_id": "c", "status": "busy"}).answer_status == "user_busy"
    assert tel({"call_id": "c", "status": "no_answer"}).answer_status == "user_unavailable"
    done = tel({"call_id": "c", "status": "completed", "answered_by": "machine",
                "metadata": {"dispatcher_job_id": "j"}, "duration_seconds": 3})
    assert (done.terminal, done.answer_status, done.correlation) == (True, "machine", "j")
    assert not tel({"call_id": "c", "status": "ringing"}).terminal


def test_normalise_itellico() -> None:
    live = itl({"id": "c", "status": "active", "answer_status": "waiting"})
    assert (live.status, live.terminal) == ("in_progress", False)
    end = itl({"id": "c", "status": "failed", "answer_status": "user_busy",
               "end_reason": "dial_busy", "external_id": "j"})
    assert (end.terminal, end.disconnection_reason, end.correlation) == (True, "dial_busy", "j")


# -- the shared job corpus ----------------------------------------------------------------------

@pytest.mark.parametrize("case", bad_cases(), ids=str)
def test_bad_corpus_job_is_invalid_and_names_its_field(case: Case) -> None:
    res = parse_job(case.payload, case.rules, now=NOW)
    assert isinstance(res, InvalidJob), res
    assert res.error.startswith(f"{case.field}:"), res.error
    assert "internal error" not in res.error


@pytest.mark.parametrize("case", bad_cases(), ids=str)
def test_bad_corpus_job_gives_a_small_json_result(case: Case) -> None:
    res = parse_job(case.payload, case.rules, now=NOW)
    assert isinstance(res, InvalidJob)
    body = json.dumps({"job_id": res.job_id, "error_message": res.error,
                       "metadata": res.metadata, "provider": res.provider,
                       "campaign": res.campaign}, allow_nan=False, ensure_ascii=False)
    assert len(body.encode("utf-8")) <= METADATA_MAX_BYTES + 512


@pytest.mark.parametrize("case", good_cases(), ids=str)
def test_good_corpus_job_parses(case: Case) -> None:
    job = parse_job(case.payload, case.rules, now=NOW)
    assert isinstance(job, Job), job
    assert {k: getattr(job, k) for k in case.expect} == case.expect


@pytest.mark.parametrize("case", good_cases(), ids=str)
def test_good_corpus_job_round_trips(case: Case) -> None:
    job = parse_job(case.payload, case.rules, now=NOW)
    assert isinstance(job, Job)
    assert parse_job(json.dumps(job.to_wire()), case.rules, now=NOW) == job


# -- phone numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "e164"), [
    ("+14155550100", "+14155550100"),
    ("+1 415 555 0100", "+14155550100"),
    ("+1 (212) 555-0123", "+12125550123"),
    ("+1.212.555.0199", "+12125550199"),
    ("+43 720 123456", "+43720123456"),
])
def test_normalise_returns_e164(text: str, e164: str) -> None:
    assert normalise(text, "valid") == normalise(text, "possible") == e164


@pytest.mark.parametrize(("text", "words"), [
    ("04155550100", "national number"),
    ("4155550100", "national number"),
    ("+14155550100\n", "expected an E.164 number"),
    ("+\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0660\u0660",
     "expected an E.164 number"),
    ("+1 555 555 0100", "failed the 'valid' number check"),
    ("+1 415 000 1234", "failed the 'valid' number check"),
    ("+999 123456", "no known country code"),
])
def test_normalise_refuses_with_a_to_message(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=r"^to: ") as info:
        normalise(text, "valid")
    assert words in str(info.value)


def test_possible_check_refuses_only_impossible_numbers() -> None:
    assert normalise("+1 555 555 0100", "possible") == "+15555550100"
    with pytest.raises(ValueError, match=r"^to: .*'possible' number check \(too short\)"):
        normalise("+1415555", "possible")


def test_normalise_refuses_an_unknown_check() -> None:
    with pytest.raises(ValueError, match="number check"):
        normalise("+14155550100", "strict")  # type: ignore[arg-type]


def test_normalise_never_quotes_more_than_40_characters() -> None:
    with pytest.raises(ValueError) as info:
        normalise("+1" + "2" * 100, "valid")
    assert "2" * 41 not in str(info.value)


def test_time_zones_of_a_number() -> None:
    assert time_zones("+14155550100") == ("America/Los_Angeles",)
    assert time_zones("+43720123456") == ("Europe/Vienna",)


def test_time_zones_are_empty_when_unknown() -> None:
    assert time_zones("+15555550100") == ()


def test_dnc_key_is_the_number_or_its_sha256() -> None:
    assert dnc_key("+14155550100", hashed=False) == "+14155550100"
    assert dnc_key("+14155550100", hashed=True) == (
        "40d3f4e02db27d66cf4cfdda506c2c945f115a7955cc8491dda98ce5beabcda0")
