"""Deployment metrics read from Redis at scrape time: every pod reports the same truth, a halt
shows on every pod and drops to 0 on all of them after ``dispatcher resume``, labels stay
within closed sets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from dispatcher.config.settings import Settings
from dispatcher.dev.localredis import LocalRedis, free_port
from dispatcher.engine.http import metrics_handler, serve
from dispatcher.engine.pacing import grant_rules
from dispatcher.store import Store, connect
from dispatcher.store.types import ResultItem
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker
from tests.integration.test_console_http import place

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def settings_of(redis_url: str, ns: str) -> Settings:
    return make_settings(redis_url, ns, {
        "default": provider_cfg("telecho", "http://127.0.0.1:9", limits=["5/minute", "100/hour"],
                                max_concurrent_calls=4),
        "eu": provider_cfg("itellico", "http://127.0.0.1:9")})


@asynccontextmanager
async def pod(settings: Settings) -> AsyncIterator[str]:
    """What a worker pod serves on /metrics, on its own Redis connection."""
    store = Store(connect(settings.redis.url), settings.redis.namespace)
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(settings, store, min_interval_s=0))
    runner, port = await serve(app, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        await runner.cleanup()
        await store.close()


async def scrape(url: str) -> tuple[str, Samples]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        body = await resp.text()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(body) for s in fam.samples}
    return body, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def cli_env(redis: LocalRedis, ns: str) -> dict[str, str]:
    return {"DISPATCHER_REDIS__URL": redis.url, "DISPATCHER_REDIS__NAMESPACE": ns,
            "DISPATCHER_PROVIDERS__DEFAULT__KIND": "telecho",
            "DISPATCHER_PROVIDERS__DEFAULT__BASE_URL": "http://127.0.0.1:9",
            "DISPATCHER_PROVIDERS__DEFAULT__API_KEY_ENV": "TEST_TELECHO_KEY"}


async def test_a_halt_shows_on_every_pod_and_drops_to_zero_on_all_after_resume(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    s = settings_of(redis_server.url, ns)
    async with pod(s) as a, pod(s) as b:
        for url in (a, b):
            assert value((await scrape(url))[1], "dispatcher_provider_halted",
                         provider="default") == 0
        await store.halt("default", "API key revoked", "revoked_api_key", 30_000, 60_000)
        for url in (a, b):
            _, samples = await scrape(url)
            assert value(samples, "dispatcher_provider_halted", provider="default") == 1
            assert value(samples, "dispatcher_provider_halted", provider="eu") == 0
        out = cli("resume", "default", env=cli_env(redis_server, ns))  # another process
        assert out.returncode == 0, out.stderr
        for url in (a, b):
            assert value((await scrape(url))[1], "dispatcher_provider_halted",
                         provider="default") == 0


async def test_the_workers_own_metrics_endpoint_reports_the_deployment(
        redis_server: LocalRedis, ns: str, store: Store,
        workers: list[RunningWorker]) -> None:
    s = settings_of(redis_server.url, ns)
    w = start_worker(s, workers)
    for _ in range(100):
        if w.worker.ready:
            break
        await __import__("asyncio").sleep(0.05)
    await store.halt("default", "API key revoked", "revoked_api_key", 30_000, 60_000)
    url = f"http://127.0.0.1:{w.worker.http_port}/metrics"
    assert value((await scrape(url))[1], "dispatcher_provider_halted", provider="default") == 1


async def test_every_deployment_gauge_reads_redis(redis_server: LocalRedis, ns: str,
                                                  store: Store) -> None:
    s = settings_of(redis_server.url, ns)
    await place(store, "q1", "queued", campaign="spring")
    await place(store, "q2", "queued", priority="high")
    await place(store, "d1", "delayed", "rate_limited", due_ms=1)  # due long ago
    await place(store, "d2", "delayed", "window", due_ms=4_000_000_000_000, detail="09:00 UTC")
    await place(store, "p1", "parked", "unknown_provider", provider="gone")
    await store.finish([ResultItem("r1", None, {"job_id": "r1", "outcome": "cancelled"},
                                   "cancelled")], 60)
    await store.r.sadd(store.k.orphans, "o1")
    await store.set_cooldown("eu", 30_000)
    rules = grant_rules("default", s.providers["default"], track_calls=True, slot_lease_s=60)
    for i in range(3):
        assert (await store.admit(rules, f"t{i}")).granted
    now = await store.server_ms()
    await store.r.zadd(store.k.slots("default"), {"x": now + 60_000, "y": now + 60_000})
    await store.r.zadd(store.k.consumers, {"w-1": now, "w-old": now - 600_000})
    await store.campaign("pause", "spring", ["default"])
    async with pod(s) as url:
        body, m = await scrape(url)
    assert value(m, "dispatcher_jobs", state="queued") == 2
    assert value(m, "dispatcher_jobs", state="delayed") == 2
    assert value(m, "dispatcher_waiting_jobs", reason="rate_limited") == 1
    assert value(m, "dispatcher_waiting_jobs", reason="window") == 1
    assert value(m, "dispatcher_waiting_jobs", reason="unknown_provider") == 1
    assert value(m, "dispatcher_waiting_jobs", reason="number_cap") == 0  # every reason shown
    assert value(m, "dispatcher_delayed_due_jobs") == 1
    assert value(m, "dispatcher_deployment_results_total", outcome="cancelled") == 1
    assert value(m, "dispatcher_results_stream_length") == 1
    assert value(m, "dispatcher_orphaned_jobs") == 1
    assert value(m, "dispatcher_provider_cooldown_seconds", provider="eu") > 29
    assert value(m, "dispatcher_rate_window_used", provider="default", window="5/minute") == 3
    assert value(m, "dispatcher_rate_window_used_ratio", provider="default",
                 window="5/minute") == pytest.approx(0.6)
    assert value(m, "dispatcher_rate_window_limit", provider="default", window="100/hour") == 100
    assert value(m, "dispatcher_call_slots_in_use", provider="default") == 2
    assert value(m, "dispatcher_call_slots_limit", provider="default") == 4
    assert value(m, "dispatcher_oldest_ready_job_age_seconds", provider="default") >= 0
    assert value(m, "dispatcher_workers_alive") == 1
    assert value(m, "dispatcher_campaigns_paused") == 1
    assert value(m, "dispatcher_redis_up") == 1
    assert value(m, "dispatcher_stream_unread_jobs") == 0
    assert "spring" not in body and "q1" not in body and "gone" not in body


async def test_the_oldest_ready_job_and_the_oldest_result_have_an_age(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    await place(store, "old", "queued")
    await store.finish([ResultItem("r1", None, {"job_id": "r1", "outcome": "cancelled"},
                                   "cancelled")], 60)
    await store.r.hset(store.k.job("old"), "ready_since", 1)  # ready since 1970
    async with pod(settings_of(redis_server.url, ns)) as url:
        _, m = await scrape(url)
    assert value(m, "dispatcher_oldest_ready_job_age_seconds", provider="default") > 1e9
    assert value(m, "dispatcher_oldest_ready_job_age_seconds", provider="eu") == 0
    assert 0 <= value(m, "dispatcher_results_oldest_age_seconds") < 60


async def test_labels_stay_bounded_however_many_jobs_numbers_and_campaigns(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    s = settings_of(redis_server.url, ns)
    async with pod(s) as url:
        before, _ = await scrape(url)
        for i in range(60):
            await place(store, f"job-{i}", "queued" if i % 2 else "delayed", "retry",
                        campaign=f"camp-{i}", to=f"+1415555{i:04d}", due_ms=1)
        after, _ = await scrape(url)
    series = [ln for ln in after.splitlines() if ln.startswith("dispatcher_")]
    assert len(series) == len([ln for ln in before.splitlines() if ln.startswith("dispatcher_")])
    assert "job-" not in after and "camp-" not in after and "+1415555" not in after


async def test_an_unreachable_redis_is_a_metric_not_an_error(ns: str) -> None:
    s = settings_of(f"redis://127.0.0.1:{free_port()}/0", ns)
    async with pod(s) as url:
        body, m = await scrape(url)
    assert value(m, "dispatcher_redis_up") == 0
    assert "process_resident_memory_bytes" in body and "dispatcher_build_info{" in body


async def test_limits_set_at_runtime_and_caller_id_health_show_on_metrics(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    prov = provider_cfg("itellico", "http://127.0.0.1:9", limits=["60/minute"])
    prov["caller_ids"] = {"numbers": [{"number": "+12125550100"},
                                      {"number": "+14155550101", "label": "sfo"}]}
    settings = make_settings(redis_server.url, ns, {"default": prov})
    await store.limits_set("default", "cli@h", windows=((10, 1000),), margin_ms=10)
    for i, answered in enumerate((True, False, False, False)):
        await store.caller_id_ended("default", "+14155550101", f"c{i}", answered=answered,
                                    keep=4, rate=0.5, rest=False)
    async with pod(settings) as url:
        body, samples = await scrape(url)
    assert value(samples, "dispatcher_rate_window_limit", provider="default",
                 window="10/second") == 10
    assert "60/minute" not in body
    assert value(samples, "dispatcher_caller_id_calls", provider="default",
                 caller_id="sfo") == 4
    assert value(samples, "dispatcher_caller_id_answer_rate", provider="default",
                 caller_id="sfo") == 0.25
    assert value(samples, "dispatcher_caller_id_flagged", provider="default",
                 caller_id="sfo") == 1
    assert value(samples, "dispatcher_caller_id_calls", provider="default",
                 caller_id="…0100") == 0
    assert "2125550100" not in body  # never a whole number
