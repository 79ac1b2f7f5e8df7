"""arq doing the same work: one Worker with ``max_jobs`` = concurrency, the call id kept as
the job's result (``keep_result`` 3600 s, the default).

arq has no blocking pop: it polls its queue every ``poll_delay`` (0.5 s by default). The
benchmark sets ``BENCH_ARQ_POLL`` (0.05 s by default here) so that polling does not cap
its throughput; its enqueue → dial latency still shows the polling.
"""

from __future__ import annotations

import os
from typing import Any

from arq import run_worker
from arq.connections import RedisSettings
from peers.work import CONCURRENCY, REDIS, session, start_call


async def startup(ctx: dict[str, Any]) -> None:
    ctx["http"] = session()


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["http"].close()


async def call(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    return await start_call(ctx["http"], payload)


class WorkerSettings:
    functions = [call]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(REDIS or "redis://localhost:6379")
    max_jobs = CONCURRENCY
    poll_delay = float(os.environ.get("BENCH_ARQ_POLL", "0.05"))


if __name__ == "__main__":
    run_worker(WorkerSettings)  # type: ignore[arg-type]
