"""Readings the harness takes: free ports in the benchmark's range, Redis INFO fields, a
worker's RSS from /proc, and a description of the machine (CPU seconds: ``common.cpu_s``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any, cast

import redis

from benchmarks import common

PORTS = range(42000, 43000)
PACKAGES = ("dispatcher", "redis", "hiredis", "aiohttp", "saq", "arq", "bullmq")


def free_port() -> int:
    """A port in 42000-42999 nobody listens on (the range private servers may use here)."""
    return common.bench_port(PORTS)


def used_memory(r: redis.Redis) -> int:
    """Bytes the server holds for data, without client buffers (which vary with the workers
    connected, not with the jobs)."""
    m = cast(dict[str, Any], r.info("memory"))
    return int(m["used_memory"]) - int(m["mem_clients_normal"])


def proc_rss_mib(pid: int) -> dict[str, float]:
    """Current and peak resident set size in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out["rss_mib" if key == "VmRSS" else "peak_rss_mib"] = round(
                int(value.split()[0]) / 1024, 1)
    return out


def machine(redis_version: str) -> dict[str, Any]:
    """What the numbers were measured on; they only compare within one such run."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cpu_model": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0], "redis_server": redis_version,
            "packages": versions, "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}
