"""Import benchmark: ``dispatcher enqueue --file`` on a generated lead list of N rows
(default 10^6) against a private redis-server: rows per second for the whole import (both
passes) and the peak memory of the importing processes. Not part of the test suite.

    python -m benchmarks.import_bench [--rows 1000000] [--format csv|jsonl] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dispatcher.dev.localredis import start_redis

AREAS = (212, 213, 305, 312, 415, 617, 646, 702, 713, 718)
CITIES = ("New York", "Los Angeles", "Miami", "Chicago", "San Francisco", "Boston")


def number(rng: random.Random) -> str:
    return f"+1{rng.choice(AREAS)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"


def write_file(path: Path, rows: int, fmt: str, seed: int = 1) -> None:
    """A lead list: id, to, priority and two extra columns (carried into metadata)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            fh.write("\ufeffid,to,priority,first_name,city\n")
        for i in range(rows):
            prio = "high" if i % 50 == 0 else "normal"
            if fmt == "csv":
                fh.write(f"lead-{i},{number(rng)},{prio},Name{i % 997},{rng.choice(CITIES)}\n")
            else:
                fh.write(json.dumps({"id": f"lead-{i}", "to": number(rng), "priority": prio,
                                     "metadata": {"first_name": f"Name{i % 997}",
                                                  "city": rng.choice(CITIES)}}) + "\n")


def run_import(path: Path, redis_url: str, ns: str, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "DISPATCHER_REDIS__URL": redis_url, "DISPATCHER_REDIS__NAMESPACE": ns}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "dispatcher", "enqueue", "--file", str(path),
                          "--campaign", "bench", *extra], env=env, capture_output=True,
                         text=True, check=False)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"import failed ({out.returncode}): {out.stderr[-2000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": round(elapsed, 2), "peak_rss_mib": round(peak_kib / 1024, 1),
            "stdout": out.stdout.strip()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    ap.add_argument("--out", help="write the JSON report here too")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        path = Path(tmp) / f"leads.{args.format}"
        write_file(path, args.rows, args.format)
        redis = start_redis()
        try:
            res = run_import(path, redis.url, "bench")
            push_only = run_import(path, redis.url, "bench2", "--no-validate")
            import redis as redis_py
            pushed = redis_py.Redis.from_url(redis.url).xlen("{bench}:jobs")
        finally:
            redis.stop()
        report = {"rows": args.rows, "format": args.format,
                  "file_mib": round(path.stat().st_size / 2**20, 1),
                  "cpus": os.cpu_count(), **res, "pushed": pushed,
                  "rows_per_s": round(args.rows / res["seconds"]),
                  "push_pass_only": {"seconds": push_only["seconds"],
                                     "rows_per_s": round(args.rows / push_only["seconds"])},
                  "check_pass_rows_per_s": round(
                      args.rows / max(res["seconds"] - push_only["seconds"], 1e-9))}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
