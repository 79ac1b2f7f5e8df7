"""Call starts per second from ONE worker process against a zero-latency local provider.

Side by side in one run: the raw loop (XREADGROUP a batch, POST each, XACK) and the
dispatcher with pacing on (a limit far above the rate, so the Lua decision runs every time),
dedupe, atomic results and tracking off. Each round runs the raw loop, then every tree, then
the raw loop again; a tree's ratio is to the mean of the two raw runs.

    python benchmarks/throughput.py --jobs 20000     # → benchmarks/results/throughput.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis
import redis.asyncio as aioredis

if not __package__:  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common
from dispatcher.dev.localredis import free_port, start_redis


def fill(url: str, stream: str, n: int, group: str = "workers") -> None:
    r = redis.Redis.from_url(url)
    r.delete(stream)
    common.push_jobs(r, stream, common.jobs(n, "t"), chunk=5000, transaction=False)
    r.xgroup_create(stream, group, id="0")


def redis_cpu_ms_per_1000(url: str, cpu0: float, jobs: int) -> float:
    return (common.redis_cpu_s(redis.Redis.from_url(url)) - cpu0) * 1e6 / jobs


async def raw_loop(url: str, provider: str, n: int, concurrency: int) -> float:
    r = aioredis.Redis.from_url(url, decode_responses=True)
    stream = "raw:jobs"
    done = 0
    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def one(eid: str, job: str) -> None:
            d = json.loads(job)
            async with s.post(provider, json={"phone_number_id": "p",
                                              "destination_number": d["to"]}) as resp:
                await resp.read()
            await r.xack(stream, "workers", eid)

        while done < n:
            resp = await r.xreadgroup("workers", "c", {stream: ">"}, count=concurrency,
                                      block=100)
            batch = [(eid, f["job"]) for _, es in resp or [] for eid, f in es]
            await asyncio.gather(*(one(e, j) for e, j in batch))
            done += len(batch)
    await r.aclose()
    return done / (time.perf_counter() - start)


def dispatcher_rate(url: str, port: int, n: int, concurrency: int, tmp: Path,
                    src: str = "", wait_replicas: int = 0) -> tuple[float, float, float]:
    """Starts per second, the worker's CPU ms per job and Redis's CPU ms per 1,000 jobs;
    ``src``: run the worker from that source tree (a checkout of another commit) instead of
    this one; ``wait_replicas``: the worker's ``redis.wait_replicas``."""
    cfg = tmp / "d.toml"
    default = common.provider(f"http://127.0.0.1:{port}", ["100000000/minute"],
                              api_key_env="TP_KEY")
    cfg.write_text(common.worker_toml(url, "tp", {"default": default}, concurrency=concurrency,
                                      tracking=common.NO_TRACKING,
                                      redis={"wait_replicas": wait_replicas}
                                      if wait_replicas else None))
    r = redis.Redis.from_url(url, decode_responses=True)
    env = {**os.environ, "TP_KEY": "tel_live_x", **({"PYTHONPATH": src} if src else {})}
    # from its own directory: `python -m` puts the working directory first on the path
    proc = subprocess.Popen(common.run_cmd(cfg), env=env, stdout=subprocess.DEVNULL,
                            cwd=src or None)
    try:
        while r.xlen("{tp}:results") < 100:  # warm-up
            time.sleep(0.01)
        base, start, cpu0 = r.xlen("{tp}:results"), time.perf_counter(), common.cpu_s(proc.pid)
        rcpu0 = common.redis_cpu_s(r)
        while r.xlen("{tp}:results") < n:
            time.sleep(0.05)
        done = r.xlen("{tp}:results") - base
        cpu_ms = (common.cpu_s(proc.pid) - cpu0) * 1000 / done
        return (done / (time.perf_counter() - start), cpu_ms,
                redis_cpu_ms_per_1000(url, rcpu0, done))
    finally:
        common.stop([proc], 30)


def run_raw(url: str, port: int, jobs: int, concurrency: int) -> tuple[int, int]:
    """The raw loop's starts per second and Redis CPU ms per 1,000 jobs."""
    fill(url, "raw:jobs", jobs)
    cpu0 = common.redis_cpu_s(redis.Redis.from_url(url))
    rate = asyncio.run(raw_loop(url, f"http://127.0.0.1:{port}/calls/outbound", jobs,
                                concurrency))
    cpu = redis_cpu_ms_per_1000(url, cpu0, jobs)
    redis.Redis.from_url(url).delete("raw:jobs")
    return round(rate), round(cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--src", action="append", default=[],
                    help="also run the worker from this source tree (e.g. a `git worktree` of "
                         "an older commit), in the same rounds; repeatable")
    ap.add_argument("--wait-replicas", type=int, default=0, help=(
        "also run this tree with redis.wait_replicas = N, against N local replicas, in the "
        "same rounds"))
    ap.add_argument("--out", default=str(common.RESULTS / "throughput.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-tp-"))
    rs = start_redis(workdir=str(tmp))
    replicas = [start_redis(extra=("--replicaof", "127.0.0.1", str(rs.port)))
                for _ in range(args.wait_replicas)]
    waited = f"this tree, wait_replicas = {args.wait_replicas}"
    port = free_port()
    prov = common.start_stub(port)
    rounds = []
    try:
        for _ in range(args.rounds):
            # the raw loop runs before and after the trees and they are compared with the mean
            # of both: this host's speed drifts within a round, and one raw run alone made a
            # round's ratios swing by a tenth
            raw_rate, raw_cpu = run_raw(rs.url, port, args.jobs, args.concurrency)
            row: dict[str, Any] = {"raw_loop_per_s": [raw_rate],
                                   "raw_loop_redis_cpu_ms_per_1000": raw_cpu}
            trees = ["", *args.src, *([waited] if replicas else [])]
            k = len(rounds) % len(trees)  # each tree takes its turn right after the raw loop
            for src in trees[k:] + trees[:k]:
                fill(rs.url, "{tp}:jobs", args.jobs)
                wait = args.wait_replicas if src == waited else 0
                rate, cpu_ms, rcpu_ms = dispatcher_rate(rs.url, port, args.jobs,
                                                        args.concurrency, tmp,
                                                        "" if wait else src, wait)
                row[src or "this tree"] = {"per_s": round(rate),
                                           "worker_cpu_ms_per_job": round(cpu_ms, 3),
                                           "redis_cpu_ms_per_1000": round(rcpu_ms)}
                redis.Redis.from_url(rs.url).flushall()
            row["raw_loop_per_s"].append(run_raw(rs.url, port, args.jobs, args.concurrency)[0])
            raw = sum(row["raw_loop_per_s"]) / 2
            for src in trees:
                row[src or "this tree"]["ratio"] = round(row[src or "this tree"]["per_s"] / raw, 3)
            rounds.append(row)
            print(json.dumps(row), flush=True)
    finally:
        prov.terminate()
        for x in (*replicas, rs):
            x.stop()
    report = {"jobs": args.jobs, "concurrency": args.concurrency, "rounds": rounds}
    common.write_json(args.out, report)


if __name__ == "__main__":
    main()
