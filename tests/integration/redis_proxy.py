"""A loopback TCP proxy in front of a real redis-server that can hold chosen commands or
their replies: a reply that comes late (or never, when held past the client's socket
timeout), a command that reaches Redis late. Rules see each command as its RESP parts and
each reply as raw bytes, and answer an awaitable to wait for before passing it on (None:
pass at once). Replies on one connection keep their order, so holding one holds the ones
behind it, as a slow network would. A replication link (PSYNC / SYNC) is passed on untouched
from that command on: its snapshot is not a RESP value, and no rule applies to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from dispatcher.store.scripts import source

Command = list[bytes]
ReplyRule = Callable[[Command, bytes], Awaitable[Any] | None]
RequestRule = Callable[[Command], Awaitable[Any] | None]
AGGREGATES = {b"*": 1, b"~": 1, b">": 1, b"%": 2}
BLOBS = (b"$", b"=", b"!")


def script_sha(name: str) -> bytes:
    """The SHA1 a script is called by (EVALSHA), as redis-py sends it."""
    return hashlib.sha1(source(name).encode()).hexdigest().encode()


def value_end(buf: bytes | bytearray, i: int) -> int | None:
    """Offset just past the RESP value that starts at ``i``; None while it is incomplete."""
    nl = buf.find(b"\r\n", i)
    if nl < 0:
        return None
    kind, head = bytes(buf[i:i + 1]), bytes(buf[i + 1:nl])
    if kind in BLOBS:
        n = int(head)
        end = nl + 2 + n + 2 if n >= 0 else nl + 2
        return end if len(buf) >= end else None
    if kind in AGGREGATES:
        j: int | None = nl + 2
        for _ in range(max(int(head), 0) * AGGREGATES[kind]):
            j = value_end(buf, j) if j is not None else None
            if j is None:
                return None
        return j
    return nl + 2  # simple string, error, integer, null, double, boolean


def command_parts(raw: bytes) -> Command:
    """The bulk strings of one command array (``*N $len part ...``)."""
    parts: Command = []
    i = raw.find(b"\r\n") + 2
    while i < len(raw):
        nl = raw.find(b"\r\n", i)
        n = int(raw[i + 1:nl])
        parts.append(raw[nl + 2:nl + 2 + n])
        i = nl + 2 + n + 2
    return parts


class RedisProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.reply_rules: list[ReplyRule] = []
        self.request_rules: list[RequestRule] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        # (accepted, upstream answered, reached it) per client connection, monotonic seconds
        self.connections: list[tuple[float, float, bool]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> RedisProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        accepted = time.monotonic()
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:  # the server is down: the client sees its connection close
            self.connections.append((accepted, time.monotonic(), False))
            cw.close()
            return
        self.connections.append((accepted, time.monotonic(), True))
        self._writers.update((cw, uw))
        sent: deque[Command] = deque()
        link = Link()
        pair = [asyncio.create_task(self._requests(cr, uw, sent, link)),
                asyncio.create_task(self._replies(ur, cw, sent, link))]
        self._tasks.update(pair)
        try:
            await asyncio.wait(pair, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in pair:
                t.cancel()
            for w in (cw, uw):
                w.close()
                self._writers.discard(w)
            self._tasks.difference_update(pair)

    async def _requests(self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter,
                        sent: deque[Command], link: Link) -> None:
        async for raw in frames(reader, link):
            if link.replication:
                upstream.write(raw)
                await upstream.drain()
                continue
            cmd = command_parts(raw)
            link.replication = bool(cmd) and cmd[0].upper() in REPLICATION
            for rule in self.request_rules:
                wait = rule(cmd)
                if wait is not None:
                    await wait
            sent.append(cmd)
            upstream.write(raw)
            await upstream.drain()

    async def _replies(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter,
                       sent: deque[Command], link: Link) -> None:
        async for raw in frames(reader, link):
            cmd = sent.popleft() if sent and not link.replication else []
            for reply_rule in () if link.replication else self.reply_rules:
                wait = reply_rule(cmd, raw)
                if wait is not None:
                    await wait
            with contextlib.suppress(ConnectionError):
                client.write(raw)
                await client.drain()


class Link:
    """One client connection's state: a replica's link, once it asked for the data set."""

    replication = False


REPLICATION = {b"PSYNC", b"SYNC"}


async def frames(reader: asyncio.StreamReader, link: Link | None = None
                 ) -> AsyncIterator[bytes]:
    """Whole RESP values as they arrive, one at a time; once ``link`` is a replication link,
    whatever arrives, as it is."""
    buf = bytearray()
    while data := await reader.read(65536):
        buf += data
        if link is not None and link.replication:
            out, buf = bytes(buf), bytearray()
            yield out
            continue
        while (end := value_end(buf, 0)) is not None:
            raw, buf = bytes(buf[:end]), buf[end:]
            yield raw


async def start_proxy(upstream_port: int) -> RedisProxy:
    return await RedisProxy(upstream_port).start()


GRANTING = {script_sha("grant"), script_sha("ingest")}


def granted_ids(cmd: Command, raw: bytes) -> set[str]:
    """The job ids a GRANT or INGEST reply grants (empty for any other reply)."""
    if len(cmd) < 2 or cmd[0].upper() != b"EVALSHA" or cmd[1] not in GRANTING \
            or not raw.startswith(b"$"):
        return set()
    body = json.loads(raw[raw.find(b"\r\n") + 2:-2])
    grants = body.get("grants") if isinstance(body, dict) else None
    return {str(j["id"]) for g in grants or [] if isinstance(g, dict)
            for j in (g.get("jobs") or []) if isinstance(j, dict)}
