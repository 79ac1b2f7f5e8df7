"""Whether a worker is alive: the one rule every reader applies (status, console, metrics).

A worker is alive while its last heartbeat is younger than ``worker.dead_after_s``; the
heartbeat script takes over the work of any worker whose beat is that old or older
(``ZRANGEBYSCORE consumers -inf NOW-dead``), so "dead" here means exactly what the takeover
means. Pure: the clock is passed in.
"""

from __future__ import annotations


def is_alive(now_ms: int, beat_ms: int | None, dead_after_ms: float) -> bool:
    """``beat_ms`` None: the worker never sent a heartbeat (a consumer only the stream knows)."""
    return beat_ms is not None and now_ms - beat_ms < dead_after_ms


def live_count(now_ms: int, beats: list[tuple[str, int]], dead_after_ms: float) -> int:
    return sum(1 for _, b in beats if is_alive(now_ms, b, dead_after_ms))
