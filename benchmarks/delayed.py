"""Delayed jobs: what 100,000 jobs scheduled an hour ahead cost Redis and the worker to take in.

A job with ``not_before`` is ingested (claimed, placed in the ``delayed`` set, its stream entry
acked and deleted) long before it is dialled, so a campaign scheduled for tomorrow sits in Redis
all night: its bytes per job and the worker CPU to ingest it are the figures that matter.
One private redis-server, one idle `dispatcher run` process (concurrency 50); the jobs are
pushed in pipelines of 1,000 once the worker heartbeats. Measured:

- Redis bytes per job: INFO used_memory once every job is in the delayed set, minus the
  same before the push (the stream is empty again then), over the number of jobs;
- worker CPU seconds: user + system time of the worker process (/proc/<pid>/stat) from just
  before the push until the stream is empty and every job is in the delayed set;
- Redis CPU seconds over the same span (INFO cpu), where the ingest scripts run.

    python -m benchmarks.delayed --jobs 100000 --runs 3   # -> benchmarks/results/delayed.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from benchmarks import common
from dispatcher.dev.localredis import start_redis

NS = "dly"
P = "{" + NS + "}:"


def worker_toml(redis_url: str) -> str:
    # no request is ever sent: every job waits an hour
    default = common.provider("http://127.0.0.1:9/api/v1/public", ["10/second"])
    return common.worker_toml(redis_url, NS, {"default": default}, concurrency=50)


def one_run(n: int, tmp: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    rs = start_redis(port=common.bench_port(), workdir=str(tmp), extra=extra)
    r = redis.Redis.from_url(rs.url, decode_responses=True)
    (tmp / "w.toml").write_text(worker_toml(rs.url))
    worker = common.spawn(common.run_cmd(tmp / "w.toml"),
                          {**os.environ, "BENCH_KEY": common.KEY}, tmp / "worker.log")
    try:
        while not r.zcard(P + "consumers"):
            time.sleep(0.1)
        time.sleep(2)  # idle: group created, first heartbeats done
        due = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        mem0, cpu0, rcpu0, t0 = (int(r.info("memory")["used_memory"]), common.cpu_s(worker.pid),
                                 common.redis_cpu_s(r), time.time())
        common.push_jobs(r, P + "jobs", ({"id": f"d{i}", "to": f"+1415{5550000 + i:07d}",
                                          "not_before": due} for i in range(n)),
                         chunk=1000, transaction=False)
        pushed = time.time() - t0
        while r.zcard(P + "delayed") < n or r.xlen(P + "jobs"):
            time.sleep(0.05)
        wall = time.time() - t0
        cpu, rcpu = common.cpu_s(worker.pid) - cpu0, common.redis_cpu_s(r) - rcpu0
        mem1 = int(r.info("memory")["used_memory"])
        sample = {k: r.memory_usage(P + k) for k in ("job:d1", "tl:d1")}
        sets = {k: r.memory_usage(P + k) for k in ("delayed", "deadlines", "jobs")}
        counts = r.hgetall(P + "counts")
        encoding = r.object("encoding", P + "job:d1")
    finally:
        common.kill([worker])
        rs.stop()
    return {"jobs": n, "push_s": round(pushed, 2), "ingested_after_s": round(wall, 2),
            "redis_bytes_per_job": round((mem1 - mem0) / n, 1),
            "worker_cpu_s": round(cpu, 2), "worker_cpu_s_per_100k": round(cpu * 1e5 / n, 2),
            "redis_cpu_s": round(rcpu, 2),
            "memory_usage_sample": {**sample, **{k: v for k, v in sets.items()}},
            "job_hash_encoding": encoding, "redis_options": list(extra), "counts": counts}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--redis-option", action="append", default=[], metavar="OPT",
                    help='an extra redis-server option, e.g. "--hash-max-listpack-value=256"')
    ap.add_argument("--out", default=str(common.RESULTS / "delayed.json"))
    args = ap.parse_args()
    extra = tuple(x for o in args.redis_option for x in o.split("=", 1))
    runs = []
    for k in range(args.runs):
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-delayed-{k}-"))
        runs.append(one_run(args.jobs, tmp, extra))
        print(json.dumps(runs[-1]), flush=True)
    summary = {key: {"min": min(x[key] for x in runs),
                     "median": statistics.median(x[key] for x in runs),
                     "max": max(x[key] for x in runs)}
               for key in ("redis_bytes_per_job", "worker_cpu_s_per_100k", "redis_cpu_s",
                           "ingested_after_s")}
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "jobs": args.jobs,
              "not_before": "1 h ahead", "redis_options": list(extra), "summary": summary,
              "runs": runs}
    common.write_json(args.out, report)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
