"""The simulator itself: exact windows, headers, envelopes and codes, audit log."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.core import RateWindows
from tests.integration.helpers import set_key

TEL = "/api/v1/public"
TK = {"Authorization": "Bearer tel_live_demo_key_0001"}
IK = {"X-API-Key": "sk-demo-itellico-0001"}
AGENT = "7f3c0c1e-0000-4000-8000-00000000a001"


async def call(sim: RunningSimulator, method: str, path: str, headers: dict[str, str],
               body: Any = None) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as s, s.request(method, sim.url + path, json=body,
                                                       headers=headers) as r:
        text = await r.text()
        try:
            data = json.loads(text)
        except ValueError:
            data = text
        return r.status, dict(r.headers), data


def tel_body(**over: Any) -> dict[str, Any]:
    return {"phone_number_id": "tel_pn_main", "destination_number": "+14155550100", **over}


def itl_body(**over: Any) -> dict[str, Any]:
    return {"type": "phone", "agent_id": AGENT, "from_number": "+43720123456",
            "to_number": "+14155550100", "external_id": "j", **over}


def test_sliding_window_is_exact_at_the_boundary() -> None:
    rw = RateWindows(["3/10s"])
    for t in (0.0, 1.0, 2.0):
        assert rw.check(t) is None
        rw.admit(t)
    breach = rw.check(9.999)
    assert breach is not None and breach[1] == pytest.approx(0.001)
    assert rw.check(10.0) is None  # the request at 0.0 has left (t - 10, t]


def test_rejected_requests_do_not_consume_quota() -> None:
    rw = RateWindows(["1/second"])
    rw.admit(0.0)
    for t in (0.1, 0.5, 0.9):
        assert rw.check(t) is not None  # rejected, not admitted
    assert rw.check(1.0) is None


async def test_rate_limit_headers_retry_after_and_codes(sim: RunningSimulator) -> None:
    set_key(sim, "telecho", limits=["2/minute", "3/hour"])
    for remaining in (1, 0):
        status, h, _ = await call(sim, "GET", TEL + "/calls", TK)
        assert status == 200 and h["X-RateLimit-Remaining-Minute"] == str(remaining)
        assert h["X-RateLimit-Limit-Hour"] == "3"
    status, h, body = await call(sim, "GET", TEL + "/calls", TK)
    assert status == 429 and body["error"]["code"] == "rate_limit_per_minute"
    assert body["error"]["type"] == "rate_limit_error"
    assert 59 <= int(h["Retry-After"]) <= 60
    # both exhausted: the hour code and the larger wait
    set_key(sim, "telecho", limits=["1/minute", "1/hour"])
    await call(sim, "GET", TEL + "/calls", TK)
    status, h, body = await call(sim, "GET", TEL + "/calls", TK)
    assert body["error"]["code"] == "rate_limit_per_hour" and int(h["Retry-After"]) > 3500


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "missing_api_key"), ({"Authorization": "Bearer nope"}, "invalid_api_key"),
    ({"Authorization": "Bearer tel_live_revoked_0001"}, "revoked_api_key"),
    ({"Authorization": "Bearer tel_live_expired_0001"}, "expired_api_key")])
async def test_telecho_auth_codes(sim: RunningSimulator, headers: dict[str, str],
                                  code: str) -> None:
    status, _, body = await call(sim, "POST", TEL + "/calls/outbound", headers, tel_body())
    assert (status, body["error"]["code"], body["error"]["type"]) == (
        401, code, "authentication_error")


@pytest.mark.parametrize(("body", "status", "code"), [
    (tel_body(phone_number_id="pn_bad"), 400, "invalid_id"),
    (tel_body(agent_id="tel_agt_sales", workflow_id="tel_wf_survey"), 400, "invalid_target"),
    (tel_body(phone_number_id="tel_pn_gone"), 404, "phone_number_not_found"),
    (tel_body(phone_number_id="tel_pn_other"), 404, "phone_number_not_found"),
    (tel_body(phone_number_id="tel_pn_inactive"), 400, "phone_number_inactive"),
    (tel_body(phone_number_id="tel_pn_notrunk"), 400, "no_outbound_trunk"),
    (tel_body(phone_number_id="tel_pn_notarget"), 400, "no_routing_target"),
    (tel_body(agent_id="tel_agt_missing"), 404, "agent_not_found"),
    (tel_body(agent_id="tel_agt_inactive"), 400, "agent_inactive"),
    (tel_body(workflow_id="tel_wf_missing"), 404, "workflow_not_found"),
    (tel_body(workflow_id="tel_wf_inactive"), 400, "workflow_inactive"),
])
async def test_telecho_resource_codes(sim: RunningSimulator, body: dict[str, Any],
                                      status: int, code: str) -> None:
    got, _, data = await call(sim, "POST", TEL + "/calls/outbound", TK, body)
    assert (got, data["error"]["code"]) == (status, code)


async def test_telecho_validation_is_fastapi_shaped(sim: RunningSimulator) -> None:
    status, _, data = await call(sim, "POST", TEL + "/calls/outbound", TK,
                                 tel_body(destination_number="12"))
    assert status == 422 and data["detail"][0]["loc"] == ["body", "destination_number"]


@pytest.mark.parametrize(("fault", "status", "code"), [
    ("http_500", 500, "internal_error"), ("http_502", 502, "bad_gateway"),
    ("http_503", 503, "service_unavailable"), ("http_504", 504, "gateway_timeout"),
    ("outbound_call_failed", 502, "outbound_call_failed"),
    ("call_blocked", 402, "call_blocked"), ("rate_limit", 429, "rate_limit_per_minute")])
async def test_telecho_faults(sim: RunningSimulator, fault: str, status: int,
                              code: str) -> None:
    sim.sim.next_faults.append({"fault": fault})
    got, _, data = await call(sim, "POST", TEL + "/calls/outbound", TK, tel_body())
    assert (got, data["error"]["code"]) == (status, code)
    assert not sim.sim.calls


async def test_concurrency_limit_in_both_dialects(sim: RunningSimulator) -> None:
    sim.sim.cfg.account("acme").max_concurrent_calls = 1
    assert (await call(sim, "POST", TEL + "/calls/outbound", TK, tel_body()))[0] == 201
    status, _, data = await call(sim, "POST", TEL + "/calls/outbound", TK, tel_body())
    assert (status, data["error"]["code"]) == (429, "concurrency_limit")
    status, _, data = await call(sim, "POST", "/v1/accounts/me/calls", IK, itl_body())
    assert status == 201
    _, _, got = await call(sim, "GET", f"/v1/accounts/me/calls/{data['id']}", IK)
    assert (got["status"], got["disconnection_reason"]) == ("failed", "concurrency_limit")


@pytest.mark.parametrize(("headers", "body", "status", "code"), [
    ({}, itl_body(), 401, "unauthorized"),
    ({"X-API-Key": "sk-revoked-itellico-01"}, itl_body(), 401, "unauthorized"),
    (IK, itl_body(agent_id="7f3c0c1e-0000-4000-8000-00000000ffff"), 404, "not_found"),
    (IK, itl_body(to_number="nope"), 422, "validation_error"),
])
async def test_itellico_envelopes(sim: RunningSimulator, headers: dict[str, str],
                                  body: dict[str, Any], status: int, code: str) -> None:
    got, _, data = await call(sim, "POST", "/v1/accounts/me/calls", headers, body)
    assert (got, data["code"]) == (status, code) and data["message"]
    if status == 422:
        assert data["errors"][0]["field"] == "to_number"


async def test_itellico_other_account_is_forbidden(sim: RunningSimulator) -> None:
    status, _, data = await call(sim, "GET", "/v1/accounts/someone-else/calls", IK)
    assert (status, data["code"]) == (403, "forbidden")


async def test_call_lifecycle_and_listing(sim: RunningSimulator) -> None:
    from dispatcher.simulator.config import CallSpec
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.1), talk_s=(0.2, 0.2), answer_mix={"human": 1})
    _, _, made = await call(sim, "POST", "/v1/accounts/me/calls", IK, itl_body(external_id="x1"))
    _, _, live = await call(sim, "GET", f"/v1/accounts/me/calls/{made['id']}", IK)
    assert (live["status"], live["answer_status"]) == ("in_progress", "waiting")
    await asyncio.sleep(0.4)
    _, _, done = await call(sim, "GET", f"/v1/accounts/me/calls/{made['id']}", IK)
    assert done["status"] == "completed" and done["answer_status"] == "human"
    assert done["duration_seconds"] == pytest.approx(0.2, abs=0.01)
    _, _, found = await call(sim, "GET", "/v1/accounts/me/calls?external_id=x1", IK)
    assert found["count"] == 1 and found["items"][0]["id"] == made["id"]
    for i in range(3):
        await call(sim, "POST", TEL + "/calls/outbound", TK,
                   tel_body(metadata={"dispatcher_job_id": f"t{i}"}))
    _, _, page = await call(sim, "GET", TEL + "/calls?limit=2", TK)
    assert [c["metadata"]["dispatcher_job_id"] for c in page["data"]] == ["t2", "t1"]
    _, _, rest = await call(sim, "GET", TEL + f"/calls?limit=2&cursor={page['next_cursor']}", TK)
    assert [c["metadata"]["dispatcher_job_id"] for c in rest["data"]] == ["t0"]
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    _, _, none = await call(sim, "GET", TEL + f"/calls?created_after={future}", TK)
    assert none["data"] == []


async def test_audit_log_records_every_request(sim: RunningSimulator) -> None:
    set_key(sim, "telecho", limits=["1/minute"])
    await call(sim, "GET", TEL + "/calls", TK)
    await call(sim, "GET", TEL + "/calls", TK)
    await call(sim, "POST", TEL + "/calls/outbound", {}, tel_body())
    async with aiohttp.ClientSession() as s, s.get(sim.url + "/_sim/audit") as r:
        entries = (await r.json())["entries"]
    assert [(e["status"], e["admitted"]) for e in entries] == [(200, True), (429, False),
                                                               (401, False)]
    assert all(e["t"] > 0 and e["path"] for e in entries)


# -- itellicoAI external_id is an idempotency key --------------------------------------------
def quick_calls(sim: RunningSimulator) -> None:
    from dispatcher.simulator.config import CallSpec
    sim.sim.cfg.calls = CallSpec(ring_s=(0.05, 0.05), talk_s=(0.05, 0.05),
                                 answer_mix={"human": 1})


async def test_external_id_reuse_answers_409_after_the_call_ended(
        sim: RunningSimulator) -> None:
    quick_calls(sim)
    status, _, first = await call(sim, "POST", "/v1/accounts/me/calls", IK,
                                  itl_body(external_id="job-1"))
    assert status == 201
    await asyncio.sleep(0.2)
    _, _, ended = await call(sim, "GET", f"/v1/accounts/me/calls/{first['id']}", IK)
    assert ended["status"] == "completed"
    status, h, data = await call(sim, "POST", "/v1/accounts/me/calls", IK,
                                 itl_body(external_id="job-1"))
    assert (status, data["code"]) == (409, "conflict") and data["message"]
    assert h["Content-Type"].startswith("application/json")
    assert list(sim.sim.calls) == [first["id"]]
    _, _, found = await call(sim, "GET", "/v1/accounts/me/calls?external_id=job-1", IK)
    assert found["count"] == 1
    refused = sim.sim.audit[-2]
    assert (refused["status"], refused["code"], refused["correlation"]) == (
        409, "conflict", "job-1")
    assert "call_id" not in refused


async def test_the_nth_external_id_creates_the_nth_call(sim: RunningSimulator) -> None:
    await call(sim, "POST", "/v1/accounts/me/calls", IK, itl_body(external_id="job-2"))
    status, _, second = await call(sim, "POST", "/v1/accounts/me/calls", IK,
                                   itl_body(external_id="job-2~2"))
    assert status == 201 and second["external_id"] == "job-2~2"
    again, _, _ = await call(sim, "POST", "/v1/accounts/me/calls", IK,
                             itl_body(external_id="job-2~2"))
    assert again == 409
    _, _, truth = await call(sim, "GET", "/_sim/calls", {})
    assert [(c["correlation"], c["call_n"]) for c in truth["calls"]] == [
        ("job-2", 1), ("job-2~2", 2)]


async def test_external_id_is_unique_per_account_only(sim: RunningSimulator) -> None:
    async with aiohttp.ClientSession() as s:
        await s.post(sim.url + "/_sim/keys", json={"key": "sk-other-account-01",
                                                   "dialect": "itellico", "account": "globex"})
    for key in ("sk-demo-itellico-0001", "sk-other-account-01"):
        status, _, _ = await call(sim, "POST", "/v1/accounts/me/calls", {"X-API-Key": key},
                                  itl_body(external_id="shared"))
        assert status == 201
    assert len(sim.sim.calls) == 2


async def test_a_create_refused_before_any_call_does_not_spend_the_external_id(
        sim: RunningSimulator) -> None:
    sim.sim.next_faults.append({"fault": "http_500"})
    status, _, _ = await call(sim, "POST", "/v1/accounts/me/calls", IK,
                              itl_body(external_id="job-3"))
    assert status == 500 and not sim.sim.calls
    status, _, _ = await call(sim, "POST", "/v1/accounts/me/calls", IK,
                              itl_body(external_id="job-3"))
    assert status == 201


async def test_the_conflict_fault_creates_the_call_and_answers_409(
        sim: RunningSimulator) -> None:
    sim.sim.next_faults.append({"fault": "conflict"})
    status, _, data = await call(sim, "POST", "/v1/accounts/me/calls", IK,
                                 itl_body(external_id="job-4"))
    assert (status, data["code"], len(sim.sim.calls)) == (409, "conflict", 1)
    status, _, _ = await call(sim, "POST", "/v1/accounts/me/calls", IK,
                              itl_body(external_id="job-4"))
    assert status == 409 and len(sim.sim.calls) == 1  # now a real duplicate


async def test_a_non_string_external_id_is_a_validation_error(sim: RunningSimulator) -> None:
    status, _, data = await call(sim, "POST", "/v1/accounts/me/calls", IK,
                                 itl_body(external_id=7))
    assert (status, data["errors"][0]["field"]) == (422, "external_id")
    assert not sim.sim.calls


# -- call_n: the call's number within its job ------------------------------------------------
@pytest.mark.parametrize(("meta", "correlation", "call_n"), [
    ({"dispatcher_job_id": "t1"}, "t1", 1),
    ({"dispatcher_job_id": "t1", "dispatcher_call": 3}, "t1", 3),
    ({"dispatcher_job_id": "t1", "dispatcher_call": "3"}, "t1", 0),
    ({"dispatcher_job_id": "t1", "dispatcher_call": True}, "t1", 0),
    ({}, None, 1),
])
async def test_telecho_call_n_in_audit_and_truth(sim: RunningSimulator, meta: dict[str, Any],
                                                 correlation: str | None, call_n: int) -> None:
    status, _, _ = await call(sim, "POST", TEL + "/calls/outbound", TK, tel_body(metadata=meta))
    assert status == 201
    entry = sim.sim.audit[-1]
    assert (entry["correlation"], entry["call_n"]) == (correlation, call_n)
    (only,) = sim.sim.calls.values()
    assert only.truth()["call_n"] == call_n


@pytest.mark.parametrize(("external_id", "call_n"), [
    ("j", 1), ("j~1", 1), ("j~2", 2), ("j~12", 12), ("j~x", 0), ("j~0", 0), ("j~02", 0),
    ("j~", 0), ("j~²", 0)])
async def test_itellico_call_n_in_audit_and_truth(sim: RunningSimulator, external_id: str,
                                                  call_n: int) -> None:
    status, _, _ = await call(sim, "POST", "/v1/accounts/me/calls", IK,
                              itl_body(external_id=external_id))
    assert status == 201
    entry = sim.sim.audit[-1]
    assert (entry["correlation"], entry["call_n"]) == (external_id, call_n)
    (only,) = sim.sim.calls.values()
    assert (only.call_n, only.truth()["call_n"]) == (call_n, call_n)


# -- unknown routes: a gateway's bare 404 / 405, not the dialect's envelope -------------------
@pytest.mark.parametrize(("method", "path", "headers"), [
    ("POST", TEL + "/call/outbound", TK), ("POST", "/calls/outbound", TK),
    ("GET", TEL + "/calls/x/y", TK), ("POST", "/v1/accounts/me/call", IK),
    ("POST", "/v2/accounts/me/calls", IK), ("GET", "/v1/accounts", IK),
    ("POST", TEL + "/nowhere", {"Authorization": "Bearer nope"}), ("GET", "/", {})])
async def test_unknown_routes_answer_a_bare_404(sim: RunningSimulator, method: str, path: str,
                                               headers: dict[str, str]) -> None:
    status, h, body = await call(sim, method, path, headers, tel_body())
    assert (status, body) == (404, "404: Not Found")
    assert h["Content-Type"].startswith("text/plain")
    (entry,) = sim.sim.audit
    assert (entry["method"], entry["path"], entry["status"], entry["code"],
            entry["admitted"]) == (method, path, 404, None, False)


@pytest.mark.parametrize(("method", "path", "headers"), [
    ("DELETE", TEL + "/calls/outbound", TK), ("PUT", "/v1/accounts/me/calls", IK),
    ("POST", TEL + "/calls/tel_call_1", TK), ("PATCH", "/v1/accounts/me/calls/x", IK)])
async def test_a_wrong_method_on_a_known_route_answers_a_bare_405(
        sim: RunningSimulator, method: str, path: str, headers: dict[str, str]) -> None:
    status, h, body = await call(sim, method, path, headers, tel_body())
    assert (status, body) == (405, "405: Method Not Allowed")
    assert h["Content-Type"].startswith("text/plain") and h["Allow"]
    (entry,) = sim.sim.audit
    assert (entry["path"], entry["status"], entry["admitted"]) == (path, 405, False)
    assert not sim.sim.calls


async def test_unknown_routes_do_not_spend_quota(sim: RunningSimulator) -> None:
    set_key(sim, "telecho", limits=["1/minute"])
    assert (await call(sim, "POST", TEL + "/call/outbound", TK, tel_body()))[0] == 404
    assert (await call(sim, "GET", TEL + "/calls", TK))[0] == 200


@pytest.mark.parametrize(("path", "headers"), [
    (TEL + "/calls/tel_call_0000000000000000", TK),
    ("/v1/accounts/me/calls/7f3c0c1e-0000-4000-8000-0000000000ff", IK)])
async def test_an_unknown_call_id_answers_the_enveloped_404(
        sim: RunningSimulator, path: str, headers: dict[str, str]) -> None:
    status, h, body = await call(sim, "GET", path, headers)
    assert status == 404 and h["Content-Type"].startswith("application/json")
    code = body["error"]["code"] if path.startswith(TEL) else body["code"]
    assert code in ("call_not_found", "not_found")
    assert sim.sim.audit[-1]["code"] == code and sim.sim.audit[-1]["admitted"]


def _call(i: int, account: str, ended_at: float) -> Any:
    from dispatcher.simulator.core import Call
    return Call(f"c{i}", "telecho", account, "k", "+14155550100", "+14155550199", None, None,
                {}, 0.0, "human", "user_hangup", 1.0, ended_at)


def test_live_calls_are_counted_without_scanning_every_call() -> None:
    """Live calls per account from a heap of end times: the same count a scan gives, as
    calls end, for each account apart."""
    from dispatcher.simulator.app import Simulator
    from dispatcher.simulator.config import SimConfig
    sim = Simulator(SimConfig())
    for i in range(30):
        sim.add_call(_call(i, "acme" if i % 3 else "other", ended_at=float(i)))
    for now in (-1.0, 0.0, 9.5, 20.0, 29.0, 30.0):
        for acct in ("acme", "other"):
            scan = sum(1 for c in sim.calls.values() if c.account == acct and c.live(now))
            assert sim.live_calls(acct, now) == scan


def test_the_simulator_keeps_its_calls_out_of_the_collectors_sight() -> None:
    """A full garbage collection over thousands of kept calls paused it for ~40 ms, stamping
    the requests that waited meanwhile as arriving late (so the next window's on-time
    requests looked early)."""
    import gc

    from dispatcher.simulator.app import FREEZE_EVERY, Simulator
    from dispatcher.simulator.config import SimConfig
    sim = Simulator(SimConfig())
    gc.unfreeze()
    try:
        for i in range(FREEZE_EVERY):
            sim.add_call(_call(i, "acme", ended_at=1e12))
        assert gc.get_freeze_count() > FREEZE_EVERY  # the calls among them
    finally:
        gc.unfreeze()
