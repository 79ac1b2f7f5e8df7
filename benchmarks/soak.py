"""Soak: many jobs through several worker processes while things go wrong, then an audit.

Jobs are spread over ``--sims`` providers, each a simulator in its own process (the
simulator looks calls up by scanning all of them, so one process with 100,000 calls would
be the bottleneck). The simulators answer some creates with 5xx, cuts some connections after
creating the call, and answers some with 429. Meanwhile a worker is killed with SIGKILL every
``--kill-every`` seconds (and started again), Redis is stopped (SIGSTOP) for ``--pause-s``
seconds at each ``--pause-at`` and killed and restarted (AOF, appendfsync always) at
``--restart-at``. Once every job has a result (or nothing moves for ``--stall-s``) it checks
against the simulator's ground truth: one result per job, no job with two calls, and Redis
memory per finished job.

    python benchmarks/soak.py --jobs 100000          # writes benchmarks/results/soak.json
    python benchmarks/soak.py --jobs 3000 --pause-at 20,60 --restart-at 40 --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from dispatcher.localredis import LocalRedis, free_port, start_redis

HERE = Path(__file__).resolve().parent
KEY = "tel_live_demo_key_0001"
NS = "soak"
FAULTS = {"http_500": 0.005, "http_503": 0.005, "reset_after_create": 0.005,
          "rate_limit": 0.0005}


def sim_toml(rate: int, seed: int) -> str:
    faults = "\n".join(f"{k} = {v}" for k, v in FAULTS.items())
    return (f'seed = {seed}\n[keys.{KEY}]\ndialect = "telecho"\nlimits = ["{rate * 2}/second"]\n'
            "[accounts.acme]\nmax_concurrent_calls = 1000000\n"
            "[calls]\nring_s = [0.2, 0.5]\ntalk_s = [0.3, 1.0]\n"
            f"[faults]\nretry_after_s = 1.0\n[faults.probability]\n{faults}\n")


def provider_toml(name: str, sim_url: str, rate: int) -> str:
    return f"""[providers.{name}]
kind = "telecho"
base_url = "{sim_url}/api/v1/public"
api_key_env = "SOAK_KEY"
phone_number_id = "tel_pn_main"
limits = ["{rate}/second"]
request_timeout_s = 5.0
"""


def worker_toml(redis_url: str, sim_urls: list[str], rate: int, concurrency: int) -> str:
    per = max(1, rate // len(sim_urls))
    providers = "".join(provider_toml(f"p{i}", u, per) for i, u in enumerate(sim_urls))
    return f"""log_format = "json"
