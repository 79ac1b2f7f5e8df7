"""``redis.wait_replicas`` against a real master and replica: a grant counts as acknowledged
only once the replica has it, also when its reply is a replay (the first reply was lost and
the call retried on another connection)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio

from dispatcher.core import codec
from dispatcher.dev.localredis import LocalRedis, start_redis
from dispatcher.store import Store, connect
from tests.integration.redis_proxy import script_sha
from tests.integration.test_scripts import grant_args, ingested


@pytest.fixture
def pair() -> Iterator[tuple[LocalRedis, LocalRedis]]:
    master = start_redis()
    replica = start_redis(extra=("--replicaof", "127.0.0.1", str(master.port)))
    try:
        deadline = time.monotonic() + 20
        while b"master_link_status:up" not in replica_info(replica):
            assert time.monotonic() < deadline, "the replica never caught up"
            time.sleep(0.05)
        yield master, replica
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
        replica.stop()
        master.stop()


def replica_info(replica: LocalRedis) -> bytes:
    info = redis.Redis(port=replica.port).info("replication")
    return b"master_link_status:up" if info.get("master_link_status") == "up" else b""


async def test_a_replayed_grant_is_acknowledged_only_once_a_replica_has_it(
        pair: tuple[LocalRedis, LocalRedis], ns: str) -> None:
    master, replica = pair
    first, retry = Store(connect(master.url), ns), Store(connect(master.url), ns)
    try:
        await first.ensure_group()
        await ingested(first)
        os.kill(replica.proc.pid, signal.SIGSTOP)  # connected, acknowledging nothing
        granted = await first.s.call("grant", rid="g1", grants=[grant_args()])
        assert granted["grants"][0]["jobs"]
        # the first reply was lost: the same call again, as a retry sends it (EVALSHA, then
        # WAIT) on a connection that wrote nothing
        again = redis.asyncio.Redis(port=master.port, single_connection_client=True)
        try:
            payload = codec.dumpb({"p": first.k.prefix, "rid": "g1", "grants": [grant_args()]})
            replayed = await again.evalsha(script_sha("grant").decode(), 1, first.k.jobs,
                                           payload)
            acked = await again.wait(1, 300)
        finally:
            await again.aclose()
        assert codec.loads(replayed) == granted
        assert acked == 0  # the replica does not have the grant
        os.kill(replica.proc.pid, signal.SIGCONT)
        _, acked = await retry.s.call_replicated("grant", 1, 5000, rid="g1",
                                                 grants=[grant_args()])
        assert acked == 1
    finally:
        await first.close()
        await retry.close()
