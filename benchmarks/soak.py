"""Soak: jobs through several worker processes while things go wrong, then an audit.

Jobs are spread over ``--sims`` providers, each a simulator in its own process (the
simulator looks calls up by scanning all of them, so one process with 100,000 calls would
be the bottleneck). The simulators answer some creates with 5xx, cut some connections after
creating the call, and answer some with 429. Every Redis server is reached through a loopback
proxy that holds ``--delay-share`` of the replies granting dials for 0.5-3 s (``--delay-s``).
Meanwhile a worker is killed with SIGKILL every ``--kill-every`` seconds (and started again)
and, by default, the workers find Redis through a Sentinel (a master and one replica,
``redis.wait_replicas = 1``) whose master is killed at ``--failover-at`` seconds; the killed
server comes back from its AOF as the new master's replica. ``--failover-at -1`` runs one
plain Redis instead, which can be stopped (SIGSTOP) for ``--pause-s`` seconds at each
``--pause-at`` and killed and restarted from its AOF at ``--restart-at``. Once every job has a
result (or nothing moves for ``--stall-s``) it checks against the simulators' ground truth
(``/_sim/calls``): one result per job, no job with two calls, and Redis memory per finished
job; a job that breaks either gets its calls, timeline and log lines in the report.

    python benchmarks/soak.py          # 3,000 jobs, ~3 min → results/soak_failover.json
    python benchmarks/soak.py --jobs 100000 --failover-at -1 --delay-share 0 --sims 10 \
        --rate 300 --concurrency 50 --pause-at 120,600 --restart-at 360 \
        --out benchmarks/results/soak.json
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
from collections import Counter
from pathlib import Path
from typing import Any

import redis

if not __package__:  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common
from benchmarks.soak_faults import GrantDelays, ProxiedSentinel, ProxyLoop
from dispatcher.dev.localredis import LocalRedis, free_port, start_redis

NS = "soak"
FAULTS = {"http_500": 0.005, "http_503": 0.005, "reset_after_create": 0.005,
          "rate_limit": 0.0005}


def sim_toml(rate: int, seed: int) -> str:
    return common.sim_toml([f"{rate * 2}/second"], seed=seed,
                           calls={"ring_s": [0.2, 0.5], "talk_s": [0.3, 1.0]},
                           faults={"retry_after_s": 1.0, "probability": FAULTS})


def worker_toml(redis_url: str, sim_urls: list[str], rate: int, concurrency: int,
                redis_table: dict[str, Any] | None = None) -> str:
    per = max(1, rate // len(sim_urls))
    providers = {f"p{i}": common.provider(common.sim_api(u), [f"{per}/second"],
                                          api_key_env="SOAK_KEY", request_timeout_s=5.0)
                 for i, u in enumerate(sim_urls)}
    return common.worker_toml(
        redis_url, NS, providers, concurrency=concurrency,
        worker={"heartbeat_s": 1.0, "dead_after_s": 5.0},
        tracking={"poll_schedule_s": [1.0, 2.0]},
        retry={"max_attempts": 20, "base_delay_s": 0.5, "max_delay_s": 5.0},
        redis=redis_table)


def admin(sim_url: str, path: str) -> Any:
    return common.admin(sim_url, path, timeout=120)


class Soak:
    def __init__(self, args: argparse.Namespace, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.events: list[dict[str, Any]] = []
        self.proxies = ProxyLoop()
        low, high = args.delay_s
        self.delays = GrantDelays(args.delay_share, low, high, args.seed)
        self.rs: LocalRedis | None = None
        self.group: ProxiedSentinel | None = None
        table: dict[str, Any]
        if args.failover_at >= 0:
            self.group = ProxiedSentinel.start(self.proxies, self.delays, args.down_after_ms)
            self.r = self.group.client()
            table = {**self.group.redis_table(), "wait_replicas": args.wait_replicas}
        else:
            (tmp / "redis").mkdir()
            self.rs = start_redis(workdir=str(tmp / "redis"), appendonly=True)
            self.r = redis.Redis.from_url(self.rs.url, decode_responses=True, socket_timeout=2)
            table = {"url": self.proxies.proxy(self.rs.port, self.delays).url,
                     "wait_replicas": args.wait_replicas}
        self.failover: dict[str, Any] = {}
        per = max(1, args.rate // args.sims)
        (tmp / "sim.toml").write_text(sim_toml(per, args.seed))
        self.sim_urls: list[str] = []
        self.sims: list[subprocess.Popen[bytes]] = []
        for _ in range(args.sims):  # one account per process: its look-ups scan its calls
            sim, url = common.start_sim(tmp / "sim.toml", free_port(), quiet=True)
            self.sims.append(sim)
            self.sim_urls.append(url)
        (tmp / "dispatcher.toml").write_text(
            worker_toml(table.pop("url"), self.sim_urls, args.rate, args.concurrency, table))
        self.env = {**os.environ, "SOAK_KEY": common.KEY,
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
        return common.spawn(common.run_cmd(), self.env,
                            self.tmp / f"worker-{self.started}.log", new_session=False)

    def wait_sim(self) -> None:
        for url in self.sim_urls:
            common.wait_sim(url)

    def push(self) -> None:
        n = self.args.jobs
        common.push_jobs(self.r, f"{{{NS}}}:jobs", (
            {"id": f"s{i}", "to": f"+1415555{i % 10_000:04d}", "provider": f"p{i % self.args.sims}",
             "metadata": {"n": i}} for i in range(n)), chunk=5000, transaction=False)
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
        common.kill([victim])
        self.workers[i] = self.spawn()
        self.log("worker_killed", pid=victim.pid, restarted_as=self.workers[i].pid)

    def pause_redis(self) -> None:
        assert self.rs is not None
        self.log("redis_stopped", seconds=self.args.pause_s)
        self.rs.proc.send_signal(signal.SIGSTOP)
        time.sleep(self.args.pause_s)
        self.rs.proc.send_signal(signal.SIGCONT)
        self.log("redis_continued")

    def restart_redis(self) -> None:
        assert self.rs is not None
        self.rs.kill()
        self.log("redis_killed")
        self.rs.restart()
        self.log("redis_restarted_from_aof")

    def fail_over(self) -> None:
        """Kills the Sentinel set's master; the main loop then times the first new result."""
        assert self.group is not None
        self.failover = {"results_before": self.results(), "last": newest_result(self.r),
                         "killed_at": time.monotonic()}
        self.log("master_killed", results=self.failover["results_before"])
        promoted = self.group.fail_over()
        self.failover["replica_promoted_s"] = round(promoted, 2)
        self.log("replica_promoted", after_s=round(promoted, 2))
        self.log("old_master_restarted_from_aof")
        self.failover["restarted_s"] = round(time.monotonic() - self.failover["killed_at"], 2)

    def watch_failover(self) -> None:
        """Once results come from the new master, and once the old one replicates from it."""
        f, g = self.failover, self.group
        if not f or g is None:
            return
        since = round(time.monotonic() - f["killed_at"], 2)
        if "results_again_s" not in f and newer(newest_result(self.r), f["last"]):
            f["results_again_s"] = since
            self.log("results_again", after_s=since)
        if "replica_linked_s" in f or "failed_back_s" in f:
            return
        if g.killed_is_master_again():
            f["failed_back_s"] = since
            self.log("failed_back_to_the_killed_server", after_s=since)
            return
        for c in g.stale_clients():
            f.setdefault("stale_master_clients", {}).setdefault(c["id"], {**c, "seen_s": since})
        if g.replica_linked():
            f["replica_linked_s"] = since
            self.log("replica_linked", after_s=since,
                     stale_master_clients=len(f.get("stale_master_clients", {})))

    def run(self) -> None:
        self.wait_sim()
        self.mem_before = int(self.r.info("memory")["used_memory"])
        self.push()
        self.workers = [self.spawn() for _ in range(self.args.workers)]
        pauses = sorted(self.args.pause_at)
        restart = self.args.restart_at
        failover = self.args.failover_at if self.group is not None else None
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
            if failover is not None and now >= failover:
                failover = None
                self.fail_over()
            self.watch_failover()
        time.sleep(self.args.settle_s)  # anything still in flight would show up now

    def stop(self) -> None:
        common.stop(self.workers, 30)
        common.stop(self.sims, 10)
        for x in (self.rs, self.group):
            if x is not None:
                x.stop()
        self.proxies.stop()


