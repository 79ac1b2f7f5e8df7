"""One system in one round: its own fresh redis-server, a backlog of N jobs, one worker process.

Measured, in this order:

1. bytes per queued job: ``used_memory`` after the system's producer pushed N jobs, minus
   before, over N (no worker running yet);
2. throughput: the worker drains the backlog; the rate is taken at the stub, between the
   arrival of call start number ``skip`` and the last, so that start-up does not count;
   the worker's and Redis's CPU seconds are sampled at the same two moments;
3. enqueue → dial latency: with the backlog gone, the same worker gets jobs pushed one at a
   time at a steady rate; each carries its push time, the stub subtracts it on arrival.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
from peers import measure, stub
from peers.systems import Job, Setup, System

from benchmarks import common
from dispatcher.dev.localredis import start_redis

HERE = Path(__file__).resolve().parent.parent  # benchmarks/


def jobs(prefix: str, n: int) -> list[Job]:
    return [{"id": f"{prefix}{i}", "to": f"+1415{5550000 + i % 10000:07d}"} for i in range(n)]


def spawn(system: System, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_REDIS": system.setup.redis_url,
           "BENCH_STUB": system.setup.stub_url, "BENCH_KEY": "tel_live_x",
           "BENCH_CONCURRENCY": str(system.setup.concurrency),
           "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return common.spawn(system.worker_cmd(), env, log, cwd=HERE)


def wait_until(check: Any, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.02)


async def _push(system: System, batch: list[Job]) -> None:
    await system.open()
    try:
        await system.push(batch)
    finally:
        await system.close()


async def _steady(system: System, prefix: str, rate: float, seconds: float) -> int:
    """Push one job at a time at ``rate``/s; each carries its push time as metadata ``t0``."""
    await system.open()
    n = int(rate * seconds)
    start = time.monotonic()
    try:
        for i, job in enumerate(jobs(prefix, n)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            job["metadata"] = {"t0": time.time()}
            await system.push_one(job)
    finally:
        await system.close()
    return n


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p * (len(s) - 1)))] if s else float("nan")


def throughput(system: System, r: redis.Redis, n: int, stub_port: int,
               proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    skip = min(500, n // 10)
    timeout = 60 + n / 100
    wait_until(lambda: stub.ask(stub_port, "count")["count"] >= skip, timeout, "warm-up", proc)
    c0, w0, r0 = stub.ask(stub_port, "count")["count"], common.cpu_s(proc.pid), \
        common.redis_cpu_s(r)
    wait_until(lambda: stub.ask(stub_port, "count")["count"] >= n, timeout, "all starts", proc)
    c1, w1, r1 = stub.ask(stub_port, "count")["count"], common.cpu_s(proc.pid), \
        common.redis_cpu_s(r)
    wait_until(lambda: system.done(r, n) >= n, 30, "all results", proc)
    stats = stub.ask(stub_port, "stats")
    arrivals = sorted(stats["arrivals"])
    per_k = 1000 / max(1, c1 - c0)
    return {"starts": len(arrivals), "jobs_started": stats["distinct_jobs"],
            "results": system.done(r, n),
            "per_s": round((n - skip) / (arrivals[n - 1] - arrivals[skip - 1]), 1),
            "worker_cpu_s_per_1k": round((w1 - w0) * per_k, 3),
            "redis_cpu_s_per_1k": round((r1 - r0) * per_k, 3),
            **measure.proc_rss_mib(proc.pid)}


def latency(system: System, stub_port: int, prefix: str, rate: float, seconds: float,
            proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    stub.ask(stub_port, "reset")
    n = asyncio.run(_steady(system, prefix, rate, seconds))
    try:
        wait_until(lambda: stub.ask(stub_port, "count")["count"] >= n, 15, "latency jobs", proc)
    except TimeoutError:
        pass  # reported as fewer arrivals than pushed
    lat = stub.ask(stub_port, "stats")["latencies"]
    return {"pushed": n, "arrived": len(lat), "p50_ms": round(_pct(lat, 0.5) * 1000, 2),
            "p99_ms": round(_pct(lat, 0.99) * 1000, 2),
            "max_ms": round(max(lat, default=float("nan")) * 1000, 2)}


def run_system(cls: type[System], n: int, concurrency: int, stub_port: int, tmp: Path,
               tag: str, lat_rate: float, lat_seconds: float) -> dict[str, Any]:
    """Everything for one system in one round, on a redis-server of its own."""
    rs = start_redis(port=measure.free_port(), workdir=str(tmp))
    system = cls(Setup(rs.url, f"http://127.0.0.1:{stub_port}", concurrency, tmp))
    r = redis.Redis.from_url(rs.url)
    proc = None
    try:
        m0 = measure.used_memory(r)
        asyncio.run(_push(system, jobs(f"{tag}-", n)))
        queued = (measure.used_memory(r) - m0) / n
        stub.ask(stub_port, "reset")
        proc = spawn(system, tmp / f"{tag}.log")
        out: dict[str, Any] = {"system": cls.name, "queued_bytes_per_job": round(queued)}
        out |= throughput(system, r, n, stub_port, proc)
        out["finished_bytes_per_job"] = round((measure.used_memory(r) - m0) / n)
        out["latency"] = latency(system, stub_port, f"{tag}-l", lat_rate, lat_seconds, proc)
        return out
    finally:
        if proc is not None:
            common.stop([proc], 10)
        r.close()
        rs.stop()
