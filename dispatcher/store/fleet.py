"""The worker fleet as Redis keeps it: what each worker says of itself at every heartbeat,
and the workers taken over as dead (HEARTBEAT writes both; this reads them)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from dispatcher.store import keys as K
from dispatcher.store.protocol import WorkerInfoArgs


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker publishes of itself (fixed for its life)."""

    host: str
    pid: int
    version: str
    started_ms: int
    concurrency: int

    @classmethod
    def here(cls, started_ms: int, concurrency: int) -> WorkerInfo:
        from dispatcher import __version__
        return cls(socket.gethostname(), os.getpid(), __version__, started_ms, concurrency)

    def args(self) -> WorkerInfoArgs:
        return {"host": self.host, "pid": self.pid, "version": self.version,
                "started": self.started_ms, "concurrency": self.concurrency}


@dataclass(frozen=True)
class WorkerView:
    """One worker in the heartbeat registry; the numbers are as of its last heartbeat (None:
    a worker that does not publish them)."""

    name: str
    beat_ms: int
    host: str | None = None
    pid: int | None = None
    version: str | None = None
    started_ms: int | None = None
    concurrency: int | None = None
    inflight: int | None = None
    polling: int | None = None


@dataclass(frozen=True)
class Reaped:
    """A worker taken over as dead: who it was, who took over, and what moved."""

    consumer: str
    by: str
    at_ms: int
    host: str
    pid: str
    version: str
    beat_ms: int | None
    dials: int
    polls: int
    entries: int


def _int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


class Fleet:
    r: aioredis.Redis
    k: K.Keys

    async def workers(self) -> list[WorkerView]:
        """Every worker in the heartbeat registry, newest beat first, with its info."""
        beats: Any = await self.r.zrevrange(self.k.consumers, 0, -1, withscores=True)
        pipe = self.r.pipeline(transaction=False)
        for name, _ in beats:
            pipe.hgetall(self.k.worker(str(name)))
        out = []
        for (name, beat), info in zip(beats, await pipe.execute(), strict=True):
            out.append(WorkerView(
                str(name), int(beat), info.get("host"), _int(info.get("pid")),
                info.get("version"), _int(info.get("started")), _int(info.get("concurrency")),
                _int(info.get("inflight")), _int(info.get("polling"))))
        return out

    async def reaped(self, limit: int = 50) -> list[Reaped]:
        """The latest workers taken over as dead, newest first."""
        rows: Any = await self.r.xrevrange(self.k.reaped, count=limit)
        return [Reaped(f.get("consumer", ""), f.get("by", ""), int(f.get("at") or 0),
                       f.get("host", ""), f.get("pid", ""), f.get("version", ""),
                       _int(f.get("beat")), int(f.get("dials") or 0),
                       int(f.get("polls") or 0), int(f.get("entries") or 0))
                for _, f in rows]
