"""Both error envelopes, the FastAPI 422 body, garbage, and the rate-limit headers."""

import json

from dispatcher.providers.base import (
    Response,
    parse_error,
    parse_rate_headers,
    parse_retry_after,
)
from dispatcher.providers.itellico.adapter import normalise as itl
from dispatcher.providers.telecho.adapter import normalise as tel


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
