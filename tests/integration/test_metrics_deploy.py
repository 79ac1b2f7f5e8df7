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
