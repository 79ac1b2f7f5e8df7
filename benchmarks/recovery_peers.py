"""Recovery of the peers with their defaults: how long a job held by a killed worker waits.

BullMQ-Python (3.4.4): an active job's lock lasts ``lockDuration`` (30 s) and a worker's
stalled-job check runs every ``stalledInterval`` (30 s); a job whose lock ran out is moved back
to wait at the next check. Dramatiq's Redis broker: a worker whose heartbeat is older than
``heartbeat_timeout`` (60 s) is dead, but its unacked messages are only requeued by a
maintenance pass, which runs on ``maintenance_chance`` (1,000) of a million broker commands.

Each trial: worker A (one job at a time) starts a job that runs for minutes; worker B starts;
A is killed with SIGKILL; the time until B starts the same job is measured (capped). The
workers record every job start in Redis (``starts``). For Dramatiq the survivor's broker
commands per second are counted too (INFO commandstats), to say when a maintenance pass is
due on average if none came within the cap.

    python -m benchmarks.recovery_peers --peers bullmq,dramatiq
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks import common
from dispatcher.dev.localredis import start_redis

JOB_S = 600.0  # a job outlives the trial: only its starts matter


def record_start(url: str, job: str) -> None:
    redis.Redis.from_url(url).rpush("starts", json.dumps(
        {"job": job, "pid": os.getpid(), "t": time.time()}))


def bullmq_worker(url: str) -> None:
    from bullmq import Worker

    async def main() -> None:
        async def process(job: Any, token: Any) -> None:
            record_start(url, job.data["id"])
            await asyncio.sleep(JOB_S)

        worker = Worker("rec", process, {"connection": url, "concurrency": 1})
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await worker.close(force=True)

    asyncio.run(main())


def dramatiq_setup(url: str) -> Any:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url)
    dramatiq.set_broker(broker)

    @dramatiq.actor(queue_name="rec", max_retries=0)
    def job(job_id: str) -> None:
        record_start(url, job_id)
        time.sleep(JOB_S)

    return broker, job


def dramatiq_worker(url: str) -> None:
    from dramatiq import Worker

    broker, _ = dramatiq_setup(url)
    w = Worker(broker, worker_threads=1)
    w.start()
    while True:  # stopped by a signal
        time.sleep(3600)


def enqueue(peer: str, url: str, job_id: str) -> None:
    if peer == "bullmq":
        from bullmq import Queue

        async def add() -> None:
            q = Queue("rec", {"connection": url})
            await q.add("job", {"id": job_id})
            await q.close()

        asyncio.run(add())
    else:
        _, job = dramatiq_setup(url)
        job.send(job_id)


def starts(r: redis.Redis, job: str) -> list[dict[str, Any]]:
    return [s for s in (json.loads(x) for x in r.lrange("starts", 0, -1)) if s["job"] == job]


def evalsha_calls(r: redis.Redis) -> int:
    stats = r.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha",
                                                                  "cmdstat_eval"))


def peer_trial(peer: str, cap_s: float, tmp: Path) -> dict[str, Any]:
    rs = start_redis(port=common.bench_port(), workdir=str(tmp))
    r = redis.Redis.from_url(rs.url)
    cmd = [sys.executable, "-m", "benchmarks.recovery_peers", "--worker", peer, "--redis",
           rs.url]
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(name: str) -> subprocess.Popen[bytes]:
        procs.append(common.spawn(cmd, os.environ, tmp / f"{name}.log"))
        return procs[-1]

    try:
        a = spawn("a")
        time.sleep(3)
        enqueue(peer, rs.url, "j1")
        t0 = time.time()
        while not starts(r, "j1") and time.time() < t0 + 60:
            time.sleep(0.05)
        first = starts(r, "j1")
        assert first and first[0]["pid"] == a.pid, f"{peer}: worker A did not start the job"
        spawn("b")
        time.sleep(3)
        cmds0 = evalsha_calls(r)
        os.kill(a.pid, signal.SIGKILL)
        kill = time.time()
        a.wait()
        while len(starts(r, "j1")) < 2 and time.time() < kill + cap_s:
            time.sleep(0.1)
        waited = time.time() - kill
        again = starts(r, "j1")[1:]
        rate = (evalsha_calls(r) - cmds0) / waited
    finally:
        common.kill(procs)
        rs.stop()
    out: dict[str, Any] = {
        "job_started_by_survivor_s": round(again[0]["t"] - kill, 2) if again else None,
        "cap_s": cap_s, "job_age_at_kill_s": round(kill - first[0]["t"], 2)}
    if peer == "dramatiq":
        out["survivor_script_calls_per_s"] = round(rate, 2)
    return out


def measure_peers(peers: list[str], trials: int = 3, cap_s: float = 240.0
                  ) -> dict[str, Any]:
    """Trials per peer; min / median / max of the wait, or how many hit the cap."""
    out: dict[str, Any] = {}
    for peer in peers:
        rows = []
        for k in range(trials):
            tmp = Path(tempfile.mkdtemp(prefix=f"bench-recovery-{peer}-{k}-"))
            rows.append(peer_trial(peer, cap_s, tmp))
            print(peer, json.dumps(rows[-1]), flush=True)
        got = sorted(x["job_started_by_survivor_s"] for x in rows
                     if x["job_started_by_survivor_s"] is not None)
        out[peer] = {"trials": rows, "summary": {
            "recovered": len(got), "not_recovered_within_cap": len(rows) - len(got),
            "cap_s": cap_s, **({"min": got[0], "median": statistics.median(got), "max": got[-1]}
                               if got else {})}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", choices=["bullmq", "dramatiq"], help="run one worker (internal)")
    ap.add_argument("--redis")
    ap.add_argument("--peers", default="bullmq,dramatiq")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--cap", type=float, default=240.0)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.worker:
        (bullmq_worker if args.worker == "bullmq" else dramatiq_worker)(args.redis)
        return
    res = measure_peers(args.peers.split(","), args.trials, args.cap)
    if args.out:
        common.write_json(args.out, res)
    print(json.dumps({k: v["summary"] for k, v in res.items()}, indent=1))


if __name__ == "__main__":
    main()
