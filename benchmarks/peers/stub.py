"""The zero-latency provider stub every system posts to, with counters the harness reads.

The bare asyncio server of ``benchmarks/common.py``: any POST gets 201 at once. It also notes
each POST's arrival time and job id (so a job dialled twice shows), and when the body carries
``"t0": <unix time>`` (the producer's enqueue time, sent in the call's metadata) the
enqueue → dial latency. It runs in a process of its own, apart from the harness's loop.

Control: ``GET /_count`` → ``{"count": n}``, ``GET /_stats`` → counts, arrival times and
latencies, ``GET /_reset`` clears them.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

from benchmarks import common

T0 = re.compile(rb'"t0":\s*([0-9.eE+-]+)')
JOB_ID = re.compile(rb'"dispatcher_job_id":\s*"([^"]*)"')


class Counters:
    """What the stub has seen since the last reset."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.latencies: list[float] = []
        self.ids: set[bytes] = set()

    def report(self, full: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"count": len(self.arrivals), "distinct_jobs": len(self.ids)}
        if full:
            out |= {"arrivals": self.arrivals, "latencies": self.latencies}
        return out


def _json_response(data: dict[str, Any]) -> bytes:
    body = json.dumps(data).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


class Counting(common.ZeroLatency):
    """Answers every POST with 201 at once and counts it; GETs are the control endpoints."""

    counters = Counters()

    def answer(self, head: bytes, body: bytes) -> bytes:
        c = self.counters
        if head.startswith(b"post"):
            now = time.time()
            c.arrivals.append(now)
            j = JOB_ID.search(body)
            if j:
                c.ids.add(j.group(1))
            m = T0.search(body)
            if m:
                c.latencies.append(now - float(m.group(1)))
            return common.CREATED
        if head.startswith(b"get /_reset"):
            type(self).counters = Counters()
            return _json_response({"count": 0})
        return _json_response(c.report(full=head.startswith(b"get /_stats")))


def serve(port: int) -> None:
    """Entry point of the stub's process."""
    common.serve(port, Counting, backlog=1024)


def ask(port: int, what: str) -> dict[str, Any]:
    """``what`` is ``count``, ``stats`` or ``reset``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_{what}", timeout=30) as r:
        data: dict[str, Any] = json.loads(r.read())
        return data
