"""Log masking by field: phone fields masked, free text scrubbed, everything else readable."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher import logs
from dispatcher.logs import is_secret_key, mask_number, safe_url, scrub, scrub_text

AGENT = "7f3c0c1e-0000-4000-8000-00000000a001"
REDIS = "redis://127.0.0.1:16999/0"


def run(**event: Any) -> dict[str, Any]:
    return dict(scrub(None, "info", dict(event)))


def test_mask_keeps_last_three_digits() -> None:
    assert mask_number("+14155550123") == "+********123"
    assert mask_number("+1 (415) 555-0123") == "+********123"


@pytest.mark.parametrize("key", ["to", "from", "number", "destination_number", "to_number",
                                 "from_number", "phone", "phone_number"])
def test_phone_fields_are_masked(key: str) -> None:
    assert run(**{key: "+14155550123"})[key] == "+********123"


def test_phone_keys_are_masked_at_any_depth() -> None:
    out = run(call={"customer": {"number": "+43720123456"}, "to": ["+14155550999"]})
    assert out["call"] == {"customer": {"number": "+********456"}, "to": ["+********999"]}


def test_readable_fields_keep_their_digits() -> None:
    event = {"event": "worker.started", "url": REDIS, "consumer": "host-12345-ab12",
             "event_id": "evt_20261122_000123", "agent_id": AGENT, "entry_id": "1700000000000-0",
             "job_id": "job-2026-11-22-000123", "call_id": "call_8812345678",
             "count": 1234567, "nested": {"consumer": "host-12345-ab12"}}
    assert run(**event) == event


def test_event_name_is_never_touched() -> None:
    assert run(event="dial +14155550123")["event"] == "dial +14155550123"


@pytest.mark.parametrize("key", ["error_message", "message", "reason", "detail", "error"])
def test_free_text_masks_only_e164_substrings(key: str) -> None:
    text = f"agent {AGENT} could not reach +43 720 123456 (job-2026-000123, evt_1234567)"
    out = run(**{key: text})[key]
    assert "+43 720 123456" not in out and out.endswith("456 (job-2026-000123, evt_1234567)")
    assert AGENT in out


@pytest.mark.parametrize("number", ["+14155550123", "+1 415 555 0123", "+1-415-555-0123",
                                    "+1 (415) 555-0123", "+1.415.555.0123"])
def test_free_text_masks_common_e164_spellings(number: str) -> None:
    out = scrub_text(f"busy: {number}.")
    assert out == "busy: +********123."


def test_free_text_leaves_short_plus_numbers_alone() -> None:
    assert scrub_text("at 2026-11-22T10:00:00+01:00, +12 retries") == \
        "at 2026-11-22T10:00:00+01:00, +12 retries"


@pytest.mark.parametrize("key", ["api_key", "Authorization", "x-api-key", "token", "secret",
                                 "password", "webhook_secret", "client_secret", "db_password",
                                 "access_token", "X-Webhook-Secret"])
def test_secret_keys_are_hidden_at_any_depth(key: str) -> None:
    assert is_secret_key(key)
    out = run(**{key: "v"}, headers={key: "v", "inner": [{key: {"deep": "v"}}]})
    assert out[key] == "***"
    assert out["headers"] == {key: "***", "inner": [{key: "***"}]}


def test_ordinary_keys_are_not_secret() -> None:
    assert not any(is_secret_key(k) for k in ("job_id", "consumer", "url", "provider"))


def test_key_shapes_are_scrubbed_from_free_text() -> None:
    out = run(message="auth failed for tel_live_abc123 and sk-proj-XYZ and tel_test_q")
    assert out["message"] == "auth failed for tel_live_*** and sk-*** and tel_test_***"


def test_key_shape_scrub_leaves_words_containing_sk_alone() -> None:
    assert scrub_text("task-12 on disk-3") == "task-12 on disk-3"


@pytest.mark.parametrize(("url", "safe"), [
    ("redis://user:pass@host:6379/0", "redis://user:***@host:6379/0"),
    ("redis://:pass@host", "redis://:***@host"),
    ("rediss://:p@ss@host:6380/1?ssl=1", "rediss://:***@host:6380/1?ssl=1"),
    (REDIS, REDIS),
    ("redis://user@host/0", "redis://user@host/0"),
    ("https://h:8443/v1/users/a@b.com", "https://h:8443/v1/users/a@b.com"),
    ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
    ("not a url", "not a url"),
])
def test_safe_url_hides_only_the_password(url: str, safe: str) -> None:
    assert safe_url(url) == safe


def test_url_fields_and_urls_in_free_text_lose_passwords() -> None:
    out = run(url="redis://:pw@h:1/0", redis_url="redis://u:pw@h",
              error="Error connecting to redis://u:pw@h:6379/0: refused")
    assert out == {"url": "redis://:***@h:1/0", "redis_url": "redis://u:***@h",
                   "error": "Error connecting to redis://u:***@h:6379/0: refused"}


@settings(deadline=None)
@given(st.text(alphabet="0123456789 -.()+abc", max_size=40))
def test_free_text_never_leaves_a_full_e164_number(text: str) -> None:
    out = scrub_text(text)
    assert logs.E164_RE.search(out) is None


@settings(deadline=None)
@given(st.from_regex(r"\+[1-9]\d{6,14}", fullmatch=True))
def test_phone_mask_keeps_exactly_the_last_three_digits(number: str) -> None:
    masked = mask_number(number)
    assert masked.endswith(number[-3:]) and masked.count("*") == len(number) - 4


# -- the configured pipeline, end to end ------------------------------------------------------
@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """The JSON pipeline, configured inside the test (capsys swaps stdout only then)."""
    saved = structlog.get_config()
    yield capsys
    structlog.configure(**saved)


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x]


def test_worker_log_line_through_the_json_pipeline(
        json_logs: pytest.CaptureFixture[str]) -> None:
    logs.configure(fmt="json")
    log = logs.get_logger(job_id="job-2026-11-22-000123", provider="eu", attempt=2)
    log.warning("call.start_failed", to="+14155550123", consumer="host-12345-ab12",
                url=safe_url("redis://:hunter2@127.0.0.1:16999/0"), redis=REDIS,
                event_id="evt_20261122_000123", agent_id=AGENT,
                error_message=f"agent {AGENT} cannot call +43720123456 with tel_live_k3y",
                headers={"Authorization": "Bearer sk-abc", "X-Request-Id": "req-99887766"})
    [line] = lines(json_logs)
    text = json.dumps(line)
    assert "4155550123" not in text and "43720123456" not in text
    assert line["to"] == "+********123"
    assert "+********456" in line["error_message"]
    assert line["consumer"] == "host-12345-ab12" and line["redis"] == REDIS
    assert line["url"] == "redis://:***@127.0.0.1:16999/0"
    assert line["event_id"] == "evt_20261122_000123" and AGENT in line["error_message"]
    assert line["agent_id"] == AGENT and line["job_id"] == "job-2026-11-22-000123"
    assert line["headers"] == {"Authorization": "***", "X-Request-Id": "req-99887766"}
    assert "hunter2" not in text and "k3y" not in text and "sk-abc" not in text
    assert line["event"] == "call.start_failed" and line["level"] == "warning"


def _fail(number: str, api_key: str) -> None:
    raise RuntimeError(f"provider refused {number}")


def test_tracebacks_have_no_locals_and_masked_messages(
        json_logs: pytest.CaptureFixture[str]) -> None:
    logs.configure(fmt="json")
    try:
        _fail("+14155550123", "tel_live_local_secret")
    except RuntimeError:
        logs.get_logger().error("job.crashed", exc_info=True)
    [line] = lines(json_logs)
    text = json.dumps(line)
    frames = line["exception"][0]["frames"]
    assert "tel_live_local_secret" not in text and "4155550123" not in text
    assert frames[-1]["name"] == "_fail" and not [f for f in frames if "locals" in f]
    assert line["exception"][0]["exc_value"] == "provider refused +********123"


def test_console_tracebacks_are_masked_too(json_logs: pytest.CaptureFixture[str]) -> None:
    logs.configure(fmt="console")
    try:
        _fail("+14155550123", "tel_live_local_secret")
    except RuntimeError:
        logs.get_logger().error("job.crashed", exc_info=True)
    out = json_logs.readouterr().out
    assert "RuntimeError" in out and "+********123" in out
    assert "4155550123" not in out and "tel_live_local_secret" not in out


def test_a_log_line_that_cannot_be_written_never_raises_and_is_reported_once(
        tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    f = out.open("w")
    sink, lost = logs.SafeOutput(f), []
    sink.on_lost = lambda: lost.append(1)
    sink.info("one")
    f.close()  # the reader went away
    sink.error("two")
    sink.warning("three")
    assert lost == [1] and sink.lost
    assert out.read_text() == "one\n"


def test_a_pipe_nobody_reads_drops_whole_lines_and_counts_them() -> None:
    r, w = os.pipe()
    with os.fdopen(w, "w") as writer, os.fdopen(r, "rb") as reader:
        sink = logs.SafeOutput(writer)
        line = json.dumps({"event": "call.started", "pad": "x" * 300})
        for _ in range(1000):  # ~300 KB into a 64 KiB pipe: never waits
            sink.info(line)
        assert sink.dropped > 0 and not sink.lost
        dropped = sink.dropped
        os.set_blocking(r, False)
        got = b""
        while chunk := reader.read(1 << 16):
            got += chunk
        sink.info(line)  # room again: the count first, then the line
        got += reader.read(1 << 16) or b""
    lines = [json.loads(x) for x in got.decode().splitlines()]  # whole lines only
    assert lines[-2] == {"event": "log.dropped", "lines": dropped, "level": "warning",
                         "reason": "stdout's reader fell behind"}
    assert lines[-1]["event"] == "call.started"
    assert len(lines) - 2 + dropped == 1000
