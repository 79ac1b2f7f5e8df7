"""A private, throwaway ``redis-server`` for the demo and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalRedis:
    proc: subprocess.Popen[bytes]
    port: int
    dir: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_redis(port: int | None = None, workdir: str | None = None,
                appendonly: bool = False) -> LocalRedis:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not found: install it (apt-get install redis-server) "
                           "or point REDIS_URL at a running Redis")
    port = port or free_port()
    workdir = workdir or tempfile.mkdtemp(prefix="dispatcher-redis-")
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
            "--save", "", "--appendonly", "yes" if appendonly else "no",
            "--appendfsync", "always", "--loglevel", "warning"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return LocalRedis(proc, port, workdir)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start within 10 s")
