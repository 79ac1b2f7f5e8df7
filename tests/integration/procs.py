"""Worker processes for tests that need real processes (kill -9, several pods' worth)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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


def worker_env(redis_url: str, ns: str, provider_url: str = "http://127.0.0.1:9",
               **extra: str) -> dict[str, str]:
    """The environment of a ``dispatcher run`` with one TelEcho provider and JSON logs."""
    return {**os.environ, "DISPATCHER_REDIS__URL": redis_url, "DISPATCHER_REDIS__NAMESPACE": ns,
            "DISPATCHER_PROVIDERS__DEFAULT__KIND": "telecho",
            "DISPATCHER_PROVIDERS__DEFAULT__BASE_URL": provider_url,
            "DISPATCHER_PROVIDERS__DEFAULT__API_KEY_ENV": "TEST_TELECHO_KEY",
            "DISPATCHER_PROVIDERS__DEFAULT__PHONE_NUMBER_ID": "tel_pn_main",
            "DISPATCHER_LOG_FORMAT": "json", "DISPATCHER_LOG_LEVEL": "info", **extra}


def dispatcher(*args: str, env: dict[str, str], stdout: Any,
               stderr: Any = subprocess.STDOUT) -> subprocess.Popen[bytes]:
    """``dispatcher ARGS`` started in the background."""
    return subprocess.Popen([sys.executable, "-m", "dispatcher", *args], env=env, stdout=stdout,
                            stderr=stderr)


def run_logged(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``dispatcher run`` with stdout and stderr into ``log``."""
    with log.open("wb") as out:
        return dispatcher("run", *args, env=env, stdout=out)


def wait_for_line(log: Path, needle: str, proc: subprocess.Popen[bytes],
                  timeout: float = 30.0) -> str:
    """The first line of ``log`` holding ``needle`` (fails if the process ends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if needle in line:
                return line
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {needle!r} in {log}: {log.read_text()[-2000:]}")
