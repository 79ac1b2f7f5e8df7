"""History for the console's charts: per-minute counts kept 7 days.

The Lua scripts that finish, defer, track, grant and ingest jobs count results by outcome
(``o:<outcome>``), calls started (``calls``) and waits entered by reason (``w:<reason>``) in
``lua/lib/history.lua``; 429s answered by a provider are counted here (``429``), by the worker
that got them. Each count goes to two hashes per scope (the namespace is scope ``*``, each
campaign its own), one per minute of an hour and one per hour of a day, each expiring 7 days
after the period it covers (docs/redis.md says the bytes per day).
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from dispatcher.core.model import Outcome, WaitReason
from dispatcher.store import keys as K

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
KEEP_MS = 7 * DAY_MS
EVERYWHERE = "*"  # the namespace's scope (no campaign name has a "*")
RATE_LIMITED = "429"
CALLS = "calls"
OUTCOMES = tuple(f"o:{o.value}" for o in Outcome)
WAITS = tuple(f"w:{r.value}" for r in WaitReason)
METRICS = (*OUTCOMES, CALLS, RATE_LIMITED, *WAITS)


class Span(enum.StrEnum):
    HOUR = "1h"
    DAY = "24h"
    WEEK = "7d"


# buckets shown and each one's length
SHAPE: dict[Span, tuple[int, int]] = {Span.HOUR: (60, MINUTE_MS), Span.DAY: (24, HOUR_MS),
                                      Span.WEEK: (28, 6 * HOUR_MS)}


@dataclass(frozen=True)
class History:
    """Counts per bucket, oldest first, for the metrics that have any in the span."""

    span: Span
    scope: str
    start_ms: int  # the first bucket's start
    step_ms: int
    series: dict[str, list[int]]

    def total(self, metric: str) -> int:
        return sum(self.series.get(metric, ()))

    def stacked(self, metrics: tuple[str, ...]) -> list[dict[str, int]]:
        """Per bucket, the count of each of ``metrics`` that has one."""
        buckets = SHAPE[self.span][0]
        return [{m: self.series[m][i] for m in metrics if self.series.get(m, [0] * buckets)[i]}
                for i in range(buckets)]


def _ttl_s(period_end_ms: int, now_ms: int) -> int:
    return max(1, math.ceil((period_end_ms + KEEP_MS - now_ms) / 1000))


class HistoryStore:
    r: aioredis.Redis
    k: K.Keys

    async def count_rate_limited(self, *, now_ms: int | None = None) -> None:
        """A provider answered 429: one more in this minute's history (namespace-wide: a
        429 pauses the whole provider, whichever campaign's job met it)."""
        now = round(time.time() * 1000) if now_ms is None else now_ms
        await self.history_add([(EVERYWHERE, RATE_LIMITED, 1)], now)

    async def history_add(self, counts: list[tuple[str, str, int]], now_ms: int) -> None:
        """Add (scope, metric, count) to the minute ``now_ms`` falls in, as the Lua does."""
        hour, day = now_ms // HOUR_MS, now_ms // DAY_MS
        pipe = self.r.pipeline(transaction=False)
        for scope, metric, by in counts:
            mkey = self.k.history_minutes(scope, metric, hour)
            hkey = self.k.history_hours(scope, metric, day)
            pipe.hincrby(mkey, str(now_ms // MINUTE_MS % 60), by)
            pipe.expire(mkey, _ttl_s((hour + 1) * HOUR_MS, now_ms))
            pipe.hincrby(hkey, str(hour % 24), by)
            pipe.expire(hkey, _ttl_s((day + 1) * DAY_MS, now_ms))
        await pipe.execute()

    async def history(self, span: Span, now_ms: int, scope: str = EVERYWHERE,
                      metrics: tuple[str, ...] = METRICS) -> History:
        """The span's buckets ending with the one ``now_ms`` falls in."""
        buckets, step = SHAPE[span]
        first = (now_ms // step - buckets + 1) * step
        fine = span is Span.HOUR  # minutes from the per-hour hashes, else hours per day
        unit = MINUTE_MS if fine else HOUR_MS
        units = range(first // unit, (first + buckets * step) // unit)
        per = 60 if fine else 24
        parents = sorted({u // per for u in units})
        pipe = self.r.pipeline(transaction=False)
        for metric in metrics:
            for parent in parents:
                pipe.hgetall(self.k.history_minutes(scope, metric, parent) if fine
                             else self.k.history_hours(scope, metric, parent))
        raw: list[Any] = await pipe.execute()
        series: dict[str, list[int]] = {}
        for index, metric in enumerate(metrics):
            got = {(p, int(f)): int(v) for j, p in enumerate(parents)
                   for f, v in raw[index * len(parents) + j].items()}
            counts = [0] * buckets
            for period in units:
                counts[(period * unit - first) // step] += got.get((period // per, period % per), 0)
            if any(counts):
                series[metric] = counts
        return History(span, scope, first, step, series)
