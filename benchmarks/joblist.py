"""The console's jobs list with 10^6 jobs in Redis: how long its first page takes to answer.

One private redis-server (a free port below 55535) is filled with pipelines: each job's hash
(the fields the list shows) and its place in the index sets the scripts keep (``jx:<state>``,
``jx:<state>:<campaign>``, ``jo:<outcome>``), spread over 20 campaigns, two providers, the
usual states and the last 7 days. Then the console runs in this process and each filter's
first page is fetched over HTTP (``GET /jobs?...``, the full HTML page) ``--repeat`` times:
median and worst. Also reported: the index's bytes per job (MEMORY USAGE of its sets).

    python -m benchmarks.joblist --jobs 1000000   # -> benchmarks/results/joblist.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis

from benchmarks import common
from dispatcher.config.console import ConsoleConfig
from dispatcher.config.settings import load_settings
from dispatcher.console.app import build_app
from dispatcher.dev.localredis import cluster_port, start_redis
from dispatcher.engine.http import serve
from dispatcher.store import Store, connect

NS = "jl"
P = "{" + NS + "}:"
DAY_MS = 86_400_000
STATES = (("done", 60), ("queued", 25), ("delayed", 10), ("parked", 5))
OUTCOMES = ("ended", "ended", "ended", "started", "exhausted", "rejected", "expired")
REASONS = ("retry", "window", "not_before", "number_cap")
FILTERS = {
    "queued, any campaign": "state=queued",
    "queued, one campaign": "state=queued&campaign=c7",
    "delayed, one campaign, oldest first": "state=delayed&campaign=c7&order=oldest",
    "done, one campaign, exhausted": "state=done&campaign=c7&outcome=exhausted",
    "done, last hour": "state=done&since={hour_ago}",
    "delayed, wait reason retry (checked per job)": "state=delayed&wait_reason=retry",
    "queued, provider beta (checked per job)": "state=queued&provider=beta",
    "queued, a provider no job has (worst case)": "state=queued&provider=nobody",
}


def fill(r: redis.Redis, n: int, now: int, chunk: int = 20_000) -> None:
    rnd = random.Random(7)
    weights = [w for _, w in STATES]
    for k in range(0, n, chunk):
        pipe = r.pipeline(transaction=False)
        for i in range(k, min(n, k + chunk)):
            state = rnd.choices(STATES, weights)[0][0]
            camp, since = f"c{i % 20}", now - rnd.randrange(7 * DAY_MS)
            f = {"state": state, "prov": "alpha" if i % 10 else "beta", "prio": "normal",
                 "camp": camp, "to": f"+1415{i:07d}", "first_seen": since, "attempts": 1}
            if state == "done":
                f["outcome"] = rnd.choice(OUTCOMES)
                pipe.zadd(P + "jo:" + f["outcome"], {f"j{i}": since})
            elif state != "queued":
                f["wr"] = rnd.choice(REASONS) if state == "delayed" else "halted"
            pipe.hset(P + f"job:j{i}", mapping=f)
            pipe.zadd(P + "jx:" + state, {f"j{i}": since})
            pipe.zadd(P + f"jx:{state}:{camp}", {f"j{i}": since})
        pipe.execute()


def index_bytes(r: redis.Redis) -> int:
    total = 0
    for key in r.scan_iter(match=P + "j[xo]:*", count=1000):
        total += int(r.memory_usage(key, samples=0) or 0)
    return total


async def measure(url: str, repeat: int, hour_ago: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        for name, q in FILTERS.items():
            times, rows = [], 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                async with http.get(f"{url}/jobs?{q.format(hour_ago=hour_ago)}") as resp:
                    body = await resp.text()
                    assert resp.status == 200, body[:300]
                times.append((time.perf_counter() - t0) * 1000)
                rows = body.count("<tr data-job=")
            out[name] = {"rows": rows, "median_ms": round(statistics.median(times), 1),
                         "max_ms": round(max(times), 1)}
            print(f"{name:48s} {rows:3d} rows  median {out[name]['median_ms']:7.1f} ms  "
                  f"max {out[name]['max_ms']:7.1f} ms", flush=True)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    server = start_redis(cluster_port())  # a free port below 55535
    try:
        r = redis.Redis(port=server.port, decode_responses=True)
        now = int(time.time() * 1000)
        t0 = time.perf_counter()
        fill(r, args.jobs, now)
        fill_s = time.perf_counter() - t0
        print(f"filled {args.jobs:,} jobs in {fill_s:.0f} s", flush=True)
        per_job = index_bytes(r) / args.jobs
        settings = load_settings(None, redis={"url": server.url, "namespace": NS},
                                 providers={"alpha": {"kind": "telecho",
                                                      "base_url": "http://127.0.0.1:9",
                                                      "api_key_env": "NONE",
                                                      "phone_number_id": "x"}})
        store = Store(connect(server.url), NS)
        runner, port = await serve(build_app(settings, ConsoleConfig(), store), "127.0.0.1", 0)
        try:
            hour_ago = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now / 1000 - 3600))
            pages = await measure(f"http://127.0.0.1:{port}", args.repeat, hour_ago)
        finally:
            await runner.cleanup()
            await store.close()
        return {"jobs": args.jobs, "fill_s": round(fill_s), "repeat": args.repeat,
                "index_bytes_per_job": round(per_job), "first_page": pages}
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--out", default=str(common.RESULTS / "joblist.json"))
    args = ap.parse_args()
    report = asyncio.run(run(args))
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
