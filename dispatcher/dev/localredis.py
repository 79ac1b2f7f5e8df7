"""Private, throwaway ``redis-server`` processes for the demo, the tests and the benchmarks:
one server (optionally with AOF or TLS), a 3-master Cluster, or a master with a replica
watched by a Sentinel."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

CLUSTER_PORT_MAX = 55_535  # a cluster node's bus port is its port + 10000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose bus port (+10000) is free too, below 55535."""
    for _ in range(200):
        port = random.randrange(20_000, CLUSTER_PORT_MAX - 1000)
        if _bindable(port) and _bindable(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""

    ca: str
    cert: str
    key: str

    @classmethod
    def make(cls, directory: str | None = None) -> TlsFiles:
        folder = Path(directory or tempfile.mkdtemp(prefix="dispatcher-tls-"))
        ca, ca_key, cert, key, csr = (str(folder / n) for n in (
            "ca.crt", "ca.key", "server.crt", "server.key", "server.csr"))
        run = [shutil.which("openssl") or "openssl"]
        ext = folder / "san.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for args in (
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=dispatcher-test-ca", "-keyout", ca_key, "-out", ca],
                ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                 "-keyout", key, "-out", csr],
                ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                 "-days", "2", "-extfile", str(ext), "-out", cert]):
            subprocess.run(run + args, check=True, capture_output=True)
        return cls(ca, cert, key)


@dataclass
class LocalRedis:
    proc: subprocess.Popen[bytes]
    port: int
    dir: str
    tls: TlsFiles | None = None
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no goodbye to replicas."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        """Start it again on the same port, directory and options (AOF files reload)."""
        self.stop()
        self.proc = _spawn(self.args)
        _wait_ready(self.proc, self.port, self.tls)


def _exe() -> str:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not found: install it (apt-get install redis-server) "
                           "or point REDIS_URL at a running Redis")
    return exe


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ping(port: int, tls: TlsFiles | None) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw:
        sock: socket.socket = raw
        if tls:
            ctx = ssl.create_default_context(cafile=tls.ca)
            sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # up, maybe with a password


def _wait_ready(proc: subprocess.Popen[bytes], port: int, tls: TlsFiles | None) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            if _ping(port, tls):
                return
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start within 10 s")


def start_redis(port: int | None = None, workdir: str | None = None,
                appendonly: bool = False, extra: tuple[str, ...] = (),
                tls: TlsFiles | None = None) -> LocalRedis:
    """One server; ``extra`` adds command-line options (``--replicaof``, cluster mode...)."""
    port = port or free_port()
    workdir = workdir or tempfile.mkdtemp(prefix="dispatcher-redis-")
    args = [_exe(), "--bind", "127.0.0.1", "--dir", workdir, "--save", "",
            "--appendonly", "yes" if appendonly else "no", "--appendfsync", "always",
            "--loglevel", "warning", "--logfile", str(Path(workdir) / "redis.log")]
    if tls:
        args += ["--port", "0", "--tls-port", str(port), "--tls-cert-file", tls.cert,
                 "--tls-key-file", tls.key, "--tls-ca-cert-file", tls.ca,
                 "--tls-auth-clients", "no"]
    else:
        args += ["--port", str(port)]
    args += list(extra)
    proc = _spawn(args)
    _wait_ready(proc, port, tls)
    return LocalRedis(proc, port, workdir, tls, args)


@dataclass
class LocalCluster:
    nodes: list[LocalRedis]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(masters: int = 3) -> LocalCluster:
    """``masters`` cluster-enabled servers joined by ``redis-cli --cluster create``."""
    cli = shutil.which("redis-cli")
    if cli is None:
        raise RuntimeError("redis-cli not found (it creates the cluster)")
    nodes: list[LocalRedis] = []
    try:
        for _ in range(masters):
            nodes.append(start_redis(cluster_port(), extra=(
                "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                "--cluster-config-file", "nodes.conf")))
        subprocess.run([cli, "--cluster", "create", *(n.address for n in nodes),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        for node in nodes:
            _wait_for(partial(_cluster_ok, node.port))
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return LocalCluster(nodes)


def _cluster_ok(port: int) -> bool:
    return "cluster_state:ok" in _cli(port, "cluster", "info")


def _cli(port: int, *command: str) -> str:
    cli = shutil.which("redis-cli") or "redis-cli"
    return subprocess.run([cli, "-p", str(port), *command], capture_output=True, text=True,
                          timeout=5).stdout


def _wait_for(ok: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.1)
    raise RuntimeError(f"local Redis set-up not ready within {seconds:.0f} s")


@dataclass
class LocalSentinel:
    """A master, its replica and one Sentinel watching them as ``name``."""

    master: LocalRedis
    replica: LocalRedis
    sentinel: LocalRedis
    name: str = "dispatcher"

    @property
    def sentinels(self) -> list[str]:
        return [self.sentinel.address]

    def stop(self) -> None:
        for server in (self.sentinel, self.replica, self.master):
            server.stop()


def _node(appendonly: bool, front: Callable[[int], int] | None,
          *extra: str) -> tuple[LocalRedis, int]:
    """A server of a Sentinel set and the port the others reach it by (its front's, if any)."""
    port = free_port()
    shown = front(port) if front else port
    announce = ("--replica-announce-ip", "127.0.0.1", "--replica-announce-port", str(shown))
    return start_redis(port, appendonly=appendonly,
                       extra=(*extra, *(announce if front else ()))), shown


def start_sentinel(name: str = "dispatcher", appendonly: bool = True,
                   down_after_ms: int = 1000,
                   front: Callable[[int], int] | None = None) -> LocalSentinel:
    """``front``: given a server's port, starts something that forwards to it (a proxy) and
    answers the port to use instead; the replica, the Sentinel and clients then reach each
    server only through its front (each server announces it)."""
    master, shown = _node(appendonly, front, "--repl-diskless-sync-delay", "0")
    replica = sentinel = None
    try:
        replica, replica_shown = _node(appendonly, front, "--replicaof", "127.0.0.1", str(shown))
        port = free_port()
        workdir = tempfile.mkdtemp(prefix="dispatcher-sentinel-")
        conf = Path(workdir) / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
            f"logfile {workdir}/sentinel.log\n"
            f"sentinel monitor {name} 127.0.0.1 {shown} 1\n"
            f"sentinel down-after-milliseconds {name} {down_after_ms}\n"
            f"sentinel failover-timeout {name} 10000\n"
            f"sentinel parallel-syncs {name} 1\n")
        args = [_exe(), str(conf), "--sentinel"]
        proc = _spawn(args)
        _wait_ready(proc, port, None)
        sentinel = LocalRedis(proc, port, workdir, None, args)
        _wait_for(lambda: "master_link_status:up" in _cli(replica.port, "info", "replication"))
        _wait_for(lambda: f"{replica_shown}" in _cli(port, "sentinel", "replicas", name))
        return LocalSentinel(master, replica, sentinel, name)
    except BaseException:
        for server in (sentinel, replica, master):
            if server is not None:
                server.stop()
        raise
