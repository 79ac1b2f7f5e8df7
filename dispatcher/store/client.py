"""Redis clients: how the dispatcher connects, and which calls may be retried."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def connect(url: str, socket_timeout_s: float = 10.0, *, idempotent: bool = False,
            decode: bool = True, max_connections: int | None = None) -> aioredis.Redis:
    """A Redis client; only ``idempotent`` users (the worker's scripts) retry connection errors.

    A producer's XADD retried after a lost reply would push a job twice, so producer clients
    never retry. Every worker write is a script that checks state first (or replays its own
    reply), so retrying one after a stale pooled connection (a Redis restart) is safe.
    Timeouts are never retried.
    """
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 3) if idempotent else \
        Retry(NoBackoff(), 0)
    return aioredis.Redis.from_url(
        url,
        decode_responses=decode,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=min(5.0, socket_timeout_s),
        retry=retry,
        retry_on_error=[RedisConnectionError] if idempotent else [],
        health_check_interval=30,
        max_connections=max_connections,
    )
