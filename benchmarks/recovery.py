"""Recovery after a worker is killed: how long its jobs wait; none lost, none dialled twice.

Two `dispatcher run` processes (concurrency 20) share one provider limited to 3 requests/s with
a backlog of 200 jobs, so the survivor never has free room. The simulator takes 1.5 s to answer
every create, so some jobs are always mid-dial; calls are tracked (polled). One worker is
killed with SIGKILL while it holds at least one job mid-dial. For every orphan (its mid-dial
jobs, and its read-but-not-ingested stream entries if any) the timeline in Redis says when it
moved again: kill -> taken over (the survivor saw the worker dead), kill -> reconciled (the
survivor looked the call up, once the request could no longer be on its way: dial time +
request_timeout_s + 1 s), kill -> result. After the backlog drains: every job has exactly one
result and no number was called twice (the simulator's ground truth).

The peers (BullMQ-Python, Dramatiq's Redis broker) are measured by recovery_peers.py.

    python -m benchmarks.recovery --trials 5        # -> benchmarks/results/recovery.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from benchmarks import common
from dispatcher.core.timing import SETTLE_EXTRA_S
from dispatcher.dev.localredis import start_redis

NS = "rec"
P = "{" + NS + "}:"
REQUEST_TIMEOUT_S = 2.0
CREATE_S = 1.5
LIMIT = "3/second"
LEASE_WAIT_S = 25.0


def sim_toml(limit: str = LIMIT, create_s: float = CREATE_S,
             call_s: tuple[float, float] = (0.5, 1.0)) -> str:
    """Every create answers after ``create_s`` (the call is created all the same)."""
    return common.sim_toml([limit], max_concurrent_calls=100000,
                           calls={"ring_s": list(call_s), "talk_s": list(call_s)},
                           faults={"probability": {"slow": 1.0}, "slow_s": create_s})


def worker_toml(redis_url: str, sim_url: str, limit: str = LIMIT,
                request_timeout_s: float = REQUEST_TIMEOUT_S,
                tracking: dict[str, Any] | None = None) -> str:
    default = common.provider(common.sim_api(sim_url), [limit],
                              request_timeout_s=request_timeout_s)
    return common.worker_toml(redis_url, NS, {"default": default},
                              tracking={"poll_schedule_s": [3.0]} if tracking is None
                              else tracking or None)


def consumer_of(r: redis.Redis, pid: int) -> str | None:
    """Worker consumer names are host-pid-xxxx."""
    for c in r.zrange(P + "consumers", 0, -1):
        if c.rsplit("-", 2)[-2] == str(pid):
            return str(c)
    return None


def mid_dial(r: redis.Redis, consumer: str) -> dict[str, int]:
    """The jobs this consumer is dialling right now -> their dial time (ms)."""
    ids = list(r.smembers(P + "held:" + consumer))
    pipe = r.pipeline()
    for i in ids:
        pipe.hmget(P + "job:" + i, "state", "dialer", "dial_ms")
    out = {}
    for i, (state, dialer, dial_ms) in zip(ids, pipe.execute(), strict=True):
        if state == "dialing" and dialer == consumer:
            out[i] = int(dial_ms or 0)
    return out


def unread_entries(r: redis.Redis, consumer: str) -> dict[str, str]:
    """Stream entries the consumer read but did not ingest -> their job id."""
    try:
        pending = r.xpending_range(P + "jobs", "workers", "-", "+", 1000, consumer)
    except redis.ResponseError:
        return {}
    out = {}
    for p in pending:
        ent = r.xrange(P + "jobs", p["message_id"], p["message_id"])
        if ent:
            out[str(p["message_id"])] = json.loads(ent[0][1]["job"])["id"]
    return out


def timeline(r: redis.Redis, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    pipe = r.pipeline()
    for i in ids:
        pipe.lrange(P + "tl:" + i, 0, -1)
    return {i: [json.loads(x) for x in evs] for i, evs in zip(ids, pipe.execute(), strict=True)}


def orphan_figures(events: list[dict[str, Any]], kill_ms: float) -> dict[str, Any]:
    """Seconds from the kill to the orphan's next events: taken over, next step, result."""
    after = [e for e in events if e["t"] >= kill_ms]
    def first(pred: Any) -> float | None:
        e = next((e for e in after if pred(e)), None)
        return round((e["t"] - kill_ms) / 1000, 3) if e else None
    return {"first_event_s": first(lambda e: True),
            "taken_over_s": first(lambda e: e["e"] == "taken_over"),
            "next_step_s": first(lambda e: e["e"] not in ("taken_over", "waiting")),
            "dialled_s": first(lambda e: e["e"] == "dialled"),
            "result_s": first(lambda e: e["e"] == "result"),
            "events": [{"e": e["e"], "s": round((e["t"] - kill_ms) / 1000, 3),
                        **{k: v for k, v in e.items() if k in ("r", "from", "call_id")},
                        **({"u_s": round((e["u"] - kill_ms) / 1000, 3)} if e.get("u") else {})}
                       for e in after]}


