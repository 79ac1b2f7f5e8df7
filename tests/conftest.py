"""Shared fixtures: a private redis-server per session, the simulator over real HTTP, workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

# CI explores the same examples every run (a property that fails there fails every time and
# is reproducible); a developer's runs keep exploring new ones
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

# tests must not pick up config/dispatcher.toml or a developer's environment
_EMPTY = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
_EMPTY.close()
os.environ["DISPATCHER_CONFIG"] = _EMPTY.name
for _k in list(os.environ):
    if _k.startswith("DISPATCHER_") and _k != "DISPATCHER_CONFIG":
        del os.environ[_k]
os.environ.setdefault("TEST_TELECHO_KEY", "tel_live_demo_key_0001")
os.environ.setdefault("TEST_ITELLICO_KEY", "sk-demo-itellico-0001")
os.environ.setdefault("TEST_WEBHOOK_SECRET", "whsec_demo")
# calling hours depend on the recipient's local time: tests that need them set them
# explicitly (with a fixed clock or zones chosen from the current time)
os.environ["DISPATCHER_POLICY__CALLING_HOURS"] = '["always"]'

from dispatcher.config.settings import Settings, load_settings  # noqa: E402
from dispatcher.dev.localredis import LocalRedis, start_redis  # noqa: E402
from dispatcher.engine.worker import Worker  # noqa: E402
from dispatcher.simulator import RunningSimulator, start_simulator  # noqa: E402
from dispatcher.simulator.config import SimConfig  # noqa: E402
from dispatcher.store import Store, connect  # noqa: E402

ITL_AGENT = "7f3c0c1e-0000-4000-8000-00000000a001"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[LocalRedis]:
    """A redis-server of the test's own, to stop, freeze (SIGSTOP) or fill."""
    server = start_redis(workdir=str(tmp_path))
    yield server
    if server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


@pytest.fixture
def ns() -> str:
    return "t" + uuid.uuid4().hex[:10]


@contextlib.asynccontextmanager
async def store_on(server: LocalRedis, ns: str) -> AsyncIterator[Store]:
    """A store for namespace ``ns`` of ``server``, its consumer group made."""
    s = Store(connect(server.url), ns)
    # a granting call's reply is kept a few seconds for a replay; tests that compare Redis
    # before and after a second run keep it an hour, so it cannot expire in between
    s.s.reply_ttl_ms = 3_600_000
    await s.ensure_group()
    try:
        yield s
    finally:
        await s.r.aclose()


@pytest.fixture
async def store(redis_server: LocalRedis, ns: str) -> AsyncIterator[Store]:
    async with store_on(redis_server, ns) as s:
        yield s


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await start_simulator(SimConfig())
    yield running
    await running.stop()


def provider_cfg(kind: str, sim_url: str, **over: Any) -> dict[str, Any]:
    if kind == "telecho":
        base = {"kind": "telecho", "base_url": sim_url + "/api/v1/public",
                "api_key_env": "TEST_TELECHO_KEY", "phone_number_id": "tel_pn_main",
                "limits": ["1000/minute"], "request_timeout_s": 2.0}
    else:
        base = {"kind": "itellico", "base_url": sim_url, "api_key_env": "TEST_ITELLICO_KEY",
                "agent_id": ITL_AGENT, "from_number": "+43720123456",
                "limits": ["1000/minute"], "request_timeout_s": 2.0}
    base.update(over)
    return base


def make_settings(redis_url: str, ns: str, providers: dict[str, dict[str, Any]],
                  **sections: dict[str, Any]) -> Settings:
    data: dict[str, Any] = {
        "redis": {"url": redis_url, "namespace": ns, "block_ms": 200},
        "worker": {"concurrency": 20, "claim_idle_s": 2.0, "heartbeat_s": 0.5,
                   "promote_interval_s": 0.05, "shutdown_grace_s": 2.0, "http_port": 0},
        "retry": {"base_delay_s": 0.2, "max_delay_s": 1.0, "halt_probe_s": 0.5,
                  "halt_probe_max_s": 2.0},
        "tracking": {"poll_schedule_s": [0.3, 0.5], "webhook_poll_s": 2.0},
        "log_format": "json", "log_level": "warning",
        "providers": providers,
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return load_settings(None, **data)


class RunningWorker:
    def __init__(self, worker: Worker):
        self.worker = worker
        self.task = asyncio.create_task(worker.run())

    async def stop(self) -> None:
        self.worker.stop()
        done, _ = await asyncio.wait([self.task], timeout=30)
        if not done:
            stacks = [t.get_stack(limit=5) for t in asyncio.all_tasks()]
            raise AssertionError(f"worker did not stop within 30 s: {stacks}")
        self.task.result()


@pytest.fixture
async def workers() -> AsyncIterator[list[RunningWorker]]:
    running: list[RunningWorker] = []
    yield running
    for w in running:
        await w.stop()


def start_worker(settings: Settings, running: list[RunningWorker]) -> RunningWorker:
    w = RunningWorker(Worker(settings, http_port=0))
    running.append(w)
    return w


async def wait_results(store: Store, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        entries = await store.r.xrange(store.k.results)
        res = [json.loads(f["result"]) for _, f in entries]
        if len(res) >= n or time.monotonic() > deadline:
            return res
        await asyncio.sleep(0.05)


async def audit(sim: RunningSimulator) -> list[dict[str, Any]]:
    return list(sim.sim.audit)


# Modules whose tests start worker processes or Redis topologies: each group runs in one
# xdist worker (`make test` uses --dist loadgroup), so at most two of them load the machine at
# once while the rest of the suite spreads over the other workers.
PROCESS_LANES = {
    "test_topology_sentinel": "lane-a", "test_campaigns": "lane-a", "test_cli": "lane-a",
    "test_limits_cli": "lane-a", "test_caller_ids": "lane-a", "test_takeover": "lane-a",
    "test_pacing": "lane-b", "test_recovery": "lane-b", "test_campaigns_controls": "lane-b",
    "test_topology": "lane-b", "test_redis_faults": "lane-b", "test_policy": "lane-b",
    "test_worker_logs": "lane-b",
}


# Modules with a costly module-scoped fixture (a Chromium, a mypy run): all of a module's tests
# run in one xdist worker, so the fixture starts once rather than once per worker.
ONE_WORKER = {"test_console_browser", "test_console_browser_fleet", "test_console_jobs_browser",
              "test_console_limits_browser", "test_console_screenshots", "test_typing"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        name = module.__name__.rpartition(".")[2] if module else ""
        group = PROCESS_LANES.get(name) or (name if name in ONE_WORKER else "")
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