log_level = "warning"
[redis]
url = "{redis_url}"
namespace = "{NS}"
[worker]
concurrency = {concurrency}
http_port = 0
heartbeat_s = 1.0
dead_after_s = 5.0
[policy]
calling_hours = ["always"]
[tracking]
poll_schedule_s = [1.0, 2.0]
[retry]
max_attempts = 20
base_delay_s = 0.5
max_delay_s = 5.0
{providers}"""


def admin(sim_url: str, path: str) -> Any:
    with urllib.request.urlopen(sim_url + path, timeout=120) as r:
        return json.loads(r.read())


class Soak:
    def __init__(self, args: argparse.Namespace, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.events: list[dict[str, Any]] = []
        (tmp / "redis").mkdir()
        self.rs: LocalRedis = start_redis(workdir=str(tmp / "redis"), appendonly=True)
        self.r = redis.Redis.from_url(self.rs.url, decode_responses=True, socket_timeout=2)
        per = max(1, args.rate // args.sims)
        (tmp / "sim.toml").write_text(sim_toml(per, args.seed))
        self.sim_urls: list[str] = []
        self.sims: list[subprocess.Popen[bytes]] = []
        for _ in range(args.sims):  # one account per process: its look-ups scan its calls
            port = free_port()
            self.sim_urls.append(f"http://127.0.0.1:{port}")
            self.sims.append(subprocess.Popen(
                [sys.executable, "-m", "dispatcher", "simulate", "--port", str(port),
                 "--config", str(tmp / "sim.toml")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        (tmp / "dispatcher.toml").write_text(
            worker_toml(self.rs.url, self.sim_urls, args.rate, args.concurrency))
        self.env = {**os.environ, "SOAK_KEY": KEY,
                    "DISPATCHER_CONFIG": str(tmp / "dispatcher.toml")}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.started = 0
        self.t0 = time.monotonic()

    def log(self, what: str, **extra: Any) -> None:
        e = {"t": round(time.monotonic() - self.t0, 1), "event": what, **extra}
        self.events.append(e)
        print(json.dumps(e), flush=True)

    def spawn(self) -> subprocess.Popen[bytes]:
        self.started += 1
        out = (self.tmp / f"worker-{self.started}.log").open("wb")
        return subprocess.Popen([sys.executable, "-m", "dispatcher", "run"], env=self.env,
                                stdout=out, stderr=subprocess.STDOUT)

    def wait_sim(self) -> None:
        for url in self.sim_urls:
            for _ in range(200):
                try:
                    admin(url, "/_sim/audit?since=1e12")
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                raise RuntimeError("simulator did not start")

    def push(self) -> None:
        n = self.args.jobs
        for lo in range(0, n, 5000):
            pipe = self.r.pipeline(transaction=False)
            for i in range(lo, min(n, lo + 5000)):
                job = {"id": f"s{i}", "to": f"+1415555{i % 10_000:04d}",
                       "provider": f"p{i % self.args.sims}", "metadata": {"n": i}}
                pipe.xadd(f"{{{NS}}}:jobs", {"job": json.dumps(job)})
            pipe.execute()
        self.log("pushed", jobs=n)

    def results(self) -> int | None:
        try:
            return int(self.r.xlen(f"{{{NS}}}:results"))
        except redis.RedisError:
            return None  # stopped or restarting

    # -- what goes wrong ---------------------------------------------------------------------
    def kill_one(self) -> None:
        i = (self.started - 1) % len(self.workers)
        victim = self.workers[i]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.workers[i] = self.spawn()
        self.log("worker_killed", pid=victim.pid, restarted_as=self.workers[i].pid)

    def pause_redis(self) -> None:
        self.log("redis_stopped", seconds=self.args.pause_s)
        self.rs.proc.send_signal(signal.SIGSTOP)
        time.sleep(self.args.pause_s)
        self.rs.proc.send_signal(signal.SIGCONT)
        self.log("redis_continued")

    def restart_redis(self) -> None:
        self.rs.kill()
        self.log("redis_killed")
        self.rs.restart()
        self.log("redis_restarted_from_aof")

    def run(self) -> None:
        self.wait_sim()
        self.mem_before = int(self.r.info("memory")["used_memory"])
        self.push()
        self.workers = [self.spawn() for _ in range(self.args.workers)]
        pauses = sorted(self.args.pause_at)
        restart = self.args.restart_at
        next_kill = self.args.kill_every
        last_n, last_move = -1, time.monotonic()
        while True:
            time.sleep(1.0)
            now = time.monotonic() - self.t0
            n = self.results()
            if n is not None and n != last_n:
                last_n, last_move = n, time.monotonic()
                if int(now) % 30 == 0:
                    self.log("progress", results=n)
            if n is not None and n >= self.args.jobs:
                self.log("drained", results=n)
                break
            if time.monotonic() - last_move > self.args.stall_s:
                self.log("stalled", results=last_n)
                break
            if now >= next_kill:
                self.kill_one()
                next_kill += self.args.kill_every
            if pauses and now >= pauses[0]:
                pauses.pop(0)
                self.pause_redis()
            if restart is not None and now >= restart:
                restart = None
                self.restart_redis()
        time.sleep(self.args.settle_s)  # anything still in flight would show up now

    def stop(self) -> None:
        for w in self.workers:
            w.terminate()
        for w in self.workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        for sim in self.sims:
            sim.terminate()
        self.rs.stop()


def audit(s: Soak) -> dict[str, Any]:
    """Results, calls and memory, checked against the simulator's ground truth."""
    per_job: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    attempts: Counter[int] = Counter()
    for _, fields in s.r.xrange(f"{{{NS}}}:results"):
        res = json.loads(fields["result"])
        per_job[res["job_id"]] += 1
        outcomes[res["outcome"]] += 1
        attempts[res["attempts"]] += 1
    ids = [f"s{i}" for i in range(s.args.jobs)]
    missing = [j for j in ids if j not in per_job]
    twice = [j for j, c in per_job.items() if c > 1]
    calls: Counter[str] = Counter(c["correlation"].split("~")[0] for url in s.sim_urls
                                  for c in admin(url, "/_sim/calls")["calls"]
                                  if c.get("correlation"))
    dialled_twice = [j for j, c in calls.items() if c > 1]
    mem = s.r.info("memory")
    finished = len(per_job)
    return {
        "jobs": s.args.jobs, "results": sum(per_job.values()), "jobs_with_a_result": finished,
        "missing": missing[:50], "missing_count": len(missing),
        "results_twice": twice[:50], "results_twice_count": len(twice),
        "calls": sum(calls.values()), "dialled_twice": dialled_twice[:50],
        "dialled_twice_count": len(dialled_twice),
        "missing_states": {j: s.r.hgetall(f"{{{NS}}}:job:{j}") for j in missing[:10]},
        "outcomes": dict(outcomes), "attempts": {str(k): v for k, v in sorted(attempts.items())},
        "redis_used_memory_after_drain": int(mem["used_memory"]),
        "redis_memory_per_finished_job_bytes": round(
            (int(mem["used_memory"]) - s.mem_before) / max(1, finished)),
        "redis_keys_after_drain": int(s.r.dbsize()),
        "worker_errors": worker_errors(s.tmp)}


def worker_errors(tmp: Path) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for log in tmp.glob("worker-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict) and e.get("level") == "error":
                counts[str(e.get("event"))] += 1
    return dict(counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--rate", type=int, default=300,
                    help="provider requests per second, over all simulators")
    ap.add_argument("--sims", type=int, default=10,
                    help="simulator processes (one provider each; jobs spread evenly)")
    ap.add_argument("--kill-every", type=float, default=30.0)
    ap.add_argument("--pause-at", type=lambda x: [float(v) for v in x.split(",")],
                    default=[120.0, 600.0])
    ap.add_argument("--pause-s", type=float, default=5.0)
    ap.add_argument("--restart-at", type=float, default=360.0)
    ap.add_argument("--stall-s", type=float, default=180.0)
    ap.add_argument("--settle-s", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(HERE / "results" / "soak.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    s = Soak(args, tmp)
    try:
        s.run()
        report = {"config": {k: v for k, v in vars(args).items() if k != "out"},
                  "faults": FAULTS, "seconds": round(time.monotonic() - s.t0, 1),
                  **audit(s), "events": [e for e in s.events if e["event"] != "progress"],
                  "logs": str(tmp)}
    finally:
        s.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("events",)}, indent=2))


if __name__ == "__main__":
    main()
