"""Limits set at runtime: a provider's windows and call-slot cap kept in Redis, replacing the
file's in every worker's next grant (lua/limits.lua; read by lua/lib/rate.lua)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from dispatcher.core.limits import Window
from dispatcher.store import keys as K
from dispatcher.store.scripts import Scripts


@dataclass(frozen=True)
class Overridden:
    """One value set at runtime: since when (epoch ms) and by whom (``cli@host``)."""

    since_ms: int
    by: str


@dataclass(frozen=True)
class LimitsOverride:
    """What a provider's runtime limits hold (every part optional)."""

    windows: tuple[tuple[int, int], ...] = ()   # (limit, window ms); () = the file's
    windows_set: Overridden | None = None
    slots: int | None = None                    # call-slot cap; None = the file's
    slots_set: Overridden | None = None
    margin_ms: int | None = None                # the windows' margin floor, when set

    def in_force(self, windows: Sequence[Window], margin_ms: int, slots: int | None
                 ) -> tuple[list[Window], int, int | None]:
        """The windows, margin and slot cap in force, given the file's."""
        if self.windows:
            windows = [Window(seconds=ms / 1000, limit=n) for n, ms in self.windows]
            margin_ms = self.margin_ms if self.margin_ms is not None else margin_ms
        return list(windows), margin_ms, self.slots if self.slots is not None else slots

    @classmethod
    def decode(cls, fields: dict[str, str]) -> LimitsOverride:
        from dispatcher.core import codec
        wins: tuple[tuple[int, int], ...] = ()
        wset = sset = None
        if fields.get("wins"):
            wins = tuple((int(w[0]), int(w[1])) for w in codec.loads(fields["wins"]))
            wset = Overridden(int(fields.get("wins_since") or 0), str(fields.get("wins_by") or ""))
        slots = int(fields["slots"]) if fields.get("slots") else None
        if slots is not None:
            sset = Overridden(int(fields.get("slots_since") or 0),
                              str(fields.get("slots_by") or ""))
        return cls(wins, wset, slots, sset,
                   int(fields["margin"]) if fields.get("wins") and fields.get("margin") else None)


class RuntimeLimits:
    """Also the spend of campaigns with a budget: both are provider budgets kept in Redis."""

    r: aioredis.Redis
    k: K.Keys
    s: Scripts

    async def limits_get(self, provider: str) -> LimitsOverride:
        return LimitsOverride.decode(await self.s.call("limits", prov=provider, op="get"))

    async def limits_set(self, provider: str, by: str, *,
                         windows: tuple[tuple[int, int], ...] = (),
                         pace: tuple[tuple[int, int], ...] = (), margin_ms: int = 0,
                         slots: int | None = None) -> LimitsOverride:
        """Store the given parts (windows with their pace and margin; the slot cap)."""
        args: dict[str, Any] = {"prov": provider, "op": "set", "by": by}
        if windows:
            args.update(wins=[list(w) for w in windows], pace=[list(p) for p in pace],
                        margin=margin_ms)
        if slots is not None:
            args["slots"] = slots
        return LimitsOverride.decode(await self.s.call("limits", **args))

    async def bill(self, campaign: str, day: str, job_id: str, worst: int, call_id: str,
                   cost: int, keep_s: int = 3 * 86_400) -> bool:
        """A campaign's ended call: its cost into the day's spend, its live hold released
        (lua/bill.lua). False when the call was billed before."""
        return bool(await self.s.call("bill", camp=campaign, day=day, id=job_id, worst=worst,
                                      call_id=call_id, cost=cost, keep=keep_s))

    async def spend(self, campaign: str, day: str) -> tuple[int, int]:
        """(billed today, the worst case of its live calls), in millionths."""
        billed = await self.r.hget(self.k.spend(campaign), day)
        holds: Any = await self.r.zrangebyscore(
            self.k.budget_holds(campaign), f"({round(time.time() * 1000)}", "+inf")
        return int(billed or 0), sum(int(str(h).split("|", 1)[0]) for h in holds)

    async def limits_reset(self, provider: str) -> LimitsOverride:
        """Back to the file's limits for every worker's next grant."""
        return LimitsOverride.decode(await self.s.call("limits", prov=provider, op="reset"))
