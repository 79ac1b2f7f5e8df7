"""Whether a worker is making progress: each loop stamps its last success; errors are logged
once per interval per loop (a Redis that is out of memory must not fill the disk with
tracebacks), and readiness fails while a loop is stuck or failing. Redis out of reach is one
short ``redis.unreachable`` line per interval for all loops together: every loop meets it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dispatcher.metrics import LOOP_ERRORS

log = structlog.get_logger("dispatcher")
LOG_EVERY_S = 30.0
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)
"""Redis did not answer (refused, reset, timed out, loading): no stack says more than that."""


def describe(exc: BaseException) -> str:
    """``Type: message``, or the type alone for exceptions without text (a timeout's)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class _Errors:
    first: bool = True
    last_logged: float = 0.0
    suppressed: int = 0
    last_at: float = 0.0
    last_error: str = ""


@dataclass
class Health:
    stale_after_s: dict[str, float]
    group_ok: bool = True
    last_ok: dict[str, float] = field(default_factory=dict)
    errors: dict[str, _Errors] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    redis_url: str = ""  # for redis.unreachable, password hidden
    unreachable: _Errors = field(default_factory=_Errors)  # all loops' Redis failures

    def progressed(self, loop: str) -> None:
        self.last_ok[loop] = time.monotonic()

    def failed(self, loop: str, exc: BaseException) -> None:
        LOOP_ERRORS.labels(loop.split(":")[0]).inc()
        errors = self.errors.setdefault(loop, _Errors())
        now = time.monotonic()
        errors.last_at, errors.last_error = now, describe(exc)[:300]
        unreachable = isinstance(exc, UNREACHABLE)
        shared = self.unreachable if unreachable else errors
        if now - shared.last_logged < LOG_EVERY_S:
            shared.suppressed += 1
            return
        if unreachable:
            log.error("redis.unreachable", url=self.redis_url, error=errors.last_error, loop=loop,
                      repeated=shared.suppressed)
        else:
            log.error("loop.error", loop=loop, error=errors.last_error, repeated=shared.suppressed,
                      exc_info=shared.first)
        shared.first, shared.last_logged, shared.suppressed = False, now, 0

    def problems(self) -> list[str]:
        now = time.monotonic()
        out = [] if self.group_ok else ["consumer group missing"]
        for loop, limit in self.stale_after_s.items():
            last = self.last_ok.get(loop, self.started)
            if now - last > limit:
                out.append(f"loop {loop}: no progress for {now - last:.0f} s")
        for loop, errors in self.errors.items():
            if now - errors.last_at < 10 and self.last_ok.get(loop, 0) < errors.last_at:
                out.append(f"loop {loop}: {errors.last_error}")
        return out
