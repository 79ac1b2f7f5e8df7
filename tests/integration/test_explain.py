"""The operator's command line against a real Redis: ``dispatcher explain`` says why a job
waits (with a real worker where the reason comes from one), ``dispatcher status`` reads 0 before
the first worker and lists workers by their last heartbeat."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from dispatcher.config.settings import Settings
from dispatcher.dev.localredis import LocalRedis
from dispatcher.engine.pacing import grant_rules
from dispatcher.ops.explain import explain, gather
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store, connect
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import push
from tests.integration.test_console_http import place


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def env_of(redis: LocalRedis, ns: str, url: str = "http://127.0.0.1:9") -> dict[str, str]:
    return {"DISPATCHER_REDIS__URL": redis.url, "DISPATCHER_REDIS__NAMESPACE": ns,
            "DISPATCHER_PROVIDERS__DEFAULT__KIND": "telecho",
            "DISPATCHER_PROVIDERS__DEFAULT__BASE_URL": url,
            "DISPATCHER_PROVIDERS__DEFAULT__API_KEY_ENV": "TEST_TELECHO_KEY",
            "DISPATCHER_PROVIDERS__DEFAULT__LIMITS": '["2/minute"]',
            "DISPATCHER_PROVIDERS__DEFAULT__MAX_CONCURRENT_CALLS": "1"}


def quiet(redis: LocalRedis, ns: str) -> Settings:
    return make_settings(redis.url, ns, {"default": provider_cfg(
        "telecho", "http://127.0.0.1:9", limits=["2/minute"], max_concurrent_calls=1)})


async def why(store: Store, settings: Settings, job_id: str) -> list[tuple[str, str]]:
    f = await gather(store, settings, job_id)
    assert f is not None
    x = explain(f)
    return [(w.code, w.text) for w in (x.why, *x.also)]


async def test_an_unknown_id_says_so_and_exits_1(redis_server: LocalRedis, ns: str) -> None:
    out = cli("explain", "nobody", env=env_of(redis_server, ns))
    assert out.returncode == 1 and out.stdout.startswith("job nobody: unknown id — never read")
    out = cli("explain", "nobody", "--json", env=env_of(redis_server, ns))
    assert out.returncode == 1 and json.loads(out.stdout)["found"] is False


async def test_a_halted_provider_in_words_and_json(redis_server: LocalRedis, ns: str,
                                                    store: Store) -> None:
    await store.halt("default", "API key revoked", "revoked_api_key", 30_000, 60_000)
    await place(store, "h1", "parked", "halted")
    out = cli("explain", "h1", env=env_of(redis_server, ns))
    assert out.returncode == 0, out.stderr
    assert "now (" in out.stdout and "provider default is halted since" in out.stdout
    assert "revoked_api_key — API key revoked" in out.stdout
    assert "  fix: dispatcher resume default" in out.stdout
    assert "+14155550123" not in out.stdout and "+********123" in out.stdout
    data = json.loads(cli("explain", "h1", "--json", env=env_of(redis_server, ns)).stdout)
    assert data["found"] and data["why"]["code"] == "halted" and data["state"] == "parked"
    assert [e["event"] for e in data["timeline"]] == ["claimed", "parked"]


async def test_the_place_in_line_counts_priorities_and_campaigns(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    s = quiet(redis_server, ns)
    for i in range(4):
        await place(store, f"s{i}", "queued", campaign="spring")
    await place(store, "a0", "queued", campaign="autumn")
    await place(store, "a1", "queued", campaign="autumn")
    await place(store, "urgent", "queued", priority="high")
    assert (await why(store, s, "s2"))[-1] == (
        "queued", "queued behind 3 others (1 at a higher priority; 2 ahead of it in campaign "
                  "spring; taking turns with 1 other campaign(s) at priority normal (2 ready))")
    assert (await why(store, s, "urgent"))[-1][0] == "next"


async def test_full_windows_full_slots_cooldowns_and_paused_campaigns(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    s = quiet(redis_server, ns)
    await place(store, "q1", "queued", campaign="spring")
    rules = grant_rules("default", s.providers["default"], track_calls=True, slot_lease_s=60)
    for i in range(2):
        assert (await store.admit(rules, f"t{i}")).granted
    await store.r.zadd(store.k.slots("default"), {"x": await store.server_ms() + 60_000})
    await store.set_cooldown("default", 20_000)
    codes = [c for c, _ in await why(store, s, "q1")]
    assert codes == ["cooldown", "window_full", "slots_full", "next"]
    texts = dict(await why(store, s, "q1"))
    assert texts["window_full"].startswith("2/minute window of provider default full (2 of 2 "
                                           "used) until ")
    assert texts["slots_full"] == ("call slots full: 1 of 1 live calls on provider default; "
                                   "a slot frees when a call ends")
    await store.campaign("pause", "spring", ["default"])
    assert (await why(store, s, "q1"))[0][0] == "campaign_paused"


def closed_hours(zone: str) -> tuple[str, str]:
    """Calling hours that open in two hours' time in ``zone`` (so closed now, whatever the
    time the test runs), and the opening as the wait detail spells it."""
    start = (datetime.now(ZoneInfo(zone)).hour + 2) % 24
    end = f"{start + 1:02d}:00" if start < 23 else "23:59"
    return f"mon-sun {start:02d}:00-{end}", f"{start:02d}:00 {zone}"


async def test_the_calling_window_from_a_real_worker(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    hours, opens = closed_hours("America/Chicago")
    start_worker(make_settings(redis_server.url, ns, {"default": provider_cfg("telecho", sim.url)},
                               policy={"calling_hours": [hours]}), workers)
    await push(store, {"id": "w1", "to": "+13125550100", "timezone": "America/Chicago"})
    for _ in range(100):
        if (await store.job_info("w1")).get("state") == "delayed":
            break
        await asyncio.sleep(0.05)
    out = cli("explain", "w1", env=env_of(redis_server, ns, sim.url))
    assert "now (" in out.stdout and f"calling window closed until {opens}" in out.stdout, \
        out.stdout
    assert "waits for the recipient's calling hours until" in out.stdout


async def test_a_429_retry_then_the_result_from_a_real_worker(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.05, 0.1), talk_s=(0.1, 0.2))
    sim.sim.cfg.faults.retry_after_s = 2.0
    sim.sim.cfg.faults.by_number["+14155550429"] = "rate_limit*1"
    s = make_settings(redis_server.url, ns, {"default": provider_cfg("telecho", sim.url)})
    start_worker(s, workers)
    await push(store, {"id": "r1", "to": "+14155550429"})
    for _ in range(100):
        if (await store.job_info("r1")).get("wr") == "rate_limited":
            break
        await asyncio.sleep(0.02)
    [(code, text)] = await why(store, s, "r1")
    assert code == "retry" and "after the provider answered 429 until" in text
    assert re.search(r"\(in \d s\) \(last answer: 429 rate_limit_per_minute\)$", text), text
    await wait_results(store, 1)
    x = explain(await gather(store, s, "r1"))  # type: ignore[arg-type]
    assert x.why.text.startswith("done: its result is 'ended'")
    words = [w for _, _, w in x.timeline]
    assert words[0].startswith("read from the stream")
    assert any(w.startswith("waits for a retry after the provider answered 429") for w in words)
    assert words[-1] == "result written: ended"


async def test_status_reads_zero_and_unread_entries_before_the_first_worker(
        redis_server: LocalRedis, ns: str) -> None:
    producer = Store(connect(redis_server.url), ns)  # no consumer group yet
    await producer.enqueue([{"id": f"u{i}", "to": "+14155550100"} for i in range(3)])
    await producer.close()
    out = cli("status", "--json", env=env_of(redis_server, ns))
    s = json.loads(out.stdout)
    assert s["unread"] == 3 and s["consumers"] == []
    numbers = [v for k, v in s.items() if k not in ("namespace", "consumers", "providers",
                                                     "waiting_by_reason", "unconfigured",
                                                     "config")]
    assert s["unconfigured"] == {}
    assert all(isinstance(v, int) for v in numbers), s
    text = cli("status", env=env_of(redis_server, ns)).stdout
    assert "unread 3" in text and "consumers: none (no worker has started)" in text


async def test_status_lists_workers_by_their_last_heartbeat(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    await store.heartbeat("w-1", [], 5000, 5000, {})
    s = json.loads(cli("status", "--json", env=env_of(redis_server, ns)).stdout)
    [c] = s["consumers"]
    assert c["name"] == "w-1" and 0 <= c["last_heartbeat_s"] < 30 and c["pending"] == 0
    text = cli("status", env=env_of(redis_server, ns)).stdout  # alive unless the CLI is slow
    assert "w-1 (alive, last heartbeat" in text or "w-1 (DEAD, last heartbeat" in text
