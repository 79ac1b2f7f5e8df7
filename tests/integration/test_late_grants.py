"""Grant replies that come late, through a Redis proxy that holds them: a job is never dialled
twice, whoever takes it over meanwhile (the simulator's ground truth counts the calls)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from dispatcher.config.settings import Settings
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store
from tests.conftest import (
    RunningWorker,
    make_settings,
    provider_cfg,
    start_worker,
    wait_results,
)
from tests.integration.helpers import calls_for, push
from tests.integration.redis_proxy import Command, RedisProxy, granted_ids, start_proxy

JOB = "lg1"
NUMBER = "+14155550123"
SOCKET_TIMEOUT_S = 4.0
LOST_S = SOCKET_TIMEOUT_S + 1  # a reply held this long never arrives: the client gave up


@pytest.fixture
async def proxy(redis_server: LocalRedis) -> AsyncIterator[RedisProxy]:
    p = await start_proxy(redis_server.port)
    yield p
    await p.stop()


async def until(check: Callable[[], bool], cap_s: float) -> None:
    """Wait for ``check``, at most ``cap_s``."""
    deadline = time.monotonic() + cap_s
    while not check() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def settings(url: str, ns: str, sim: RunningSimulator, concurrency: int) -> Settings:
    return make_settings(url, ns, {"default": provider_cfg("telecho", sim.url)},
                         redis={"socket_timeout_s": SOCKET_TIMEOUT_S},
                         worker={"concurrency": concurrency})


def other_worker_dialled(sim: RunningSimulator) -> bool:
    """A create for the job has reached the simulator (it is slow: no call exists yet)."""
    return sim.sim.number_hits.get(NUMBER, 0) >= 1


async def test_a_late_grant_reply_for_an_unsure_job_does_not_dial_it_twice(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        proxy: RedisProxy, workers: list[RunningWorker]) -> None:
    """The job's first grant reply is lost, so its dial may or may not have happened
    ("unsure"). Its next grant reply comes about a second late. Meanwhile the worker must not
    lose it to a takeover (it was granted a moment ago), and if another worker does dial it,
    the late one must not dial as well; the other's create is slow, so a look-up finds
    nothing yet."""
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.2), talk_s=(0.2, 0.4))
    sim.sim.cfg.faults.slow_s = 1.5
    sim.sim.cfg.faults.by_number[NUMBER] = "slow*1"
    grants = 0

    def hold(cmd: Command, raw: bytes) -> Any:
        nonlocal grants
        if JOB not in granted_ids(cmd, raw):
            return None
        grants += 1
        if grants == 1:
            return asyncio.sleep(LOST_S)
        if grants == 2:  # late until another worker dials (at most 3 s, the socket's 4)
            return until(lambda: other_worker_dialled(sim), 3.0)
        return None

    proxy.reply_rules.append(hold)
    await push(store, {"id": JOB, "to": NUMBER})
    # one dial at a time: while its grant call waits, the first worker asks for no other
    start_worker(settings(proxy.url, ns, sim, 1), workers)
    await until(lambda: grants >= 2, 20.0)
    assert grants == 2, "the job was never granted again after its lost reply"
    start_worker(settings(redis_server.url, ns, sim, 5), workers)
    results = await wait_results(store, 1, timeout=20)
    await asyncio.sleep(0.5)  # and no second call comes
    assert len(calls_for(sim, JOB)) == 1, [(c.id, c.created) for c in sim.sim.calls.values()]
    assert [r["outcome"] for r in results] == ["ended"]