@contextlib.contextmanager
def two_workers(tmp: Path, sim_config: str, worker_config: Callable[[str, str], str],
                n: int) -> Iterator[tuple[redis.Redis, str, list[subprocess.Popen[bytes]]]]:
    """A private Redis with ``n`` jobs, a simulator, and two `dispatcher run` processes
    (``worker_config(redis_url, sim_url)``); (redis, simulator URL, workers), all stopped
    at the end."""
    rs = start_redis(port=common.bench_port(), workdir=str(tmp))
    r = redis.Redis.from_url(rs.url, decode_responses=True)
    (tmp / "sim.toml").write_text(sim_config)
    sim, sim_url = common.start_sim(tmp / "sim.toml", common.bench_port())
    workers: list[subprocess.Popen[bytes]] = []
    try:
        common.wait_sim(sim_url)
        (tmp / "w.toml").write_text(worker_config(rs.url, sim_url))
        common.push_jobs(r, P + "jobs", common.jobs(n))
        env = {**os.environ, "BENCH_KEY": common.KEY}
        workers += [common.spawn(common.run_cmd(tmp / "w.toml"), env,
                                 tmp / f"worker-{i}.log") for i in range(2)]
        yield r, sim_url, workers
    finally:
        common.stop(workers, 15)
        common.stop([sim], 10)
        rs.stop()


def trial(n: int, tmp: Path, kill_after_s: float) -> dict[str, Any]:
    with two_workers(tmp, sim_toml(), worker_toml, n) as (r, sim_url, workers):
        victim = workers[0]
        time.sleep(kill_after_s)
        consumer = consumer_of(r, victim.pid)
        assert consumer, "the victim never heartbeated"
        # kill while it holds at least two jobs mid-dial (one if that takes over 10 s)
        deadline = time.time() + 10
        while len(mid_dial(r, consumer)) < (2 if time.time() < deadline else 1):
            if time.time() > deadline + 20:
                raise RuntimeError("the victim never held a job mid-dial")
            time.sleep(0.005)
        os.kill(victim.pid, signal.SIGKILL)
        kill = time.time()
        victim.wait()
        dialling = mid_dial(r, consumer)
        unread = unread_entries(r, consumer)
        leased = [i for i, s in r.zrange(P + "tracking:default", 0, -1, withscores=True)
                  if s > kill * 1000 + 5_000]
        ids = sorted(set(dialling) | set(unread.values()) | set(leased))
        drained = wait_drained(r, n, 900)
        tls = timeline(r, ids)
        truth = common.admin(sim_url, "/_sim/calls")["calls"]
        entries = r.xrange(P + "results", "-", "+")
        results = [json.loads(x["result"]) for _, x in entries]
        last = [json.loads(x["result"])["job_id"] for _, x in entries[-3:]]
        last_tl = timeline(r, last)
    per_job = Counter(x["job_id"] for x in results)
    per_number = Counter(c["to"] for c in truth)
    kill_ms = kill * 1000
    return {
        "jobs": n, "kill_at_s": kill_after_s, "drained_after_kill_s": drained,
        "results": len(results), "jobs_with_one_result": sum(1 for v in per_job.values()
                                                             if v == 1),
        "jobs_without_result": n - len(per_job),
        "jobs_with_several_results": sum(1 for v in per_job.values() if v > 1),
        "calls_created": len(truth),
        "numbers_called_twice": sum(1 for v in per_number.values() if v > 1),
        "mid_dial": {i: {"dial_age_at_kill_s": round((kill_ms - d) / 1000, 3),
                         "settle_due_s": round((d + (REQUEST_TIMEOUT_S + SETTLE_EXTRA_S) * 1000
                                                - kill_ms) / 1000, 3),
                         **orphan_figures(tls[i], kill_ms)} for i, d in dialling.items()},
        "unread_stream_entries": {e: {"job": j, **orphan_figures(tls[j], kill_ms)}
                                  for e, j in unread.items()},
        "last_results": {i: orphan_figures(last_tl[i], kill_ms)["events"] for i in last},
        "tracked_visit_leased_at_kill": {i: orphan_figures(tls[i], kill_ms)
                                         for i in leased if i not in dialling},
    }


