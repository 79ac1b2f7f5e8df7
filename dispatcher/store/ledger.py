"""The consent ledger and the do-not-call registries' as-of dates (the scripts CONSENT and
REGISTRY), and reading them back."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from dispatcher.core import codec
from dispatcher.core.consent import Event, from_stored
from dispatcher.store import keys as K
from dispatcher.store.scripts import Scripts, as_list


class Ledger:
    r: aioredis.Redis
    k: K.Keys
    s: Scripts

    async def consent_record(self, events: Sequence[tuple[str, Event]], *, add_dnc: bool,
                             now_ms: int | None = None) -> tuple[int, int]:
        """Append (number key, event) pairs to their ledgers, durably before it returns; a
        revocation also lists the number as do-not-call when ``add_dnc``. Returns (added,
        already there)."""
        if not events:
            return 0, 0
        res = await self.s.call("consent", now_ms, dnc=add_dnc,
                                events=[{"dk": dk, "ev": ev.stored()} for dk, ev in events])
        return int(res["added"]), int(res["again"])

    async def registry_record(self, name: str, as_of_ms: int, count: int,
                              now_ms: int | None = None) -> int:
        """Record a registry's as-of date after its numbers are in; returns the date kept
        (a newer one already recorded stays)."""
        res = await self.s.call("registry", now_ms, reg=name, as_of=as_of_ms, count=count)
        return int(res["as_of"])

    async def registries(self) -> dict[str, int]:
        """Each imported registry's as-of date (epoch ms)."""
        raw = await self.r.hgetall(self.k.registries)
        return {str(k): int(v) for k, v in raw.items() if ":" not in str(k)}

    async def consent_history(self, number_key: str) -> list[Event]:
        raw = await self.r.lrange(self.k.consent(number_key), 0, -1)
        return [from_stored(codec.loads(x)) for x in as_list(raw)]