def newest_result(r: redis.Redis) -> str:
    """The id of the newest results entry ("0-0" while there is none or no master)."""
    try:
        last: Any = r.xrevrange(f"{{{NS}}}:results", count=1)
    except redis.RedisError:
        return "0-0"
    return str(last[0][0]) if last else "0-0"


def newer(a: str, b: str) -> bool:
    return tuple(map(int, a.split("-"))) > tuple(map(int, b.split("-")))


def audit(s: Soak) -> dict[str, Any]:
    """Results, calls and memory, checked against the simulator's ground truth."""
    per_job: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    attempts: Counter[int] = Counter()
    for _, fields in results_stream(s.r):
        res = json.loads(fields["result"])
        per_job[res["job_id"]] += 1
        outcomes[res["outcome"]] += 1
        attempts[res["attempts"]] += 1
    ids = [f"s{i}" for i in range(s.args.jobs)]
    missing = [j for j in ids if j not in per_job]
    twice = [j for j, c in per_job.items() if c > 1]
    truth: dict[str, list[dict[str, Any]]] = {}
    for url in s.sim_urls:
        for c in admin(url, "/_sim/calls")["calls"]:
            if c.get("correlation"):
                truth.setdefault(c["correlation"].split("~")[0], []).append(c)
    dialled_twice = [j for j, c in truth.items() if len(c) > 1]
    mem = s.r.info("memory")
    finished = len(per_job)
    return {
        "jobs": s.args.jobs, "results": sum(per_job.values()), "jobs_with_a_result": finished,
        "missing": missing[:50], "missing_count": len(missing),
        "results_twice": twice[:50], "results_twice_count": len(twice),
        "calls": sum(len(c) for c in truth.values()), "dialled_twice": dialled_twice[:50],
        "dialled_twice_count": len(dialled_twice),
        "evidence": {j: evidence(s, j, truth.get(j, []))
                     for j in [*dialled_twice, *missing, *twice][:10]},
        "outcomes": dict(outcomes), "attempts": {str(k): v for k, v in sorted(attempts.items())},
        "redis_used_memory_after_drain": int(mem["used_memory"]),
        "redis_memory_per_finished_job_bytes": round(
            (int(mem["used_memory"]) - s.mem_before) / max(1, finished)),
        "redis_keys_after_drain": int(s.r.dbsize()),
        "worker_errors": worker_errors(s.tmp)}


