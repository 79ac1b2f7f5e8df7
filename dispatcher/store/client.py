"""Redis clients: one server, a Cluster or a Sentinel-watched master (``[redis] mode``), over
TLS or not; pools that wait for a free connection; and which calls may be retried.

The Store keeps two clients on the same server, one decoding replies and one returning bytes
(stream payloads are decoded per entry): ``bytes_twin`` builds the second from the first in
every mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from dispatcher.config.settings import RedisConfig, read_secret

DEFAULT_MAX_CONNECTIONS = 64
Twin = Callable[[], aioredis.Redis]


class _Standalone(aioredis.Redis):
    twin: Twin | None = None


class _SentinelMaster(aioredis.Redis):
    """The master's client; closing it closes the connections to the sentinels too."""

    twin: Twin | None = None
    sentinels: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinels is not None:  # one by one: Sentinel.aclose is new in redis-py 8.1
            for client in self.sentinels.sentinels:
                await client.aclose()


class _BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's master discovery with a pool that waits for a free connection."""


class _Cluster(RedisCluster):
    """redis-py's async cluster raises MaxConnectionsError when a node's pool is used up; this
    makes commands wait (up to the pool timeout) for one of ``max_connections`` slots."""

    twin: Twin | None = None
    gate: asyncio.Semaphore
    gate_timeout_s: float

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self.gate_timeout_s):
                await self.gate.acquire()
        except TimeoutError:
            raise RedisConnectionError("No connection available.") from None
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self.gate.release()


def connect(target: str | RedisConfig, socket_timeout_s: float | None = None, *,
            idempotent: bool = False, decode: bool = True,
            max_connections: int | None = None) -> aioredis.Redis:
    """A Redis client for ``target`` (a URL: one server; or the ``[redis]`` table, any mode).

    Only ``idempotent`` users (the worker's scripts) retry connection errors: a producer's
    XADD retried after a lost reply would push a job twice, while every worker write is a
    script that checks state first (or replays its own reply). Pools hold at most
    ``max_connections`` connections and a command waits ``pool_timeout_s`` for a free one.
    A cluster client is returned under the ``Redis`` type: every key of a namespace lives in
    one slot, so the commands the Store sends behave the same.
    """
    cfg = target if isinstance(target, RedisConfig) else RedisConfig(url=target)
    timeout = cfg.socket_timeout_s if socket_timeout_s is None else socket_timeout_s
    size = max_connections or DEFAULT_MAX_CONNECTIONS

    def twin() -> aioredis.Redis:
        return connect(cfg, timeout, idempotent=idempotent, decode=False, max_connections=size)

    opts = _options(cfg, timeout, idempotent, decode)
    if cfg.mode == "cluster":
        cluster = _cluster(cfg, opts, size)
        cluster.twin = twin
        return cast(aioredis.Redis, cluster)
    if cfg.mode == "sentinel":
        master = _sentinel_master(cfg, opts, size)
        master.twin = twin
        return master
    url = _tls_url(cfg)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=size, timeout=cfg.pool_timeout_s,
        **opts, **(_tls_options(cfg) if url.startswith("rediss://") else {}))
    client = cast(_Standalone, _Standalone.from_pool(pool))
    client.twin = twin
    return client


def bytes_twin(client: aioredis.Redis) -> aioredis.Redis:
    """A client like ``client`` (same server, mode, pool size, retries) that returns bytes."""
    make: Twin | None = getattr(client, "twin", None)
    if make is not None:
        return make()
    pool = client.connection_pool  # a plain client built elsewhere: copy its pool's settings
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    return aioredis.Redis(connection_pool=aioredis.ConnectionPool(
        connection_class=pool.connection_class, max_connections=pool.max_connections,
        **kwargs))


def _retry(idempotent: bool) -> Retry:
    if idempotent:  # long enough to ride out a restart (refused, then "loading" for seconds)
        return Retry(ExponentialBackoff(cap=2.0, base=0.1), 8,
                     supported_errors=(RedisConnectionError,))
    return Retry(NoBackoff(), 0)


def _options(cfg: RedisConfig, timeout: float, idempotent: bool, decode: bool
             ) -> dict[str, Any]:
    """Connection options shared by every mode (TLS aside)."""
    opts: dict[str, Any] = {
        "decode_responses": decode, "socket_timeout": timeout,
        "socket_connect_timeout": min(5.0, timeout), "health_check_interval": 30,
        "retry": _retry(idempotent),
        "retry_on_error": [RedisConnectionError] if idempotent else []}
    if cfg.username:
        opts["username"] = cfg.username
    password = read_secret(cfg.password_env, cfg.password_file, "redis.password")
    if password:
        opts["password"] = password
    return opts


def _tls_url(cfg: RedisConfig) -> str:
    if cfg.tls and cfg.url.startswith("redis://"):
        return "rediss://" + cfg.url.removeprefix("redis://")
    return cfg.url


def _tls_options(cfg: RedisConfig) -> dict[str, Any]:
    """TLS keys from the table; a ``rediss://`` URL's own query options win over them."""
    opts: dict[str, Any] = {"ssl_check_hostname": cfg.tls_check_hostname}
    for key, value in (("ssl_ca_certs", cfg.tls_ca_file), ("ssl_certfile", cfg.tls_cert_file),
                       ("ssl_keyfile", cfg.tls_key_file)):
        if value:
            opts[key] = value
    return opts


def _cluster(cfg: RedisConfig, opts: dict[str, Any], size: int) -> _Cluster:
    url = _tls_url(cfg)
    tls = url.startswith("rediss://")
    kwargs = {k: v for k, v in opts.items() if k != "retry_on_error"}
    client = cast(_Cluster, _Cluster.from_url(
        url, max_connections=size, require_full_coverage=True, **kwargs,
        **(_tls_options(cfg) if tls else {})))
    client.gate = asyncio.Semaphore(max(1, size - 4))  # room for the odd pipeline
    client.gate_timeout_s = cfg.pool_timeout_s
    return client


def _sentinel_master(cfg: RedisConfig, opts: dict[str, Any], size: int) -> _SentinelMaster:
    tls = _tls_options(cfg) if cfg.tls else {}
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": opts["socket_timeout"],
        "socket_connect_timeout": opts["socket_connect_timeout"], **tls}
    if cfg.tls:
        sentinel_kwargs["ssl"] = True
    secret = read_secret(cfg.sentinel_password_env, cfg.sentinel_password_file,
                         "redis.sentinel_password")
    if secret:
        sentinel_kwargs["password"] = secret
    sentinel = Sentinel(cfg.sentinel_addresses(),  # type: ignore[no-untyped-call,unused-ignore]
                        sentinel_kwargs=sentinel_kwargs)
    master = cast(_SentinelMaster, sentinel.master_for(
        cfg.master_name, redis_class=_SentinelMaster,
        connection_pool_class=_BlockingSentinelPool, max_connections=size,
        timeout=cfg.pool_timeout_s, db=cfg.db, ssl=cfg.tls, **opts, **tls))
    master.sentinels = sentinel
    return master
