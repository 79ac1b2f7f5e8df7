"""Workers and their HTTP port: a taken port is an error naming it, unless sharing is asked."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from dispatcher.dev.localredis import LocalRedis, free_port
from tests.integration.procs import run_logged, stop_all, wait_for_line, worker_env


def test_a_second_worker_on_a_taken_port_stops_naming_the_port(redis_server: LocalRedis,
                                                                ns: str, tmp_path: Path) -> None:
    port = free_port()
    env = worker_env(redis_server.url, ns, DISPATCHER_WORKER__HTTP_PORT=str(port))
    first = run_logged(env, tmp_path / "first.log")
    try:
        wait_for_line(tmp_path / "first.log", "worker.started", first)
        second = subprocess.run([sys.executable, "-m", "dispatcher", "run"], env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "Traceback" not in second.stderr + second.stdout
        assert f"worker.http_port: 0.0.0.0:{port} is already in use" in second.stderr
        assert "worker.http_share_port" in second.stderr  # the way to share it on purpose
        assert first.poll() is None  # the worker that had the port goes on
    finally:
        stop_all([first])


def test_workers_share_a_port_when_asked_to(redis_server: LocalRedis, ns: str,
                                            tmp_path: Path) -> None:
    port = free_port()
    env = worker_env(redis_server.url, ns, DISPATCHER_WORKER__HTTP_PORT=str(port),
                     DISPATCHER_WORKER__HTTP_SHARE_PORT="true")
    procs = [run_logged(env, tmp_path / f"w{i}.log") for i in range(2)]
    try:
        for i, p in enumerate(procs):
            line = json.loads(wait_for_line(tmp_path / f"w{i}.log", "worker.started", p))
            assert line["http"] == f"0.0.0.0:{port}"
        for p in procs:
            p.send_signal(signal.SIGTERM)
        assert [p.wait(30) for p in procs] == [0, 0]
    finally:
        stop_all(procs)


def _taken_above_a_free_port() -> tuple[socket.socket, int]:
    """A listening socket on some port whose predecessor is free right now, and that
    predecessor."""
    while True:
        taken = socket.socket()
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        below = taken.getsockname()[1] - 1
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", below))
                return taken, below
            except OSError:
                taken.close()


def test_run_processes_stops_them_all_when_one_cannot_have_its_port(
        redis_server: LocalRedis, ns: str, tmp_path: Path) -> None:
    taken, port = _taken_above_a_free_port()
    with taken:  # port + 1, the second process's, belongs to another
        env = worker_env(redis_server.url, ns, DISPATCHER_WORKER__HTTP_PORT=str(port))
        out = subprocess.run([sys.executable, "-m", "dispatcher", "run", "--processes", "2"],
                             env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    # port + 1 is ours to refuse; port was free a moment before the start, but a parallel
    # test may take it meanwhile: then the first process is the one refused, the same exit
    refused = re.search(r"worker\.http_port: 0\.0\.0\.0:(\d+) is already in use", out.stderr)
    assert refused and int(refused.group(1)) in (port, port + 1), out.stderr
    assert "Traceback" not in out.stderr
