"""Redis as production runs it: a real 3-master Cluster (every script on it, twice; workers
dialling, pacing and tracking through it), TLS, and the ``[redis]`` table's checks."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from dispatcher.config.settings import ConfigError, RedisConfig, Settings, load_settings
from dispatcher.core.limits import max_in_any_window
from dispatcher.dev.localredis import LocalCluster, LocalRedis, TlsFiles, start_cluster, start_redis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store, connect
from dispatcher.store.scripts import NAMES
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import creates, push, set_key
from tests.integration.test_scripts import NOW, SETUPS, snapshot

LIMITS = ["20/2s"]


def hand_config_to_worker(monkeypatch: pytest.MonkeyPatch, cfg: RedisConfig) -> None:
    """The worker builds its client with ``connect(settings.redis.url, ...)``; a URL alone
    names no cluster or sentinels, so give ``connect`` the whole table (a no-op once the
    worker passes ``settings.redis`` itself)."""
    import dispatcher.engine.worker as worker_module
    real = worker_module.connect

    def by_config(target: str | RedisConfig, *args: Any, **kwargs: Any) -> Any:
        return real(cfg if isinstance(target, str) else target, *args, **kwargs)

    monkeypatch.setattr(worker_module, "connect", by_config)


def topology_settings(redis: dict[str, Any], ns: str, sim: RunningSimulator,
                      track: bool = True, limits: list[str] = LIMITS,
                      dialect: str = "telecho") -> Settings:
    """Settings for ``redis``; the simulator allows twice ``limits`` (polls count there)."""
    set_key(sim, dialect, limits=[_twice(x) for x in limits])
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.2), talk_s=(0.2, 0.4))
    sim.sim.cfg.account("acme").max_concurrent_calls = 1000
    return make_settings(redis["url"], ns, {"default": provider_cfg(
        dialect, sim.url, limits=limits, send_margin_s=0.3)},  # a busy test process
        redis=redis, tracking={"poll_schedule_s": [0.3, 0.3], "track_calls": track,
                               "visit_lease_s": 3.0})


def _twice(limit: str) -> str:
    n, _, per = limit.partition("/")
    return f"{int(n) * 2}/{per}"


async def dial_pace_track(store: Store, sim: RunningSimulator, settings: Settings,
                          workers: list[RunningWorker], n: int = 40) -> list[dict[str, Any]]:
    """Two workers, ``n`` jobs: one result each, ended calls, one create per job, and never
    more creates in any 2 s than the provider's limit."""
    for _ in range(2):
        start_worker(settings, workers)
    await push(store, *({"id": f"k{i}", "to": f"+1415555{i:04d}"} for i in range(n)))
    results = await wait_results(store, n, timeout=60)
    assert Counter(r["job_id"] for r in results) == {f"k{i}": 1 for i in range(n)}
    assert {r["outcome"] for r in results} == {"ended"}  # tracked to the call's end
    assert all(len(creates(sim, f"k{i}")) == 1 for i in range(n))
    assert max_in_any_window([e["t"] for e in creates(sim)], 2.0) <= 20
    return results


# -- Cluster -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    c = start_cluster(3)
    yield c
    c.stop()


def cluster_cfg(cluster: LocalCluster, ns: str) -> RedisConfig:
    return RedisConfig(mode="cluster", url=cluster.nodes[1].url, namespace=ns, block_ms=200)


@pytest.fixture
async def cstore(cluster: LocalCluster, ns: str) -> AsyncIterator[Store]:
    s = Store(connect(cluster_cfg(cluster, ns)), ns)
    await s.ensure_group()
    yield s
    await s.close()


async def test_a_plain_client_pointed_at_a_cluster_node_fails_with_moved(
        cluster: LocalCluster) -> None:
    """Why the mode exists: the slot of a namespace lives on one node of three."""
    moved = 0
    for node in cluster.nodes:
        plain = Store(connect(node.url), "topo")
        try:
            await plain.ensure_group()
        except Exception as exc:  # redis-py raises ResponseError/MovedError subclasses
            moved += "MOVED" in str(exc) or type(exc).__name__ == "MovedError"
        finally:
            await plain.close()
    assert moved == 2


@pytest.mark.parametrize("name", sorted(NAMES))
async def test_every_script_runs_twice_on_a_cluster_within_the_namespace_slot(
        cluster: LocalCluster, name: str) -> None:
    ns = "t" + uuid.uuid4().hex[:10]
    store = Store(connect(cluster_cfg(cluster, ns)), ns)
    try:
        await store.ensure_group()
        args = await SETUPS[name](store)
        await store.s.call(name, NOW, **args)
        after_first = await snapshot(store)
        await store.s.call(name, NOW, **args)
        assert await snapshot(store) == after_first
        slot = key_slot(store.k.jobs.encode())
        every_key = [str(k) async for k in store.r.scan_iter()]
        assert every_key and all(k.startswith("{t") for k in every_key), every_key
        mine = [k for k in every_key if k.startswith(store.k.prefix)]
        assert {key_slot(k.encode()) for k in mine} == {slot}
    finally:
        await store.close()


