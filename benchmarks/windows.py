"""Window utilisation of the dispatcher alone, for one window length at a time (1 s, 1 min, 1 h).

pacing.py compares systems on two short windows; this asks how much of a single window the
dispatcher really uses once it has filled, now that the send margin is a small floor plus the
measured send lag (dispatcher/core/margins.py) instead of a fixed 0.25 s. Everything is counted on
the provider side, from the simulator's audit log (also written to a JSON-lines file, so a run
of an hour can be analysed again with ``--analyse``):

    python -m benchmarks.windows --limit 100/second --seconds 60 --jobs 8000
    python -m benchmarks.windows --limit 60/minute --seconds 200 --jobs 400
    nohup python -m benchmarks.windows --limit 600/hour --seconds 4080 --jobs 2000 &
    python -m benchmarks.windows --limit 600/hour --analyse /tmp/.../audit.jsonl

Results are merged into benchmarks/results/windows.json, one entry per limit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks import common
from dispatcher.core.limits import Window, max_in_any_window, parse_limit
from dispatcher.dev.localredis import start_redis
from dispatcher.providers.dialect import CommonConfig

DEFAULT_MARGIN_S = CommonConfig.model_fields["send_margin_s"].default


def dispatcher_toml(redis_url: str, sim_url: str, limit: str, margin: float | None,
                    pace: bool = False) -> str:
    options: dict[str, Any] = {"send_margin_s": margin} if margin is not None else {}
    if pace:
        options["pace_short_windows"] = True
    default = common.provider(common.sim_api(sim_url), [limit], **options)
    return common.worker_toml(redis_url, "bench", {"default": default},
                              tracking=common.NO_TRACKING)


def refill_gaps(ts: list[float], w: Window) -> list[float]:
    """For each request after the first ``limit``: how long after a slot freed it arrived.

    Request i can only land once request i - limit has left the trailing window, at
    ts[i - limit] + W; the gap is what the send margin and the grant-to-wire path cost.
    A negative gap is a request over the limit.
    """
    return [ts[i] - (ts[i - w.limit] + w.seconds) for i in range(w.limit, len(ts))]


def trailing_counts(ts: list[float], w: Window, t0: float, t1: float, step: float
                    ) -> list[tuple[float, int]]:
    """(seconds since t0, requests in the trailing window ending then), once it has filled."""
    out, lo, hi, t = [], 0, 0, t0 + w.seconds
    while t <= t1:
        while hi < len(ts) and ts[hi] <= t:
            hi += 1
        while lo < hi and ts[lo] <= t - w.seconds:
            lo += 1
        out.append((round(t - t0, 3), hi - lo))
        t += step
    return out


def analyse(entries: list[dict[str, Any]], limit: str, t_end: float | None) -> dict[str, Any]:
    """Provider-side figures from audit entries (creates only)."""
    w = parse_limit(limit)
    creates = [e for e in entries if e["method"] == "POST" and "/calls" in e["path"]]
    ts = sorted(e["t"] for e in creates)
    t0 = ts[0]
    # the backlog ran until the end of the run; the last request bounds it otherwise
    t1 = min(t_end, ts[-1] + w.seconds) if t_end else ts[-1]
    counts = trailing_counts(ts, w, t0, t1, 0.1 if w.seconds < 600 else 1.0)
    uses = [c / w.limit for _, c in counts]
    gaps = refill_gaps(ts, w)
    out: dict[str, Any] = {
        "limit": limit, "requests": len(ts),
        "answered_429": sum(1 for e in creates if e["status"] == 429),
        "span_s": round(ts[-1] - t0, 1), "measured_until_s": round(t1 - t0, 1),
        "max_in_any_window": max_in_any_window(ts, w.seconds),
        "over_limit": common.windows_over(ts, w),
        "utilisation": round(common.utilisation(ts, w, t0, t1), 4),
        "use_min_max": [round(min(uses), 4), round(max(uses), 4)] if uses else None,
        "full_windows_sampled": round((t1 - t0 - w.seconds) / w.seconds, 2),
    }
    if gaps:
        out["refill_gap_s"] = {"min": round(min(gaps), 4),
                               "median": round(statistics.median(gaps), 4),
                               "max": round(max(gaps), 4), "n": len(gaps)}
    # the provider's own count: requests it admitted (a 429 does not count in its window)
    admitted = sorted(e["t"] for e in creates if e["status"] != 429)
    out["max_admitted_in_any_window"] = max_in_any_window(admitted, w.seconds)
    if w.seconds >= 600:
        # every trailing window ending on a whole minute once the first has filled
        out["trailing_window_counts"] = [
            {"end_min": round(s / 60, 1), "requests": c, "admitted": a}
            for (s, c), (_, a) in zip(trailing_counts(ts, w, t0, t1, 60.0),
                                      trailing_counts(admitted, w, t0, t1, 60.0), strict=True)]
    return out


def run(limit: str, seconds: float, n: int, procs: int, margin: float | None, pace: bool,
        workdir: Path) -> dict[str, Any]:
    rs = start_redis(port=common.bench_port(), workdir=str(workdir))
    audit_file = workdir / "audit.jsonl"
    (workdir / "sim.toml").write_text(common.sim_toml([limit], audit_file=str(audit_file)))
    sim, sim_url = common.start_sim(workdir / "sim.toml", common.bench_port())
    workers: list[subprocess.Popen[bytes]] = []
    try:
        common.wait_sim(sim_url)
        cfg = workdir / "dispatcher.toml"
        cfg.write_text(dispatcher_toml(rs.url, sim_url, limit, margin, pace))
        r = redis.Redis.from_url(rs.url)
        common.push_jobs(r, "{bench}:jobs", common.jobs(n))
        env = {**os.environ, "BENCH_KEY": common.KEY}
        workers = [common.spawn(common.run_cmd(cfg), env, workdir / f"dispatcher-{i}.log")
                   for i in range(procs)]
        time.sleep(seconds)
        t_end = time.time()
        results_written = r.xlen("{bench}:results")
    finally:
        common.kill(workers)
        common.stop([sim], 10)
        rs.stop()
    entries = [json.loads(x) for x in audit_file.read_text().splitlines() if x]
    res = analyse(entries, limit, t_end)
    res.update({"jobs": n, "processes": procs, "concurrency": 20, "seconds": seconds,
                "send_margin_floor_s": margin if margin is not None else DEFAULT_MARGIN_S,
                "paced": pace,
                "results_written": results_written,
                "audit_file": str(audit_file)})
    return res


def merge(out: Path, res: dict[str, Any]) -> None:
    """Append the run to its limit's list of runs (repeated runs give min / median / max)."""
    report = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    runs = report["runs"].setdefault(res["limit"], [])
    if isinstance(runs, dict):
        runs = report["runs"][res["limit"]] = [runs]
    runs.append({**res, "date": time.strftime("%Y-%m-%d %H:%M")})
    common.write_json(out, report)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", required=True, help='one provider limit, e.g. "100/second"')
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--jobs", type=int, default=8000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--send-margin", type=float, default=None,
                    help="send_margin_s (default: the dispatcher's own)")
    ap.add_argument("--pace", action="store_true", help="pace_short_windows = true")
    ap.add_argument("--analyse", help="an audit.jsonl of an earlier run: analyse only")
    ap.add_argument("--until", type=float, help="with --analyse: when that run ended (epoch s)")
    ap.add_argument("--out", default=str(common.RESULTS / "windows.json"))
    args = ap.parse_args()
    if args.analyse:
        path = Path(args.analyse)
        entries = [json.loads(x) for x in path.read_text().splitlines() if x]
        res = analyse(entries, args.limit, args.until)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench-windows-"))
        print(f"workdir {workdir}", flush=True)
        res = run(args.limit, args.seconds, args.jobs, args.processes, args.send_margin, args.pace,
                  workdir)
        merge(Path(args.out), res)
    print(json.dumps({k: v for k, v in res.items() if k != "trailing_window_counts"}),
          flush=True)


if __name__ == "__main__":
    main()
