"""Worker processes for tests that need real processes (kill -9, several pods' worth)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def toml(data: dict[str, Any], prefix: str = "") -> str:
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {_val(v)}")
    out = ([f"[{prefix}]"] if prefix and lines else []) + lines
    for k, v in tables:
        out.append(toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(out) + "\n"


def _val(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_val(x) for x in v) + "]"
    if isinstance(v, dict):  # inside a list: an inline table
        return "{" + ", ".join(f"{k} = {_val(x)}" for k, x in v.items()) + "}"
    return str(v)


def spawn_workers(cfg: dict[str, Any], n: int, tmp: Path) -> list[subprocess.Popen[bytes]]:
    path = tmp / "dispatcher.toml"
    path.write_text(toml(cfg))
    env = {**os.environ, "DISPATCHER_CONFIG": str(path)}
    procs = []
    for i in range(n):
        log = (tmp / f"worker-{i}.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "dispatcher", "run"], env=env,
                                      stdout=log, stderr=subprocess.STDOUT))
    return procs


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