async def test_jobs_are_dialled_paced_and_tracked_through_a_cluster(
        cluster: LocalCluster, ns: str, cstore: Store, sim: RunningSimulator,
        workers: list[RunningWorker], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = topology_settings({"mode": "cluster", "url": cluster.nodes[2].url}, ns, sim)
    hand_config_to_worker(monkeypatch, settings.redis)
    await dial_pace_track(cstore, sim, settings, workers)
    assert (await cstore.counts())["o:ended"] == 40


# -- TLS -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_redis() -> Iterator[LocalRedis]:
    server = start_redis(tls=TlsFiles.make())
    yield server
    server.stop()


async def test_tls_with_the_ca_in_the_url_or_in_the_table_connects(
        tls_redis: LocalRedis) -> None:
    assert tls_redis.tls is not None
    plain_url = tls_redis.url.replace("rediss://", "redis://")
    for target in (f"{tls_redis.url}?ssl_ca_certs={tls_redis.tls.ca}",
                   RedisConfig(url=tls_redis.url, tls_ca_file=tls_redis.tls.ca),
                   RedisConfig(url=plain_url, tls=True, tls_ca_file=tls_redis.tls.ca)):
        store = Store(connect(target), "tls")
        try:
            await store.ensure_group()
            await store.enqueue([{"id": "a", "to": "+14155550100"}])
            [(_, raw)] = await store.read("c", 1, 10)  # the bytes client speaks TLS too
            assert raw is not None and json.loads(raw)["id"] == "a"
        finally:
            await store.r.delete(store.k.jobs)
            await store.close()


async def test_tls_with_an_unknown_ca_is_refused(tls_redis: LocalRedis) -> None:
    other = TlsFiles.make()
    client = connect(RedisConfig(url=tls_redis.url, tls_ca_file=other.ca))
    with pytest.raises(RedisConnectionError):
        await client.ping()
    await client.aclose()


async def test_a_worker_dials_through_tls_from_the_url_alone(
        tls_redis: LocalRedis, ns: str, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    assert tls_redis.tls is not None
    url = f"{tls_redis.url}?ssl_ca_certs={tls_redis.tls.ca}"
    store = Store(connect(url), ns)
    try:
        settings = topology_settings({"url": url}, ns, sim, track=False)
        start_worker(settings, workers)
        await push(store, *({"id": f"s{i}", "to": f"+1415555{i:04d}"} for i in range(5)))
        results = await wait_results(store, 5, timeout=20)
        assert sorted(r["job_id"] for r in results) == [f"s{i}" for i in range(5)]
    finally:
        await store.close()


# -- the [redis] table ---------------------------------------------------------------------
@pytest.mark.parametrize(("redis", "needle"), [
    ({"mode": "sentinel"}, "redis.sentinels"),
    ({"mode": "sentinel", "sentinels": ["a:1"]}, "master_name"),
    ({"mode": "sentinel", "sentinels": ["nohost"], "master_name": "m"}, "host:port"),
    ({"mode": "cluster", "url": "redis://h:7000/3"}, "database 0"),
    ({"mode": "cluster", "url": "unix:///tmp/r.sock"}, "TCP"),
    ({"mode": "ring"}, "redis.mode"),
])
def test_a_redis_table_that_cannot_work_is_refused_by_name(
        redis: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_settings(None, redis=redis)


def test_worker_concurrency_is_capped_at_500() -> None:
    assert load_settings(None, worker={"concurrency": 500}).worker.concurrency == 500
    with pytest.raises(ConfigError, match=r"worker\.concurrency"):
        load_settings(None, worker={"concurrency": 501})


def test_results_max_age_is_optional_and_at_least_a_minute() -> None:
    assert load_settings(None).results.max_age_s is None
    assert load_settings(None, results={"max_age_s": 3600}).results.max_age_s == 3600
    with pytest.raises(ConfigError, match=r"results\.max_age_s"):
        load_settings(None, results={"max_age_s": 5})


async def test_a_full_pool_makes_commands_wait_instead_of_failing(
        redis_server: LocalRedis) -> None:
    client = connect(redis_server.url, max_connections=2)
    try:
        slow = [client.blpop(["{pool}:nothing"], timeout=0.2) for _ in range(2)]
        replies = await asyncio.gather(*slow, client.ping(), client.ping())
        assert replies == [None, None, True, True]
    finally:
        await client.aclose()


async def test_a_cluster_client_waits_for_a_free_connection_too(cluster: LocalCluster) -> None:
    client = connect(cluster_cfg(cluster, "pool"), max_connections=6)
    try:
        key = "{pool}:x"
        replies = await asyncio.gather(*(client.incr(key) for _ in range(50)))
        assert sorted(replies) == list(range(1, 51))
    finally:
        await client.delete("{pool}:x")
        await client.aclose()


async def test_the_password_comes_from_a_file_or_the_environment(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_redis(extra=("--requirepass", "s3cret"))
    try:
        secret = tmp_path / "redis-password"
        secret.write_text("s3cret\n")
        monkeypatch.setenv("TEST_REDIS_PASSWORD", "s3cret")
        for cfg in (RedisConfig(url=server.url, password_file=str(secret)),
                    RedisConfig(url=server.url, password_env="TEST_REDIS_PASSWORD")):
            client = connect(cfg)
            assert await client.ping()
            await client.aclose()
        client = connect(server.url)
        with pytest.raises(Exception, match=r"(?i)auth"):
            await client.ping()
        await client.aclose()
    finally:
        server.stop()


async def test_forget_finds_and_erases_a_number_on_a_cluster(cstore: Store) -> None:
    await cstore.enqueue([{"id": "alice-c", "to": "+14155550111"},
                          {"id": "bob-c", "to": "+14155550122"}])
    await cstore.read("w1", 10, 10)
    erased = await cstore.forget(numbers=["+14155550111"])
    assert erased.entries == 1 and erased.fenced == ["alice-c"]
    [(_, fields)] = await cstore.r.xrange(cstore.k.jobs)
    assert json.loads(fields["job"])["id"] == "bob-c"
