"""Caller-ID health: calls and answers per caller ID of a provider's pool, the answer rate
over its last calls, flags (lua/cidstat.lua) and caller IDs rested by an operator or a flag
(skipped by the grant script, lua/lib/callerid.lua)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from dispatcher.store import keys as K
from dispatcher.store.scripts import Scripts


@dataclass(frozen=True)
class CallerIdEnded:
    """What one ended call did to its caller ID's health."""

    recent: int       # calls the rate is taken over (at most flag_min_calls)
    answered: int     # of those, answered by a person
    flagged: bool
    changed: bool     # the flag changed with this call
    rested: bool      # and it was taken out of the pool


@dataclass(frozen=True)
class CallerIdHealth:
    caller_id: str
    calls: int
    answered: int
    recent: int
    recent_answered: int
    flagged_since_ms: int | None
    rested: bool

    @property
    def answer_rate(self) -> float | None:
        """Share answered by a person over its recent calls (None: no call yet)."""
        return self.recent_answered / self.recent if self.recent else None


class CallerIdStore:
    r: aioredis.Redis
    k: K.Keys
    s: Scripts

    async def caller_id_ended(self, provider: str, caller_id: str, call_id: str, *,
                              answered: bool, keep: int, rate: float | None,
                              rest: bool) -> CallerIdEnded:
        args: dict[str, Any] = {"prov": provider, "id": caller_id, "call_id": call_id,
                                "answered": answered, "keep": keep, "rest": rest}
        if rate is not None:
            args["rate"] = rate
        reply = await self.s.call("cidstat", **args)
        return CallerIdEnded(int(reply["n"]), int(reply["answered"]), bool(reply["flagged"]),
                             bool(reply["changed"]), bool(reply["rested"]))

    async def caller_id_health(self, provider: str, ids: Sequence[str]) -> list[CallerIdHealth]:
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.k.caller_id_stats(provider))
        pipe.hgetall(self.k.caller_id_flags(provider))
        pipe.smembers(self.k.caller_id_rested(provider))
        for cid in ids:
            pipe.lrange(self.k.caller_id_recent(provider, cid), 0, -1)
        stats, flags, rested, *recents = await pipe.execute()
        out = []
        for cid, recent in zip(ids, recents, strict=True):
            out.append(CallerIdHealth(
                cid, int(stats.get(f"{cid}:calls", 0)), int(stats.get(f"{cid}:answered", 0)),
                len(recent), sum(1 for e in recent if e.endswith("|1")),
                int(flags[cid]) if cid in flags else None, cid in rested))
        return out

    async def caller_id_rest(self, provider: str, caller_id: str, *, rest: bool) -> bool:
        """Take a caller ID out of the pool (or put it back); False when nothing changed."""
        key = self.k.caller_id_rested(provider)
        if rest:
            return bool(await self.r.sadd(key, caller_id))
        return bool(await self.r.srem(key, caller_id))
