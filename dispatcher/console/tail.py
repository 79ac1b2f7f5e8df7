"""The last hour of results, kept by each console process by following the results stream.

A refresh reads only the entries added since the last one, so the overview's chart and the
recent-failures list cost a few reads however often the page is polled.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from dispatcher.logs import scrub_text
from dispatcher.store import Store

HOUR_MS = 3_600_000
BATCH = 1000
MAX_BATCHES = 50
FAILURES = frozenset({"rejected", "exhausted", "expired", "invalid", "blocked"})
OUTCOMES = ("ended", "started", "cancelled", "rejected", "exhausted", "expired", "invalid",
            "blocked")


def entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


class ResultsTail:
    def __init__(self, store: Store, keep_failures: int = 100):
        self.store = store
        self.entries: deque[tuple[int, str]] = deque()
        self.failures: deque[dict[str, Any]] = deque(maxlen=keep_failures)
        self.after: str | None = None
        self._lock = asyncio.Lock()

    async def refresh(self, now: int) -> None:
        """Read what was added since the last refresh (at most 50 000 entries a call; a
        console started on a busy hour catches up over a few refreshes)."""
        async with self._lock:
            if self.after is None:
                self.after = f"{now - HOUR_MS}-0"
            for _ in range(MAX_BATCHES):
                batch = await self.store.read_results(self.after, BATCH, None)
                for eid, res in batch:
                    self._add(eid, res)
                if batch:
                    self.after = batch[-1][0]
                if len(batch) < BATCH:
                    break
            while self.entries and self.entries[0][0] < now - HOUR_MS:
                self.entries.popleft()

    def _add(self, eid: str, res: dict[str, Any]) -> None:
        ms, outcome = entry_ms(eid), str(res.get("outcome"))
        self.entries.append((ms, outcome))
        if outcome in FAILURES:
            self.failures.appendleft({
                "ms": ms, "job_id": res.get("job_id"), "outcome": outcome,
                "provider": res.get("provider"), "campaign": res.get("campaign"),
                "http_status": res.get("http_status"), "error_code": res.get("error_code"),
                "why": scrub_text(str(res.get("reason") or res.get("error_message") or "")),
                "attempts": res.get("attempts")})

    def totals(self, now: int, span_ms: int = HOUR_MS) -> dict[str, int]:
        out: dict[str, int] = {}
        for ms, outcome in self.entries:
            if ms >= now - span_ms:
                out[outcome] = out.get(outcome, 0) + 1
        return out

    def per_minute(self, now: int, minutes: int = 60) -> list[dict[str, int]]:
        """Results by outcome for each of the last ``minutes`` minutes, oldest first."""
        out: list[dict[str, int]] = [{} for _ in range(minutes)]
        start = now - minutes * 60_000
        for ms, outcome in self.entries:
            minute = (ms - start) // 60_000
            if 0 <= minute < minutes:
                out[minute][outcome] = out[minute].get(outcome, 0) + 1
        return out
