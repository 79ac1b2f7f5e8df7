"""Recovery against a slow provider: how soon the calls a killed worker had started get their
results.

Two `dispatcher run` processes (concurrency 20, `heartbeat_s = 1`, `dead_after_s = 3`) share
one TelEcho simulator key (20 requests/s) whose every create answers after 2 s (the call is
created all the same); `request_timeout_s = 3`; calls ring and talk 0.3-0.6 s each; the
default poll schedule (5, 10, 20, 30 s). One worker is killed with SIGKILL while it holds at
least two jobs mid-dial (their calls are created after it died). For each such call: seconds
from the kill to its job's result, against the floor max(dead_after_s, request_timeout_s)
(then the survivor may look the call up) + a look-up + a poll. A trial passes when every one
of them resulted within that + 2 s. Every job one result, none dialled twice (ground truth).

    python -m benchmarks.recovery_slow --trials 10   # -> benchmarks/results/recovery_slow.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import common, recovery
from benchmarks.recovery import P, consumer_of, mid_dial, orphan_figures, spread, timeline

REQUEST_TIMEOUT_S = 3.0
DEAD_AFTER_S = 3.0
CREATE_S = 2.0
LIMIT = "20/second"
JOBS = 60
BOUND_S = max(DEAD_AFTER_S, REQUEST_TIMEOUT_S) + 2.0


def sim_toml() -> str:
    return recovery.sim_toml(LIMIT, CREATE_S, (0.3, 0.6))


def worker_toml(redis_url: str, sim_url: str) -> str:
    return recovery.worker_toml(redis_url, sim_url, LIMIT, REQUEST_TIMEOUT_S, tracking={})


class NoKill(RuntimeError):
    pass


def sent(dialling: dict[str, int]) -> list[str]:
    """Jobs whose create has surely left (granted 0.2 s ago or more) and is still on its way
    (the provider answers it 2 s after it arrives)."""
    now = time.time() * 1000
    return [i for i, d in dialling.items() if 200 <= now - d <= (CREATE_S - 0.3) * 1000]


def trial(tmp: Path, jobs: int = JOBS) -> dict[str, Any]:
    with recovery.two_workers(tmp, sim_toml(), worker_toml, jobs) as (r, sim_url, workers):
        victim = workers[0]
        deadline = time.time() + 30
        consumer = None
        while consumer is None or len(sent(mid_dial(r, consumer))) < 2:
            if time.time() > deadline:
                raise NoKill("the victim never held two jobs mid-dial")
            consumer = consumer or consumer_of(r, victim.pid)
            time.sleep(0.005)
        os.kill(victim.pid, signal.SIGKILL)
        kill = time.time()
        victim.wait()
        dialling = mid_dial(r, consumer)
        done = time.time() + 120
        while r.xlen(P + "results") < jobs and time.time() < done:
            time.sleep(0.2)
        tls = timeline(r, list(dialling))
        truth = common.admin(sim_url, "/_sim/calls")["calls"]
        audit = common.admin(sim_url, "/_sim/audit")["entries"]
        results = [json.loads(x["result"]) for _, x in r.xrange(P + "results", "-", "+")]
    per_job = Counter(x["job_id"] for x in results)
    per_number = Counter(c["to"] for c in truth)
    orphans = {i: orphan_figures(tls[i], kill * 1000) for i in dialling}
    for i, o in orphans.items():  # when its call was created and ended, when it was polled
        call = next((c for c in truth if c.get("correlation") == i), None)
        if call is not None:
            o["call"] = {"created_s": round(call["created"] - kill, 3),
                         "ended_s": round(call["ended_at"] - kill, 3),
                         "polled_s": [round(e["t"] - kill, 3) for e in audit
                                      if e["method"] == "GET" and call["call_id"] in e["path"]]}
    # the calls it had started: their creates had reached the provider before the kill (the
    # others' creates were still queued in the dead process: they are dialled anew)
    started = {i: o for i, o in orphans.items()
               if o.get("call") and o["call"]["created_s"] <= CREATE_S + 0.1}
    took = [o["result_s"] for o in started.values()]
    return {"orphans": orphans, "started": sorted(started), "result_s": took,
            "within_bound": bool(took) and all(t is not None and t <= BOUND_S for t in took),
            "jobs_with_one_result": sum(1 for v in per_job.values() if v == 1),
            "jobs_without_result": jobs - len(per_job),
            "numbers_called_twice": sum(1 for v in per_number.values() if v > 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=JOBS, help=(
        "the backlog: 60 keeps the survivor's 20 dials busy through the recovery, 30 leaves "
        "it room once its own creates are answered"))
    ap.add_argument("--out", default=str(common.RESULTS / "recovery_slow.json"))
    args = ap.parse_args()
    trials = []
    for k in range(args.trials * 2):
        if len(trials) == args.trials:
            break
        try:
            t = trial(Path(tempfile.mkdtemp(prefix=f"bench-recovery-slow-{k}-")), args.jobs)
        except NoKill as exc:  # the backlog went by without a moment to kill in: again
            print(exc, flush=True)
            continue
        trials.append(t)
        print(json.dumps({x: t[x] for x in t if x != "orphans"}), flush=True)
    steps = ("taken_over_s", "next_step_s", "dialled_s", "result_s")
    rows = [t["orphans"][i] for t in trials for i in t["started"]]
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "jobs": args.jobs, "limit": LIMIT,
              "create_s": CREATE_S,
              "request_timeout_s": REQUEST_TIMEOUT_S, "dead_after_s": DEAD_AFTER_S,
              "bound_s": BOUND_S, "trials_within_bound": sum(t["within_bound"] for t in trials),
              "trials": len(trials), "orphans": {s: spread([o[s] for o in rows]) for s in steps},
              "checks": {k: sum(t[k] for t in trials) for k in
                         ("jobs_without_result", "numbers_called_twice")},
              "runs": trials}
    common.write_json(args.out, report)
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}))


if __name__ == "__main__":
    main()
