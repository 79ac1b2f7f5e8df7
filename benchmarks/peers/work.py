"""The unit of work every peer worker does: POST one call start, exactly as the dispatcher's
TelEcho adapter would, and hand back the call id as the job's result.

Workers are configured by the environment (set by ``benchmarks/peers.py``):
``BENCH_REDIS`` (Redis URL), ``BENCH_STUB`` (the stub's base URL), ``BENCH_CONCURRENCY``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import aiohttp

REDIS = os.environ.get("BENCH_REDIS", "")
URL = os.environ.get("BENCH_STUB", "") + "/calls/outbound"
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "50"))
HEADERS = {"Authorization": "Bearer tel_live_x", "Content-Type": "application/json"}


def session() -> aiohttp.ClientSession:
    """One keep-alive pool as wide as the worker's concurrency (what the dispatcher uses)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY),
                                 headers=HEADERS)


def body(job: dict[str, Any]) -> bytes:
    """The dispatcher's TelEcho start-call body: the job's metadata plus its id."""
    return json.dumps({"phone_number_id": "tel_pn_main", "destination_number": job["to"],
                       "metadata": {**job.get("metadata", {}), "dispatcher_job_id": job["id"],
                                    "dispatcher_call": 1}}).encode()


async def start_call(s: aiohttp.ClientSession, job: dict[str, Any]) -> str:
    """POST the call start; a non-2xx answer fails the job (the system's retry applies)."""
    async with s.post(URL, data=body(job)) as r:
        data = await r.read()
        if r.status >= 300:
            raise RuntimeError(f"HTTP {r.status}")
    return str(json.loads(data)["call_id"])
