"""What the benchmark scripts share: config files, the zero-latency stub, the simulator, ports,
processes, CPU readings and the provider-side window arithmetic.

- ``worker_toml`` / ``provider`` / ``sim_toml``: the `dispatcher run` and `dispatcher simulate`
  configs, built from one set of defaults (JSON logs at warning level, calls at any hour, one
  TelEcho key); each script passes only what it varies.
- ``ZeroLatency`` / ``serve`` / ``start_stub``: a bare asyncio HTTP/1.1 server answering 201 at
  once, in a process of its own (``peers/stub.py`` adds counters on top).
- ``start_sim`` / ``wait_sim`` / ``admin``: a simulator process and its admin API.
- ``spawn`` / ``kill`` / ``stop``: worker processes, each in a session of its own so that a
  kill reaches everything it started.
- ``cpu_s`` / ``redis_cpu_s``, ``bench_port``, ``jobs`` / ``push_jobs``, ``write_json``,
  ``utilisation`` / ``windows_over``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis

if TYPE_CHECKING:
    from dispatcher.core.limits import Window

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
KEY = "tel_live_demo_key_0001"  # the simulator key every benchmark dials with
BENCH_PORTS = range(43000, 44000)  # kept clear of other people's runs on this machine
TICK = os.sysconf("SC_CLK_TCK")

# -- config files ------------------------------------------------------------------------------

NO_TRACKING: Mapping[str, Any] = {"track_calls": False}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml(doc: Mapping[str, Any], name: str = "") -> str:
    """``doc`` as TOML: its plain keys first, then a ``[table]`` per mapping (nested: dotted)."""
    lines = [f"{_key(k)} = {_value(v)}\n" for k, v in doc.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in doc.items() if isinstance(v, Mapping)]
    if name and (lines or not tables):
        lines.insert(0, f"[{name}]\n")
    for k, v in tables:
        lines.append(toml(v, f"{name}.{_key(k)}" if name else _key(k)))
    return "".join(lines)


def _key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(v, Sequence):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"no TOML value for {v!r}")


def provider(base_url: str, limits: Sequence[str], *, api_key_env: str = "BENCH_KEY",
             **options: Any) -> dict[str, Any]:
    """One TelEcho provider table (the simulator's dialect, and the stub's)."""
    return {"kind": "telecho", "base_url": base_url, "api_key_env": api_key_env,
            "phone_number_id": "tel_pn_main", "limits": list(limits), **options}


def sim_api(sim_url: str) -> str:
    """The base URL of the simulator's TelEcho API."""
    return f"{sim_url}/api/v1/public"


def worker_toml(redis_url: str, namespace: str, providers: Mapping[str, Mapping[str, Any]], *,
                concurrency: int = 20, worker: Mapping[str, Any] | None = None,
                tracking: Mapping[str, Any] | None = None,
                retry: Mapping[str, Any] | None = None,
                redis: Mapping[str, Any] | None = None) -> str:
    """A `dispatcher run` config: JSON logs at warning level, no HTTP port, calls at any hour.

    ``worker`` and ``redis`` add keys to ``[worker]`` and ``[redis]``; ``tracking`` and
    ``retry`` are those sections (left out when None, so the dispatcher's defaults apply);
    ``providers`` maps name -> table.
    """
    doc: dict[str, Any] = {
        "log_format": "json", "log_level": "warning",
        "redis": {"url": redis_url, "namespace": namespace, **(redis or {})},
        "worker": {"concurrency": concurrency, "http_port": 0, **(worker or {})},
        "policy": {"calling_hours": ["always"]}}
    if tracking is not None:
        doc["tracking"] = tracking
    if retry is not None:
        doc["retry"] = retry
    doc["providers"] = providers
    return toml(doc)


def sim_toml(limits: Sequence[str], *, max_concurrent_calls: int = 1_000_000,
             **extra: Any) -> str:
    """A `dispatcher simulate` config: ``KEY`` with ``limits``, account ``acme``; ``extra``
    adds top-level keys (``seed``, ``audit_file``) and sections (``calls``, ``faults``)."""
    return toml({"keys": {KEY: {"dialect": "telecho", "limits": list(limits)}},
                 "accounts": {"acme": {"max_concurrent_calls": max_concurrent_calls}}, **extra})


# -- the zero-latency stub ---------------------------------------------------------------------

STUB_BODY = b'{"call_id":"tel_call_0","status":"initiated","destination_number":"+1"}'
CREATED = (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + str(len(STUB_BODY)).encode() + b"\r\n\r\n" + STUB_BODY)


