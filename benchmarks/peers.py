"""Throughput and enqueue → dial latency, side by side: the raw stream loop, the dispatcher,
SAQ, BullMQ (Python) and arq doing the same work (pop a job, POST a call start to the same
zero-latency local stub, record a result), in alternating rounds on one machine.

Each system in each round gets a fresh private redis-server (ports 42000 to 42999) and one
worker process with concurrency 50; the order of the systems rotates from round to round,
and each system's throughput is divided by the raw loop's of the same round, since the
machine's speed drifts between rounds more than the systems differ within one.

    python benchmarks/peers.py             # 5 rounds of 20,000 jobs → results/peers.json
    python benchmarks/peers.py --rounds 2 --jobs 5000 --out /tmp/peers.json   # a quick run
    python benchmarks/peers.py --table     # the README's table, from results/peers.json

Run it as a script (not ``python -m``): ``benchmarks/peers/`` holds its helpers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, cast

import redis

if not __package__:  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from peers import measure, stub
from peers.run import run_system
from peers.systems import SYSTEMS
from peers.table import markdown

from benchmarks import common
from dispatcher.dev.localredis import start_redis


def redis_version(tmp: Path) -> str:
    rs = start_redis(port=measure.free_port(), workdir=str(tmp))
    try:
        info = cast(dict[str, Any], redis.Redis.from_url(rs.url).info("server"))
        return str(info["redis_version"])
    finally:
        rs.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=20000, help="jobs per system per round")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help=f"comma-separated, of {', '.join(SYSTEMS)}")
    ap.add_argument("--latency-rate", type=float, default=200, help="jobs/s pushed one by one")
    ap.add_argument("--latency-seconds", type=float, default=10)
    ap.add_argument("--out", default=str(common.RESULTS / "peers.json"))
    ap.add_argument("--table", action="store_true",
                    help="only print the Markdown table of --out")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads(Path(args.out).read_text())))
        return
    names = args.systems.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    report: dict[str, Any] = {
        "machine": measure.machine(redis_version(tmp)),
        "setup": {"jobs": args.jobs, "rounds": args.rounds, "concurrency": args.concurrency,
                  "latency_rate_per_s": args.latency_rate,
                  "latency_seconds": args.latency_seconds, "arq_poll_delay_s": 0.05},
        "rounds": []}
    stub_port = measure.free_port()
    stub_proc = common.start_stub(stub_port, stub.serve)
    try:
        for i in range(args.rounds):
            order = names[i % len(names):] + names[:i % len(names)]
            results = []
            for name in order:
                work = tmp / f"r{i}-{name}"
                work.mkdir()
                try:
                    res = run_system(SYSTEMS[name], args.jobs, args.concurrency, stub_port,
                                     work, f"r{i}{name}", args.latency_rate,
                                     args.latency_seconds)
                except Exception as exc:  # one system failing must not lose the others
                    res = {"system": SYSTEMS[name].name, "error": f"{type(exc).__name__}: {exc}"}
                results.append(res)
                print(f"round {i + 1}: {json.dumps(res)}", file=sys.stderr, flush=True)
            report["rounds"].append({"order": order, "results": results})
            common.write_json(args.out, report)
    finally:
        stub_proc.terminate()
    print(markdown(report))


if __name__ == "__main__":
    main()