def wait_drained(r: redis.Redis, n: int, timeout: float) -> float | None:
    """Seconds until every job has a result (counted from the kill)."""
    t0 = time.time()
    while time.time() < t0 + timeout:
        if r.xlen(P + "results") >= n:
            return round(time.time() - t0, 1)
        time.sleep(0.5)
    return None


def spread(xs: list[float | None]) -> dict[str, Any]:
    v = [x for x in xs if x is not None]
    if not v:
        return {"n": 0, "missing": len(xs)}
    return {"n": len(v), "min": min(v), "median": round(statistics.median(v), 3),
            "max": max(v), "missing": len(xs) - len(v)}


def summary(trials: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("mid_dial", "unread_stream_entries", "tracked_visit_leased_at_kill"):
        rows = [o for t in trials for o in t[kind].values()]
        out[kind] = {k: spread([o[k] for o in rows]) for k in
                     ("first_event_s", "taken_over_s", "next_step_s", "dialled_s", "result_s")}
        if kind == "mid_dial":
            out[kind]["settle_due_s"] = spread([o["settle_due_s"] for o in rows])
    # a live worker polls a leased call within seconds: one still waiting 25 s after the kill
    # was leased by the dead worker and waited for its visit lease (visit_lease_s, 30 s)
    waited = [o["result_s"] for t in trials
              for o in t["tracked_visit_leased_at_kill"].values()
              if o["result_s"] is not None and o["result_s"] >= LEASE_WAIT_S]
    out["tracked_waited_for_dead_lease"] = spread(waited)
    out["checks"] = {k: sum(t[k] for t in trials) for k in
                     ("jobs_without_result", "jobs_with_several_results",
                      "numbers_called_twice")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--scenarios", default="200:8,30:7", help=(
        "jobs:kill-after-s, comma-separated: a backlog that outlasts the recovery, and one "
        "that is gone by the time the orphans are due"))
    ap.add_argument("--peers", default="bullmq,dramatiq", help="'' to skip the peers")
    ap.add_argument("--out", default=str(common.RESULTS / "recovery.json"))
    ap.add_argument("--summarise", metavar="JSON", help="recompute the summaries of a report")
    args = ap.parse_args()
    if args.summarise:
        old = json.loads(Path(args.summarise).read_text())
        for sc in old["dispatcher"].values():
            sc["summary"] = summary(sc["trials"])
        common.write_json(args.summarise, old)
        return
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "limit": LIMIT,
        "create_s": CREATE_S, "request_timeout_s": REQUEST_TIMEOUT_S,
        "settle_s": REQUEST_TIMEOUT_S + SETTLE_EXTRA_S, "worker": {
            "processes": 2, "concurrency": 20, "heartbeat_s": 1.0, "dead_after_s": 3.0},
        "dispatcher": {}}
    for sc in args.scenarios.split(","):
        n, kill_after = int(sc.split(":")[0]), float(sc.split(":")[1])
        trials = []
        for k in range(args.trials):
            tmp = Path(tempfile.mkdtemp(prefix=f"bench-recovery-{n}-{k}-"))
            t = trial(n, tmp, kill_after)
            trials.append(t)
            print(json.dumps({x: t[x] for x in t if not isinstance(t[x], dict)}), flush=True)
            print(json.dumps({i: {k: v for k, v in o.items() if k != "events"}
                              for i, o in t["mid_dial"].items()}), flush=True)
        report["dispatcher"][f"{n}_jobs"] = {"summary": summary(trials), "trials": trials}
        common.write_json(args.out, report)
    if args.peers:
        from benchmarks.recovery_peers import measure_peers
        report["peers"] = measure_peers(args.peers.split(","))
    common.write_json(args.out, report)
    for name, sc in report["dispatcher"].items():
        print(name, json.dumps(sc["summary"]))
    if "peers" in report:
        print(json.dumps({k: v.get("summary") for k, v in report["peers"].items()}))

if __name__ == "__main__":
    main()