class ZeroLatency(asyncio.Protocol):
    """Parses just enough of HTTP/1.1 keep-alive; ``answer`` says what each request gets
    (here: 201 Created at once, whatever the request)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            length = 0
            i = head.find(b"content-length:")
            if i >= 0:
                j = head.find(b"\r\n", i)
                length = int(head[i + 15:j if j > 0 else None].strip())
            total = head_end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[head_end + 4:total]
            self.buf = self.buf[total:]
            self.t.write(self.answer(head, body))

    def answer(self, head: bytes, body: bytes) -> bytes:
        return CREATED


def serve(port: int, protocol: type[ZeroLatency] = ZeroLatency, backlog: int = 100) -> None:
    """Run the stub on 127.0.0.1:``port`` until the process ends."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(protocol, "127.0.0.1", port, backlog=backlog)
        async with server:
            await server.serve_forever()
    asyncio.run(main())


def start_stub(port: int, target: Callable[[int], None] = serve) -> BaseProcess:
    """``target(port)`` in a fresh (spawned) daemon process, once the port accepts."""
    proc = multiprocessing.get_context("spawn").Process(target=target, args=(port,),
                                                        daemon=True)
    proc.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline or not proc.is_alive():
                proc.terminate()
                raise RuntimeError("the provider stub did not start") from None
            time.sleep(0.05)


# -- the simulator -----------------------------------------------------------------------------

def start_sim(config: Path, port: int, *, quiet: bool = False
              ) -> tuple[subprocess.Popen[bytes], str]:
    """`dispatcher simulate` on ``port``, and its URL; stdout dropped (stderr too if quiet)."""
    proc = subprocess.Popen([sys.executable, "-m", "dispatcher", "simulate", "--port", str(port),
                             "--config", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL if quiet else None)
    return proc, f"http://127.0.0.1:{port}"


def wait_sim(sim_url: str, timeout: float = 20.0) -> None:
    """Until the simulator answers its admin API."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin(sim_url, "/_sim/audit?since=1e12")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the simulator at {sim_url} did not start") from None
            time.sleep(0.1)


def admin(sim_url: str, path: str, body: dict[str, Any] | None = None,
          timeout: float = 30.0) -> Any:
    """GET (or with ``body``, POST) one of the simulator's ``/_sim/...`` endpoints."""
    req = urllib.request.Request(sim_url + path, method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


# -- processes, ports, readings ----------------------------------------------------------------

def run_cmd(config: Path | None = None) -> list[str]:
    """`dispatcher run` (with ``--config``, or configured by the environment)."""
    return [sys.executable, "-m", "dispatcher", "run",
            *(["--config", str(config)] if config else [])]


def spawn(cmd: list[str], env: Mapping[str, str], log: Path, *, cwd: Path | None = None,
          new_session: bool = True) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with stdout and stderr to ``log``, by default in a session of its own."""
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=new_session)


def kill(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGKILL each process still running (its whole group if it leads one), then reap it."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(p.pid) == p.pid:
                    os.killpg(p.pid, signal.SIGKILL)
                else:
                    p.kill()
    for p in procs:
        p.wait()


def stop(procs: Iterable[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM each process still running; SIGKILL any not gone ``grace`` s later."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            kill([p])


def bench_port(ports: range = BENCH_PORTS) -> int:
    """A port in ``ports`` that nothing is bound to right now."""
    for port in random.sample(ports, len(ports)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def redis_cpu_s(r: redis.Redis) -> float:
    """CPU seconds the server has used (user + system, main thread and others)."""
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# -- jobs and results --------------------------------------------------------------------------

def jobs(n: int, prefix: str = "b") -> list[dict[str, str]]:
    """``n`` jobs with ids ``<prefix>0``... and distinct numbers."""
    return [{"id": f"{prefix}{i}", "to": f"+1415{5550000 + i:07d}"} for i in range(n)]


def push_jobs(r: redis.Redis, stream: str, batch: Iterable[Mapping[str, Any]], *,
              chunk: int = 0, transaction: bool = True) -> None:
    """XADD each job as ``{"job": <json>}``, in pipelines of ``chunk`` (0: one pipeline)."""
    pipe = r.pipeline(transaction=transaction)
    for i, job in enumerate(batch, 1):
        pipe.xadd(stream, {"job": json.dumps(job)})
        if chunk and i % chunk == 0:
            pipe.execute()
    pipe.execute()


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as indented JSON, the folder made if need be."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


# -- provider-side window arithmetic -----------------------------------------------------------

def utilisation(times: list[float], w: Window, t0: float, t1: float) -> float:
    """Mean of (requests in the trailing window) / limit, sampled every 0.1 s once full."""
    ts = sorted(times)
    samples, t = [], t0 + w.seconds
    lo = hi = 0
    while t <= t1:
        while hi < len(ts) and ts[hi] <= t:
            hi += 1
        while lo < hi and ts[lo] <= t - w.seconds:
            lo += 1
        samples.append((hi - lo) / w.limit)
        t += 0.1
    return sum(samples) / len(samples) if samples else 0.0


def windows_over(times: list[float], w: Window) -> int:
    """How many requests arrived while their trailing window already held the limit."""
    ts = sorted(times)
    lo = over = 0
    for hi, t in enumerate(ts):
        while ts[lo] <= t - w.seconds:
            lo += 1
        if hi - lo + 1 > w.limit:
            over += 1
    return over
