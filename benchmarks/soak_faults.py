"""What the soak does to Redis besides stopping it: grant replies held back by a loopback proxy,
and a Sentinel set, reached only through such proxies, whose master is killed once under load.

The proxy is the test suite's (``tests/integration/redis_proxy.py``), run here on an event loop
of its own in a thread, since the soak's main loop is synchronous.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis
import redis.sentinel

from dispatcher.dev.localredis import LocalSentinel, start_sentinel
from tests.integration.redis_proxy import GRANTING, Command, RedisProxy, granted_ids, start_proxy

T = TypeVar("T")


class ProxyLoop:
    """Proxies served from one event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="redis-proxies")
        self.thread.start()
        self.proxies: list[RedisProxy] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def proxy(self, upstream_port: int, delays: GrantDelays) -> RedisProxy:
        p = self.run(start_proxy(upstream_port))
        p.reply_rules.append(delays)
        self.proxies.append(p)
        return p

    def stop(self) -> None:
        for p in self.proxies:
            self.run(p.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class GrantDelays:
    """A reply rule: holds ``share`` of the replies that grant dials (GRANT, INGEST) for a
    time drawn from [low_s, high_s], and remembers each hold with the jobs it granted."""

    share: float
    low_s: float = 0.5
    high_s: float = 3.0
    seed: int = 7
    held: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.t0 = time.monotonic()

    def __call__(self, cmd: Command, raw: bytes) -> Awaitable[None] | None:
        if self.share <= 0 or len(cmd) < 2 or cmd[1] not in GRANTING:
            return None
        jobs = granted_ids(cmd, raw)
        if not jobs or self.rng.random() >= self.share:
            return None
        hold = self.rng.uniform(self.low_s, self.high_s)
        self.held.append({"t": round(time.monotonic() - self.t0, 2), "held_s": round(hold, 2),
                          "jobs": sorted(jobs)})
        return asyncio.sleep(hold)

    def summary(self) -> dict[str, Any]:
        holds = sorted(h["held_s"] for h in self.held)
        return {"share": self.share, "range_s": [self.low_s, self.high_s],
                "replies_held": len(holds),
                "jobs_in_held_replies": sum(len(h["jobs"]) for h in self.held),
                "held_s_min_median_max": [holds[0], holds[len(holds) // 2], holds[-1]]
                if holds else []}


@dataclass
class ProxiedSentinel:
    """A master, its replica and a Sentinel; every server reached through a proxy that holds
    grant replies. ``fronts`` maps a server's own port to its proxy's."""

    group: LocalSentinel
    fronts: dict[int, int]

    @classmethod
    def start(cls, loop: ProxyLoop, delays: GrantDelays, down_after_ms: int
              ) -> ProxiedSentinel:
        fronts: dict[int, int] = {}

        def front(port: int) -> int:
            fronts[port] = loop.proxy(port, delays).port
            return fronts[port]
        return cls(start_sentinel(front=front, down_after_ms=down_after_ms), fronts)

    def switches(self) -> list[str]:
        """The Sentinel's ``+switch-master`` lines: one per failover it made."""
        log = Path(self.group.sentinel.dir) / "sentinel.log"
        return [line.split(" # ", 1)[-1] for line in log.read_text().splitlines()
                if "+switch-master" in line]

    def redis_table(self) -> dict[str, Any]:
        """The workers' ``[redis]`` keys (the url is ignored in sentinel mode)."""
        return {"url": "redis://127.0.0.1:1/0", "mode": "sentinel",
                "sentinels": self.group.sentinels, "master_name": self.group.name}

    def client(self) -> redis.Redis:
        s = redis.sentinel.Sentinel([("127.0.0.1", self.group.sentinel.port)],
                                    socket_timeout=2)
        return s.master_for(self.group.name, decode_responses=True, socket_timeout=5)

    def master_front(self) -> int:
        s = redis.Redis(port=self.group.sentinel.port, socket_timeout=2)
        try:
            addr: Any = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.group.name)
            return int(addr[1])
        finally:
            s.close()

    def fail_over(self, cap_s: float = 60.0) -> float:
        """Kills the master (SIGKILL) and waits for the Sentinel to name the replica; answers
        the seconds that took. The killed server is then started again from its AOF, and the
        Sentinel makes it the new master's replica (with ``wait_replicas = 1`` no grant is
        acknowledged until then)."""
        old = self.group.master
        killed = time.monotonic()
        old.kill()
        while self.master_front() == self.fronts[old.port]:
            if time.monotonic() - killed > cap_s:
                raise RuntimeError(f"no failover within {cap_s:.0f} s")
            time.sleep(0.05)
        promoted = time.monotonic() - killed
        old.restart()
        self.group.master, self.group.replica = self.group.replica, old
        return promoted

    def replica_linked(self) -> bool:
        """The server that was killed is replicating from the new master again."""
        try:
            info = redis.Redis(port=self.group.replica.port, socket_timeout=2).info("replication")
        except redis.RedisError:
            return False
        return info.get("role") == "slave" and info.get("master_link_status") == "up"

    def killed_is_master_again(self) -> bool:
        """The Sentinel failed over once more, back to the server killed first."""
        return self.master_front() == self.fronts[self.group.replica.port]

    def stale_clients(self) -> list[dict[str, str]]:
        """Clients of the killed server, started again, other than the Sentinel's and
        replication links: anyone who reached it before the Sentinel made it a replica
        talked to a master holding what the failover lost."""
        try:
            clients: Any = redis.Redis(port=self.group.replica.port, socket_timeout=2,
                                       decode_responses=True).client_list()
        except redis.RedisError:
            return []
        return [{k: c.get(k, "") for k in ("id", "age", "cmd", "flags", "lib-name")}
                for c in clients if not str(c.get("name", "")).startswith("sentinel-")
                and not set(str(c.get("flags", ""))) & {"S", "M"} and c.get("cmd") != "client|list"]

    def stop(self) -> None:
        self.group.stop()
