"""Readings the harness takes: free ports in the benchmark's range, Redis INFO fields, a
worker's CPU time and RSS from /proc, and a description of the machine."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import random
import socket
import sys
from pathlib import Path
from typing import Any, cast

import redis

PORTS = range(42000, 43000)
PACKAGES = ("dispatcher", "redis", "hiredis", "aiohttp", "saq", "arq", "bullmq")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port in 42000-42999 nobody listens on (the range private servers may use here)."""
    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 42000-42999")


def redis_cpu(r: redis.Redis) -> float:
    """Seconds of CPU the server has used (user + system, main thread and others)."""
    info = cast(dict[str, Any], r.info("cpu"))
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def used_memory(r: redis.Redis) -> int:
    """Bytes the server holds for data, without client buffers (which vary with the workers
    connected, not with the jobs)."""
    m = cast(dict[str, Any], r.info("memory"))
    return int(m["used_memory"]) - int(m["mem_clients_normal"])


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


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
