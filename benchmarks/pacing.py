"""Pacing side by side: the dispatcher, BullMQ's global limiter and Dramatiq's window limiters.

Same machine, same run, same simulator key with exact sliding windows, same backlog, four
worker processes each. Measured on the provider side (the simulator's audit log):
requests over any window, 429s, and the utilisation of each window once it is full.

    pip install -e . -r benchmarks/requirements.txt
    python benchmarks/pacing.py --seconds 40            # writes benchmarks/results/pacing.json
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

import redis

if not __package__:  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common
from dispatcher.core.limits import max_in_any_window, parse_limit
from dispatcher.dev.localredis import free_port, start_redis

HERE = Path(__file__).resolve().parent


def run_dispatcher(env: dict[str, str], tmp: Path, limits: list[str], n: int, procs: int,
                   redis_url: str, sim_url: str) -> list[subprocess.Popen[bytes]]:
    cfg = tmp / "dispatcher.toml"
    default = common.provider(common.sim_api(sim_url), limits)
    cfg.write_text(common.worker_toml(redis_url, "bench", {"default": default},
                                      tracking=common.NO_TRACKING))
    common.push_jobs(redis.Redis.from_url(redis_url), "{bench}:jobs", common.jobs(n))
    return [common.spawn(common.run_cmd(cfg), env, tmp / f"dispatcher-{i}.log")
            for i in range(procs)]


def run_bullmq(env: dict[str, str], tmp: Path, limits: list[str], n: int, procs: int,
               redis_url: str, sim_url: str) -> list[subprocess.Popen[bytes]]:
    from bullmq import Queue
    # one window only: the longest, as a fixed window of max jobs per duration
    w = max(parse_limit(x) for x in limits)

    async def fill() -> None:
        q = Queue("calls", {"connection": redis_url})
        await q.setGlobalRateLimit(w.limit, w.ms)
        for j in common.jobs(n):
            await q.add("call", j, {"removeOnComplete": True})
        await q.close()

    asyncio.run(fill())
    return [common.spawn([sys.executable, str(HERE / "peers" / "bullmq_worker.py")], env,
                         tmp / f"bullmq-{i}.log") for i in range(procs)]


def run_dramatiq(env: dict[str, str], tmp: Path, limits: list[str], n: int, procs: int,
                 redis_url: str, sim_url: str) -> list[subprocess.Popen[bytes]]:
    env["BENCH_WINDOWS"] = json.dumps([[w.limit, int(w.seconds)] for w in
                                       (parse_limit(x) for x in limits)])
    os.environ.update(env)
    sys.path.insert(0, str(HERE))
    from peers import dramatiq_actors
    for j in common.jobs(n):
        dramatiq_actors.call.send(j)
    return [common.spawn([sys.executable, "-m", "dramatiq", "peers.dramatiq_actors",
                          "--processes", "1", "--threads", "8"], {**env, "PYTHONPATH": str(HERE)},
                         tmp / f"dramatiq-{i}.log") for i in range(procs)]


SYSTEMS = {"dispatcher": run_dispatcher, "bullmq": run_bullmq, "dramatiq": run_dramatiq}


def measure(name: str, limits: list[str], seconds: float, n: int, procs: int,
            redis_url: str, sim_url: str, tmp: Path) -> dict[str, Any]:
    redis.Redis.from_url(redis_url).flushall()
    common.admin(sim_url, "/_sim/reset", {})
    env = {**os.environ, "BENCH_KEY": common.KEY, "BENCH_REDIS": redis_url,
           "BENCH_SIM_URL": sim_url}
    workers = SYSTEMS[name](env, tmp, limits, n, procs, redis_url, sim_url)
    start = time.time()
    time.sleep(seconds)
    common.kill(workers)
    audit = [e for e in common.admin(sim_url, "/_sim/audit")["entries"] if e["t"] >= start - 5]
    times = [e["t"] for e in audit]
    t0 = min(times) if times else start
    t1 = t0 + seconds - 2
    windows = sorted(parse_limit(x) for x in limits)
    out: dict[str, Any] = {"system": name, "requests": len(times),
                           "answered_429": sum(1 for e in audit if e["status"] == 429),
                           "windows": {}}
    for w in windows:
        worst = max_in_any_window(times, w.seconds)
        over = common.windows_over(times, w)
        out["windows"][w.label()] = {
            "max_in_any_window": worst, "limit": w.limit, "over_limit_moments": over,
            "utilisation": round(common.utilisation(times, w, t0, t1), 4)}
    out["binding_utilisation"] = max(v["utilisation"] for v in out["windows"].values())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--limits", default="100/5s,300/30s")
    ap.add_argument("--systems", default="dispatcher,bullmq,dramatiq")
    ap.add_argument("--out", default=str(common.RESULTS / "pacing.json"))
    args = ap.parse_args()
    limits = args.limits.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="bench-pacing-"))
    rs = start_redis(workdir=str(tmp))
    port = free_port()
    (tmp / "sim.toml").write_text(common.sim_toml(limits))
    sim, sim_url = common.start_sim(tmp / "sim.toml", port)
    try:
        common.wait_sim(sim_url)
        results = []
        for name in args.systems.split(","):
            res = measure(name, limits, args.seconds, args.jobs, args.processes, rs.url,
                          sim_url, tmp)
            results.append(res)
            print(json.dumps(res), flush=True)
    finally:
        common.stop([sim], 10)
        rs.stop()
    report = {"limits": limits, "seconds": args.seconds, "jobs": args.jobs,
              "processes": args.processes, "results": results}
    common.write_json(args.out, report)
    print(f"{'system':<12}{'requests':>9}{'429s':>7}  " + "  ".join(
        f"{w:>28}" for w in results[0]["windows"]))
    for r in results:
        cells = "  ".join(f"max {v['max_in_any_window']:>4}/{v['limit']:<4} "
                          f"over {v['over_limit_moments']:>4} use {v['utilisation']:>6.1%}"
                          for v in r["windows"].values())
        print(f"{r['system']:<12}{r['requests']:>9}{r['answered_429']:>7}  {cells}")


if __name__ == "__main__":
    main()
