"""Dead workers: with every heartbeat old, every console page, ``dispatcher status`` and
``/metrics`` say no worker lives, and providers are not shown "running". The Workers page
shows what each worker publishes and what was taken over from a dead one.

A dead worker is made the way one is left behind: its last heartbeat, run at a time in the
past (the scripts take the clock as an argument), and nothing since."""

from __future__ import annotations

import re
from typing import Any

from dispatcher.config.console import ConsoleConfig
from dispatcher.dev.localredis import LocalRedis
from dispatcher.ops import status
from dispatcher.store import Store
from dispatcher.store.keys import GROUP
from tests.integration.test_console_http import fetch, quiet_settings, running_console

PAGES = ["/", "/providers", "/campaigns", "/jobs", "/failures", "/workers"]
INFO = {"host": "box-1", "pid": 4242, "version": "0.1.0", "started": 1_700_000_000_000,
        "concurrency": 64}


async def beat(store: Store, consumer: str, at_ms: int, **kw: Any) -> dict[str, Any]:
    """One heartbeat of ``consumer`` as the worker sends it, at ``at_ms``."""
    args: dict[str, Any] = {"group": GROUP, "consumer": consumer, "held": [], "dead": 3000,
                            "stale": 5000, "settle": {"~": 0}, "margins": {},
                            "visiting": [], "info": {**INFO, "host": f"{consumer}-host"}}
    res: dict[str, Any] = await store.s.call("heartbeat", at_ms, **{**args, **kw})
    return res


def gauge(body: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", body, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


async def test_every_worker_dead_is_said_by_every_page_status_and_metrics(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    s = quiet_settings(redis_server, ns)
    now = await store.server_ms()
    await beat(store, "w1", now - 961_000, held=["j1", "j2"])  # both die within a second
    await beat(store, "w2", now - 960_000)
    st = await status.collect(store, s)
    assert st["live_workers"] == 0 and [c["alive"] for c in st["consumers"]] == [False, False]
    assert st["providers"]["default"]["state"] == "no live worker"
    text = status.render(st)
    assert "NO LIVE WORKER" in text and "w2 (DEAD, last heartbeat 960" in text
    assert "running" not in text
    async with running_console(s, ConsoleConfig()) as url:
        for path in PAGES:
            code, body, _ = await fetch(url + path)
            assert code == 200 and 'data-alert="no-live-worker"' in body, path
        _, body, _ = await fetch(url + "/providers")
        assert 'data-state="running"' not in body and 'data-state="no live worker"' in body
        _, body, _ = await fetch(url + "/metrics")
        assert gauge(body, "dispatcher_workers_alive") == 0
        await beat(store, "w3", await store.server_ms())  # a worker starts
        for path in PAGES:
            _, body, _ = await fetch(url + path)
            assert 'data-alert="no-live-worker"' not in body, path
    async with running_console(s, ConsoleConfig()) as url:  # its metrics not read yet
        _, body, _ = await fetch(url + "/metrics")
        assert gauge(body, "dispatcher_workers_alive") == 1
    st = await status.collect(store, s)
    assert st["live_workers"] == 1 and st["providers"]["default"]["state"] == "running"
    assert "NO LIVE WORKER" not in status.render(st)


async def test_the_workers_page_shows_what_each_worker_publishes_and_what_was_taken_over(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    s = quiet_settings(redis_server, ns)
    now = await store.server_ms()
    await store.r.sadd(store.k.visiting("w1"), "c1", "c2", "c3")
    await beat(store, "w2", now - 1000)
    await beat(store, "w1", now - 10_000, held=["j1", "j2"], visiting=["c1", "c2", "c3"])
    async with running_console(s, ConsoleConfig()) as url:
        _, body, _ = await fetch(url + "/workers")
        w1 = re.search(r'<tr data-worker="w1" data-state="dead">.*?</tr>', body)
        assert w1, body
        row = w1.group(0)
        for shown in ("w1-host", ">4242<", "0.1.0", "2023-11-14 22:13:20 UTC",
                      '"inflight">2<', '"polling">3<', ">64<"):
            assert shown in row, shown
        assert '<tr data-worker="w2" data-state="alive">' in body
        assert "1 of 2 workers alive" in body
        res = await beat(store, "w2", now)  # w2 takes w1 over
        assert res["reaped"] == ["w1"]
        _, body, _ = await fetch(url + "/workers")
    assert 'data-worker="w1"' not in body
    taken = re.search(r'<tr data-reaped="w1">.*?</tr>', body)
    assert taken and "w1-host" in taken.group(0) and "pid 4242" in taken.group(0)
    assert "<td>w2</td>" in taken.group(0)
    assert await store.r.exists(store.k.worker("w1")) == 0
