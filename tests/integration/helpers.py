"""Helpers for integration tests: settings per dialect, pushing jobs, reading the audit log."""

from __future__ import annotations

import json
from typing import Any

from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.core import RateWindows
from dispatcher.store import Store

KEYS = {"telecho": "tel_live_demo_key_0001", "itellico": "sk-demo-itellico-0001"}
MISSING_AGENT = {"telecho": "tel_agt_missing", "itellico": "7f3c0c1e-0000-4000-8000-00000000ffff"}


def set_key(sim: RunningSimulator, dialect: str, **changes: Any) -> None:
    key = KEYS[dialect]
    spec = sim.sim.cfg.keys[key]
    sim.sim.cfg.keys[key] = spec.model_copy(update=changes)
    if "limits" in changes:
        sim.sim.rates[key] = RateWindows(changes["limits"])


async def push(store: Store, *jobs: dict[str, Any] | str) -> None:
    pipe = store.r.pipeline(transaction=False)
    for j in jobs:
        pipe.xadd(store.k.jobs, {"job": j if isinstance(j, str) else json.dumps(j)})
    await pipe.execute()


def of_job(correlation: str | None, job_id: str) -> bool:
    """A provider correlation id belongs to a job: ``<id>`` for its first call, ``<id>~<n>``
    for its n-th (TelEcho carries the job id alone)."""
    return correlation is not None and (correlation == job_id
                                        or correlation.startswith(job_id + "~"))


def creates(sim: RunningSimulator, job_id: str | None = None) -> list[dict[str, Any]]:
    return [e for e in sim.sim.audit if e["method"] == "POST" and "/calls" in e["path"]
            and (job_id is None or of_job(e.get("correlation"), job_id))]


def calls_for(sim: RunningSimulator, job_id: str) -> list[str]:
    return [c.id for c in sim.sim.calls.values() if of_job(c.correlation, job_id)]
