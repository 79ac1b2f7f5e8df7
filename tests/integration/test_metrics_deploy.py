"""Every metric the Grafana dashboard and the alert rules use exists in a real ``/metrics``
scrape, taken after a worker has run jobs through the simulator (calls, a 429, a halt)."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import push, set_key
from tests.integration.test_metrics_collector import pod, scrape
from tests.unit.test_deploy import scaled_on
from tests.unit.test_deploy_observability import metric_names


def exposed(body: str) -> set[str]:
    """Family names (as their TYPE lines spell them) and sample names."""
    names = set(map(str.strip, (ln.split()[2] for ln in body.splitlines()
                                if ln.startswith("# TYPE "))))
    for fam in text_string_to_metric_families(body):
        names.update(s.name for s in fam.samples)
    return names


async def test_every_metric_of_the_dashboard_and_the_alerts_is_scraped(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.05, 0.1), talk_s=(0.1, 0.2))
    sim.sim.cfg.faults.retry_after_s = 0.2
    sim.sim.cfg.faults.by_number["+14155550429"] = "rate_limit*1"
    set_key(sim, "itellico", status="revoked")
    s = make_settings(redis_server.url, ns, {
        "default": provider_cfg("telecho", sim.url, max_concurrent_calls=5),
        "eu": provider_cfg("itellico", sim.url)}, campaigns={"spring": {}})
    start_worker(s, workers)
    await push(store, {"id": "m1", "to": "+14155550100", "campaign": "spring"},
               {"id": "m2", "to": "+14155550429"},
               {"id": "m3", "to": "+14155550101", "provider": "eu"})
    await wait_results(store, 2, timeout=20)
    for _ in range(100):
        if await store.halt_info("eu"):
            break
        await asyncio.sleep(0.05)
    async with pod(s) as url:
        body, samples = await scrape(url)
    missing = metric_names() - exposed(body)
    assert not missing, f"used by the dashboard or the alerts, absent from /metrics: {missing}"
    assert samples[("dispatcher_provider_halted", (("provider", "eu"),))] == 1
    assert any(name == "dispatcher_rate_limited_total" for name, _ in samples)


async def ingested(store: Store, n: int) -> dict[str, int]:
    """Waits until a worker has read every pushed job; the deployment's counts then."""
    for _ in range(400):
        counts = await store.counts()
        if counts.get("queued", 0) + counts.get("dialing", 0) + counts.get("live", 0) \
                + counts.get("done", 0) >= n and (await store.backlog())["unread"] == 0:
            return counts
        await asyncio.sleep(0.05)
    raise AssertionError(f"the worker did not ingest {n} jobs: {await store.counts()}")


async def test_the_scaledobjects_metric_grows_with_ready_jobs_while_the_lag_stays_0(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    (name, labels), _ = scaled_on()
    s = make_settings(redis_server.url, ns, {
        "default": provider_cfg("telecho", sim.url, limits=["1/hour"])})
    start_worker(s, workers)
    seen = []
    for start, total in ((0, 5), (5, 40)):
        await push(store, *({"id": f"k{i}", "to": f"+1415555{i:04d}"}
                            for i in range(start, total)))
        await ingested(store, total)
        async with pod(s) as url:
            _, samples = await scrape(url)
        seen.append(samples[(name, tuple(sorted(labels.items())))])
        assert samples[("dispatcher_stream_unread_jobs", ())] == 0  # what KEDA read before
    assert seen == [4, 39]  # one job was dialled: the hour's only request
