"""The simulator's pre-dial hook over real HTTP: verdicts, faults a fail-closed caller must
survive, counted faults, runtime configuration and the log."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import SimConfig

NUMBER = "+14155550100"
OTHER = "+14155550101"


def ask(to: str = NUMBER, job_id: str = "job-1", **over: Any) -> dict[str, Any]:
    return {"job_id": job_id, "to": to, "campaign": "spring", "metadata": {"k": 1}, **over}


async def hook(sim: RunningSimulator, body: Any,
               timeout: float = 5.0) -> tuple[int, str, str]:
    """(status, content type, raw body) of one hook request."""
    t = aiohttp.ClientTimeout(total=timeout)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with aiohttp.ClientSession(timeout=t) as s, s.post(
            sim.url + "/_sim/predial", data=data,
            headers={"Content-Type": "application/json"}) as r:
        return r.status, r.headers["Content-Type"], await r.text()


async def configure(sim: RunningSimulator, **changes: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.post(sim.url + "/_sim/predial/config",
                                                    json=changes) as r:
        return r.status, await r.json()


async def log(sim: RunningSimulator, since: float = 0.0) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(sim.url + f"/_sim/predial?since={since}") as r:
        entries: list[dict[str, Any]] = (await r.json())["entries"]
        return entries


async def test_allows_by_default(sim: RunningSimulator) -> None:
    status, ctype, body = await hook(sim, ask())
    assert (status, json.loads(body)) == (200, {"allow": True, "reason": "ok"})
    assert ctype.startswith("application/json")


async def test_denies_listed_numbers_with_their_reason(sim: RunningSimulator) -> None:
    await configure(sim, deny={NUMBER: "internal do-not-call"})
    _, _, body = await hook(sim, ask())
    assert json.loads(body) == {"allow": False, "reason": "internal do-not-call"}
    _, _, other = await hook(sim, ask(OTHER))
    assert json.loads(other)["allow"] is True


async def test_default_allow_false_denies_everyone_else(sim: RunningSimulator) -> None:
    await configure(sim, default_allow=False)
    _, _, body = await hook(sim, ask())
    verdict = json.loads(body)
    assert verdict["allow"] is False and isinstance(verdict["reason"], str)


async def test_5xx_faults_answer_the_status_with_a_body_that_still_says_allow(
        sim: RunningSimulator) -> None:
    await configure(sim, by_number={NUMBER: "http_500", OTHER: "http_503"})
    for to, want in ((NUMBER, 500), (OTHER, 503)):
        status, _, body = await hook(sim, ask(to))
        assert status == want and json.loads(body)["allow"] is True  # only the status tells


async def test_garbage_is_a_200_that_is_not_json(sim: RunningSimulator) -> None:
    await configure(sim, by_number={NUMBER: "garbage"})
    status, ctype, body = await hook(sim, ask())
    assert status == 200 and ctype.startswith("application/json")
    with pytest.raises(ValueError):
        json.loads(body)


@pytest.mark.parametrize("kind", ["wrong_shape", "wrong_type"])
async def test_wrong_shapes_are_json_without_a_boolean_allow(sim: RunningSimulator,
                                                             kind: str) -> None:
    await configure(sim, by_number={NUMBER: kind})
    status, _, body = await hook(sim, ask())
    verdict = json.loads(body)
    assert status == 200 and isinstance(verdict, dict)
    assert not isinstance(verdict.get("allow"), bool)


async def test_slow_outlasts_a_short_timeout_and_is_still_logged(sim: RunningSimulator) -> None:
    await configure(sim, by_number={NUMBER: "slow*1"}, slow_s=0.3)
    with pytest.raises(TimeoutError):
        await hook(sim, ask(), timeout=0.1)
    status, _, body = await hook(sim, ask())  # the first N were slow; now a prompt answer
    assert status == 200 and json.loads(body)["allow"] is True
    entries = await log(sim)
    assert [e["fault"] for e in entries] == ["slow", None]


async def test_slow_answers_after_slow_s(sim: RunningSimulator) -> None:
    await configure(sim, by_number={NUMBER: "slow"}, slow_s=0.2)
    started = time.monotonic()
    status, _, body = await hook(sim, ask())
    assert time.monotonic() - started >= 0.2
    assert (status, json.loads(body)["allow"]) == (200, True)


async def test_latency_delays_every_answer(sim: RunningSimulator) -> None:
    await configure(sim, latency_s=0.15)
    started = time.monotonic()
    await hook(sim, ask())
    assert time.monotonic() - started >= 0.15


async def test_counted_faults_fail_the_first_n_then_allow(sim: RunningSimulator) -> None:
    await configure(sim, by_number={NUMBER: "http_500*2"})
    statuses = [(await hook(sim, ask()))[0] for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert (await hook(sim, ask(OTHER)))[0] == 200  # counted per number
    assert [e["status"] for e in await log(sim)] == [500, 500, 200, 200]


async def test_new_rules_restart_the_count(sim: RunningSimulator) -> None:
    await configure(sim, by_number={NUMBER: "http_503*1"})
    assert (await hook(sim, ask()))[0] == 503
    assert (await hook(sim, ask()))[0] == 200
    await configure(sim, by_number={NUMBER: "http_503*1"})
    assert (await hook(sim, ask()))[0] == 503


async def test_config_replaces_given_keys_and_refuses_unknown_faults(
        sim: RunningSimulator) -> None:
    status, body = await configure(sim, deny={NUMBER: "a"}, latency_s=0.0)
    assert status == 200 and body["predial"]["deny"] == {NUMBER: "a"}
    status, body = await configure(sim, deny={OTHER: "b"})
    assert body["predial"]["deny"] == {OTHER: "b"}  # replaced, not merged
    for bad in ({"by_number": {NUMBER: "http_418"}}, {"by_number": {NUMBER: "slow*0"}},
                {"latency_s": -1}, {"unknown_key": 1}):
        status, body = await configure(sim, **bad)
        assert status == 400 and body["ok"] is False
    assert sim.sim.cfg.predial.deny == {OTHER: "b"} and not sim.sim.cfg.predial.by_number


@pytest.mark.parametrize("body", [
    b"not json", [], {"job_id": "j", "to": NUMBER, "metadata": {}},
    ask(job_id=""), ask(to="4155550100"), ask(campaign=5), ask(metadata=[1])])
async def test_malformed_requests_are_refused_and_logged(sim: RunningSimulator,
                                                         body: Any) -> None:
    status, _, text = await hook(sim, body)
    assert status == 422 and json.loads(text)["error"]
    (entry,) = await log(sim)
    assert entry["status"] == 422 and entry["answer"] is None


async def test_null_campaign_and_metadata_are_accepted(sim: RunningSimulator) -> None:
    status, _, _ = await hook(sim, ask(campaign=None, metadata=None))
    assert status == 200


async def test_the_log_records_every_call(sim: RunningSimulator) -> None:
    await configure(sim, deny={OTHER: "dnc"}, by_number={NUMBER: "garbage*1"})
    before = time.time()
    await hook(sim, ask(NUMBER, "a"))
    await hook(sim, ask(OTHER, "b", campaign=None))
    entries = await log(sim)
    assert [(e["job_id"], e["to"], e["campaign"], e["fault"], e["status"], e["answer"])
            for e in entries] == [
        ("a", NUMBER, "spring", "garbage", 200, None),
        ("b", OTHER, None, None, 200, {"allow": False, "reason": "dnc"})]
    assert all(e["t"] >= before for e in entries)
    assert await log(sim, since=entries[1]["t"]) == entries[1:]


async def test_reset_clears_the_log_and_the_counts(sim: RunningSimulator) -> None:
    await configure(sim, by_number={NUMBER: "http_500*1"})
    assert (await hook(sim, ask()))[0] == 500
    async with aiohttp.ClientSession() as s:
        await s.post(sim.url + "/_sim/reset")
    assert await log(sim) == []
    assert (await hook(sim, ask()))[0] == 500  # counting starts again


def test_sim_config_validates_the_predial_section() -> None:
    cfg = SimConfig.model_validate({"predial": {"deny": {NUMBER: "dnc"},
                                                "by_number": {OTHER: "http_503*3"}}})
    assert cfg.predial.default_allow is True and cfg.predial.slow_s == 5.0
    with pytest.raises(ValidationError):
        SimConfig.model_validate({"predial": {"by_number": {OTHER: "teapot"}}})
    with pytest.raises(ValidationError):
        SimConfig.model_validate({"faults": {"by_number": {OTHER: "http_500*x"}}})