def results_stream(r: redis.Redis, page: int = 1000) -> Any:
    """Every results entry, a page at a time (one reply of them all is slow through a proxy)."""
    start = "-"
    while batch := r.xrange(f"{{{NS}}}:results", min=start, count=page):
        yield from batch
        start = "(" + batch[-1][0]


def evidence(s: Soak, job_id: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """What a job that broke a check left: the simulator's calls, its hash and timeline, its
    results, the grant replies held back that named it, and the workers' log lines."""
    lines = [f"{log.name}: {line}" for log in sorted(s.tmp.glob("worker-*.log"))
             for line in log.read_text(errors="replace").splitlines()
             if f'"{job_id}"' in line]
    return {"calls": calls, "job": s.r.hgetall(f"{{{NS}}}:job:{job_id}"),
            "timeline": s.r.lrange(f"{{{NS}}}:tl:{job_id}", 0, -1),
            "results": [f for _, f in results_stream(s.r)
                        if json.loads(f["result"])["job_id"] == job_id],
            "held_replies": [h for h in s.delays.held if job_id in h["jobs"]],
            "log": lines[:200]}


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
    floats = lambda x: [float(v) for v in x.split(",") if v]  # noqa: E731
    ap.add_argument("--jobs", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--rate", type=int, default=60,
                    help="provider requests per second, over all simulators")
    ap.add_argument("--sims", type=int, default=2,
                    help="simulator processes (one provider each; jobs spread evenly)")
    ap.add_argument("--kill-every", type=float, default=30.0)
    ap.add_argument("--delay-share", type=float, default=0.1,
                    help="share of the replies granting dials that the proxy holds back")
    ap.add_argument("--delay-s", type=floats, default=[0.5, 3.0], help="low,high seconds")
    ap.add_argument("--failover-at", type=float, default=20.0,
                    help="kill the Sentinel set's master then; -1: one plain Redis instead")
    ap.add_argument("--wait-replicas", type=int, default=1, help="redis.wait_replicas")
    ap.add_argument("--down-after-ms", type=int, default=3000,
                    help="the Sentinel's down-after-milliseconds")
    ap.add_argument("--pause-at", type=floats, default=[], help="plain Redis only")
    ap.add_argument("--pause-s", type=float, default=5.0)
    ap.add_argument("--restart-at", type=float, default=None, help="plain Redis only")
    ap.add_argument("--stall-s", type=float, default=120.0)
    ap.add_argument("--settle-s", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(common.RESULTS / "soak_failover.json"))
    args = ap.parse_args()
    if args.failover_at >= 0 and (args.pause_at or args.restart_at is not None):
        ap.error("--pause-at / --restart-at stop the one plain Redis: add --failover-at -1")
    if args.failover_at < 0 and args.wait_replicas:
        args.wait_replicas = 0  # a plain Redis has no replica to wait for
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    load = os.getloadavg()
    s = Soak(args, tmp)
    try:
        s.run()
        report = {"config": {k: v for k, v in vars(args).items() if k != "out"},
                  "faults": FAULTS, "seconds": round(time.monotonic() - s.t0, 1),
                  "load_average_before_after": [list(load), list(os.getloadavg())],
                  "delays": s.delays.summary(),
                  "failover": {k: v for k, v in s.failover.items() if k != "killed_at"},
                  "sentinel_switches": s.group.switches() if s.group else [],
                  "killed_front_connections": [
                      [round(a - s.failover["killed_at"], 3), round(b - a, 3), ok]
                      for a, b, ok in s.proxies.proxies[0].connections
                      if s.failover and a > s.failover["killed_at"] - 1],
                  **audit(s), "events": [e for e in s.events if e["event"] != "progress"],
                  "held_replies": s.delays.held, "logs": str(tmp)}
    finally:
        s.stop()
    common.write_json(args.out, report)
    print(json.dumps({k: v for k, v in report.items()
                      if k not in ("events", "held_replies", "evidence")}, indent=2))


if __name__ == "__main__":
    main()
