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
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis

from dispatcher.limits import Window, max_in_any_window, parse_limit
from dispatcher.localredis import free_port, start_redis

KEY = "tel_live_demo_key_0001"
HERE = Path(__file__).resolve().parent


def sim_toml(limits: list[str]) -> str:
    quoted = ", ".join(f'"{x}"' for x in limits)
    return (f'[keys.{KEY}]\ndialect = "telecho"\nlimits = [{quoted}]\n'
            '[accounts.acme]\nmax_concurrent_calls = 1000000\n')


def admin(sim_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(sim_url + path, method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def utilisation(times: list[float], w: Window, t0: float, t1: float) -> float:
    """Mean of (requests in the trailing window) / limit, sampled every 0.1 s once full."""
    ts = sorted(times)
    samples, t = [], t0 + w.seconds
    lo = hi = 0
    while t <= t1:
        while hi < len(ts) and ts[hi] <= t:
            hi += 1
        while lo < hi and ts[lo] <= t - w.seconds:
            lo += 1
        samples.append((hi - lo) / w.limit)
        t += 0.1
    return sum(samples) / len(samples) if samples else 0.0


def jobs(n: int) -> list[dict[str, str]]:
    return [{"id": f"b{i}", "to": f"+1415{5550000 + i:07d}"} for i in range(n)]


def run_dispatcher(env: dict[str, str], tmp: Path, limits: list[str], n: int, procs: int,
                   redis_url: str, sim_url: str) -> list[subprocess.Popen[bytes]]:
    quoted = ", ".join(f'"{x}"' for x in limits)
    cfg = tmp / "dispatcher.toml"
    cfg.write_text(f"""log_format = "json"
log_level = "warning"
[redis]
url = "{redis_url}"
namespace = "bench"
[worker]
concurrency = 20
http_port = 0
[policy]
calling_hours = ["always"]
[tracking]
track_calls = false
[providers.default]
kind = "telecho"
base_url = "{sim_url}/api/v1/public"
api_key_env = "BENCH_KEY"
phone_number_id = "tel_pn_main"
limits = [{quoted}]
send_margin_s = 0.05
""")
    r = redis.Redis.from_url(redis_url)
    pipe = r.pipeline()
    for j in jobs(n):
        pipe.xadd("{bench}:jobs", {"job": json.dumps(j)})
    pipe.execute()
    return [spawn([sys.executable, "-m", "dispatcher", "run", "--config", str(cfg)], env, tmp,
                  f"dispatcher-{i}") for i in range(procs)]


def run_bullmq(env: dict[str, str], tmp: Path, limits: list[str], n: int, procs: int,
               redis_url: str, sim_url: str) -> list[subprocess.Popen[bytes]]:
    from bullmq import Queue
    # one window only: the longest, as a fixed window of max jobs per duration
    w = max(parse_limit(x) for x in limits)

    async def fill() -> None:
        q = Queue("calls", {"connection": redis_url})
        await q.setGlobalRateLimit(w.limit, w.ms)
        for j in jobs(n):
            await q.add("call", j, {"removeOnComplete": True})
        await q.close()

    asyncio.run(fill())
    return [spawn([sys.executable, str(HERE / "peers" / "bullmq_worker.py")], env, tmp,
                  f"bullmq-{i}") for i in range(procs)]


def run_dramatiq(env: dict[str, str], tmp: Path, limits: list[str], n: int, procs: int,
                 redis_url: str, sim_url: str) -> list[subprocess.Popen[bytes]]:
    env["BENCH_WINDOWS"] = json.dumps([[w.limit, int(w.seconds)] for w in
                                       (parse_limit(x) for x in limits)])
    os.environ.update(env)
    sys.path.insert(0, str(HERE))
    from peers import dramatiq_actors
    for j in jobs(n):
        dramatiq_actors.call.send(j)
    return [spawn([sys.executable, "-m", "dramatiq", "peers.dramatiq_actors", "--processes", "1",
                   "--threads", "8"], {**env, "PYTHONPATH": str(HERE)}, tmp, f"dramatiq-{i}")
            for i in range(procs)]


def spawn(cmd: list[str], env: dict[str, str], tmp: Path, name: str
          ) -> subprocess.Popen[bytes]:
    log = (tmp / f"{name}.log").open("wb")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


SYSTEMS = {"dispatcher": run_dispatcher, "bullmq": run_bullmq, "dramatiq": run_dramatiq}


def measure(name: str, limits: list[str], seconds: float, n: int, procs: int,
            redis_url: str, sim_url: str, tmp: Path) -> dict[str, Any]:
    redis.Redis.from_url(redis_url).flushall()
    admin(sim_url, "/_sim/reset", {})
    env = {**os.environ, "BENCH_KEY": KEY, "BENCH_REDIS": redis_url, "BENCH_SIM_URL": sim_url}
    workers = SYSTEMS[name](env, tmp, limits, n, procs, redis_url, sim_url)
    start = time.time()
    time.sleep(seconds)
    for p in workers:
        os.killpg(p.pid, signal.SIGKILL)
    for p in workers:
        p.wait()
    audit = [e for e in admin(sim_url, "/_sim/audit")["entries"] if e["t"] >= start - 5]
    times = [e["t"] for e in audit]
    t0 = min(times) if times else start
    t1 = t0 + seconds - 2
    windows = sorted(parse_limit(x) for x in limits)
    out: dict[str, Any] = {"system": name, "requests": len(times),
                           "answered_429": sum(1 for e in audit if e["status"] == 429),
                           "windows": {}}
    for w in windows:
        worst = max_in_any_window(times, w.seconds)
        over = _windows_over(times, w)
        out["windows"][w.label()] = {
            "max_in_any_window": worst, "limit": w.limit, "over_limit_moments": over,
            "utilisation": round(utilisation(times, w, t0, t1), 4)}
    out["binding_utilisation"] = max(v["utilisation"] for v in out["windows"].values())
    return out


def _windows_over(times: list[float], w: Window) -> int:
    """How many requests arrived while their trailing window already held the limit."""
    ts = sorted(times)
    lo = over = 0
    for hi, t in enumerate(ts):
        while ts[lo] <= t - w.seconds:
            lo += 1
        if hi - lo + 1 > w.limit:
            over += 1
    return over


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--limits", default="100/5s,300/30s")
    ap.add_argument("--systems", default="dispatcher,bullmq,dramatiq")
    ap.add_argument("--out", default=str(HERE / "results" / "pacing.json"))
    args = ap.parse_args()
    limits = args.limits.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="bench-pacing-"))
    rs = start_redis(workdir=str(tmp))
    port = free_port()
    (tmp / "sim.toml").write_text(sim_toml(limits))
    sim = subprocess.Popen([sys.executable, "-m", "dispatcher", "simulate", "--port", str(port),
                            "--config", str(tmp / "sim.toml")], stdout=subprocess.DEVNULL)
    sim_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                admin(sim_url, "/_sim/audit")
                break
            except OSError:
                time.sleep(0.1)
        results = []
        for name in args.systems.split(","):
            res = measure(name, limits, args.seconds, args.jobs, args.processes, rs.url,
                          sim_url, tmp)
            results.append(res)
            print(json.dumps(res), flush=True)
    finally:
        sim.terminate()
        rs.stop()
    report = {"limits": limits, "seconds": args.seconds, "jobs": args.jobs,
              "processes": args.processes, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'system':<12}{'requests':>9}{'429s':>7}  " + "  ".join(
        f"{w:>28}" for w in results[0]["windows"]))
    for r in results:
        cells = "  ".join(f"max {v['max_in_any_window']:>4}/{v['limit']:<4} "
                          f"over {v['over_limit_moments']:>4} use {v['utilisation']:>6.1%}"
                          for v in r["windows"].values())
        print(f"{r['system']:<12}{r['requests']:>9}{r['answered_429']:>7}  {cells}")


if __name__ == "__main__":
    main()
