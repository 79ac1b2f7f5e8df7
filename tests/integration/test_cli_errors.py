"""Every door gives a clear error: one line, exit code 2, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dispatcher.dev.localredis import LocalRedis, free_port
from tests.integration.procs import wait_for_line

PROVIDER_ENV = {"DISPATCHER_PROVIDERS__DEFAULT__KIND": "telecho",
                "DISPATCHER_PROVIDERS__DEFAULT__BASE_URL": "http://127.0.0.1:9",
                "DISPATCHER_PROVIDERS__DEFAULT__API_KEY_ENV": "TEST_TELECHO_KEY"}


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher", *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def one_clear_line(out: subprocess.CompletedProcess[str], needle: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    assert needle in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) <= 3, out.stderr


@pytest.mark.parametrize(("make", "args", "needle"), [
    (None, ["--file", "/no/such/file.csv"], "--file: no such file"),
    (None, ["--file", "/tmp"], "--file: not a file"),
    (None, ["--id", "a", "--to", "+12125550100", "--metadata", "{oops"],
     "--metadata: not valid JSON"),
    ("bad.csv", ["--file", "{path}"], "max_attempts: expected an integer"),
    (None, ["--id", "a", "--to", "+12125550100", "--provider", "nosuch"],
     "no provider named 'nosuch'"),
    (None, ["--id", "a", "--to", "+12125550100", "--redis-url", "http://localhost:6379"],
     "--redis-url: expected redis://"),
    (None, ["--id", "a", "--to", "+12125550100", "--redis-url", "localhost:6379"],
     "--redis-url: expected redis://"),
])
def test_enqueue_mistakes_are_one_line(redis_server: LocalRedis, tmp_path: Path,
                                       make: str | None, args: list[str], needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,to,max_attempts\nx1,+12125550100,three\n")
    args = [a.replace("{path}", str(path)) for a in args]
    env = {**PROVIDER_ENV, "DISPATCHER_REDIS__URL": redis_server.url}
    one_clear_line(cli("enqueue", *args, env=env), needle)


def test_a_worker_without_providers_refuses_to_start() -> None:
    one_clear_line(cli("run"), "no providers configured")


def test_a_missing_webhook_secret_stops_every_process_with_one_message(tmp_path: Path) -> None:
    env = {"DISPATCHER_PROVIDERS__EU__KIND": "itellico",
           "DISPATCHER_PROVIDERS__EU__BASE_URL": "http://127.0.0.1:9",
           "DISPATCHER_PROVIDERS__EU__API_KEY_ENV": "TEST_ITELLICO_KEY",
           "DISPATCHER_PROVIDERS__EU__AGENT_ID": "a",
           "DISPATCHER_PROVIDERS__EU__WEBHOOK_SECRET_FILE": str(tmp_path / "missing")}
    out = cli("run", "--processes", "2", env=env)
    one_clear_line(out, "providers.eu.webhook_secret: cannot read")


def test_run_with_redis_down_keeps_retrying_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, **PROVIDER_ENV, "DISPATCHER_LOG_FORMAT": "json",
           "DISPATCHER_WORKER__HTTP_PORT": "0",
           "DISPATCHER_REDIS__URL": f"redis://127.0.0.1:{free_port()}/0"}
    log = (tmp_path / "w.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "dispatcher", "run"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:  # SIGTERM once it listens for it (start-up may take seconds on a busy machine)
        wait_for_line(tmp_path / "w.log", "redis.unreachable", proc)
        time.sleep(3.0)
        assert proc.poll() is None  # waiting for Redis, as Kubernetes expects
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = (tmp_path / "w.log").read_text()
    assert 1 <= text.count("redis.unreachable") <= 4  # backing off, not a tight loop
