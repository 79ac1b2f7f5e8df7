"""A recording store double for unit tests of the executors, in the spirit of httpx's
``MockTransport``: a test says what each store call answers and checks the calls made.

    store = RecordingStore()
    store.answer("regrant", Admit(False, 0, Why.LOST))   # replies in order, then the default
    store.answer_with("defer", lambda **args: args["to"] != "parked")  # or computed
    store.answer("bump", RedisError("down"))             # an exception is raised
    ...
    assert store.methods() == ["regrant"]
    [args] = store.args_of("defer")

It does not re-implement the Lua scripts: what a step does in Redis is tested against a real
Redis (tests/integration/test_scripts.py). Each method records its arguments by name.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dispatcher.store.callerids import CallerIdEnded
from dispatcher.store.ports import EngineStore
from dispatcher.store.protocol import (
    DeferTo,
    GrantArgs,
    Ingested,
    JobField,
    RevisitItem,
    TrackConflict,
    TrackItem,
)
from dispatcher.store.types import (
    Admit,
    GrantReply,
    GrantRules,
    Halt,
    JobView,
    Placement,
    ResultItem,
)

__all__ = ["Call", "RecordingStore"]


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]


def _ingested(entries: Sequence[Placement], grants: Sequence[GrantArgs] = ()
              ) -> tuple[list[tuple[str, Ingested, str]], list[GrantReply]]:
    return [(p.job_id, Ingested.OK, "") for p in entries], []


# what a call answers when the test scripted nothing for it: the step went through
DEFAULTS: dict[str, Callable[..., Any]] = {
    "finish_one": lambda **_: True,
    "finish": lambda items, **_: len(items),
    "ingest": _ingested,
    "defer": lambda **_: True,
    "regrant": lambda **_: Admit(True),
    "track_one": lambda **_: None,
    "bump": lambda **_: 1,
    "visit": lambda **_: [],
    "revisit": lambda **_: None,
    "caller_id_ended": lambda **_: CallerIdEnded(0, 0, False, False, False),
    "bill": lambda **_: True,
    "claim_finishing": lambda **_: [],
    "admit": lambda **_: Admit(True),
    "move_later": lambda moves, **_: [True] * len(moves),
    "set_cooldown": lambda **_: None,
    "count_rate_limited": lambda **_: None,
    "halt": lambda first_probe_ms, **_: Halt(first_probe_ms, 0, True),
    "unpark": lambda **_: 0,
    "shrink_slots": lambda **_: 0,
    "observe": lambda **_: False,
}


class RecordingStore:
    """Satisfies ``dispatcher.store.ports.EngineStore``; records every call in ``calls``."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._replies: dict[str, deque[Any]] = defaultdict(deque)
        self._computed: dict[str, Callable[..., Any]] = {}

    # -- scripting and checking ------------------------------------------------------------
    def answer(self, method: str, *replies: Any) -> RecordingStore:
        """The next calls of ``method`` answer these, in order (an exception is raised);
        after them, the default (or ``answer_with``'s function)."""
        self._check(method)
        self._replies[method].extend(replies)
        return self

    def answer_with(self, method: str, fn: Callable[..., Any]) -> RecordingStore:
        """Every later call of ``method`` answers ``fn(**its arguments)``."""
        self._check(method)
        self._computed[method] = fn
        return self

    def methods(self) -> list[str]:
        """The methods called, in order."""
        return [c.method for c in self.calls]

    def args_of(self, method: str) -> list[dict[str, Any]]:
        """The arguments of each call of ``method``, in order."""
        return [c.args for c in self.calls if c.method == method]

    def _check(self, method: str) -> None:
        if method not in DEFAULTS:
            raise ValueError(f"RecordingStore has no method {method!r}; it has "
                             f"{', '.join(sorted(DEFAULTS))}")

    async def _reply(self, method: str, **args: Any) -> Any:
        self.calls.append(Call(method, args))
        queued = self._replies[method]
        reply = queued.popleft() if queued else self._computed.get(method, DEFAULTS[method])
        if isinstance(reply, BaseException):
            raise reply
        return reply(**args) if callable(reply) and not isinstance(reply, type) else reply

    # -- results -----------------------------------------------------------------------------
    async def finish_one(self, item: ResultItem, ttl_s: int) -> bool:
        return bool(await self._reply("finish_one", item=item, ttl_s=ttl_s))

    async def finish(self, items: Sequence[ResultItem], ttl_s: int) -> int:
        return int(await self._reply("finish", items=list(items), ttl_s=ttl_s))

    # -- intake ------------------------------------------------------------------------------
    async def ingest(self, entries: Sequence[Placement], grants: Sequence[GrantArgs] = ()
                     ) -> tuple[list[tuple[str, Ingested, str]], list[GrantReply]]:
        res: tuple[list[tuple[str, Ingested, str]], list[GrantReply]] = await self._reply(
            "ingest", entries=list(entries), grants=list(grants))
        return res

    # -- dials ---------------------------------------------------------------------------------
    async def defer(self, job_id: str, *, to: DeferTo, reason: str, until_ms: int,
                    grant_token: str | None = None, fields: dict[JobField, Any] | None = None,
                    deadline_ms: int = 0, refund_rate: bool = False,
                    refund_number: bool = False, detail: str = "") -> bool:
        return bool(await self._reply(
            "defer", job_id=job_id, to=to, reason=reason, until_ms=until_ms,
            grant_token=grant_token, fields=dict(fields or {}), deadline_ms=deadline_ms,
            refund_rate=refund_rate, refund_number=refund_number, detail=detail))

    async def regrant(self, rules: GrantRules, job_id: str, grant_token: str, tok: str, *,
                      keep: bool = False) -> Admit:
        res: Admit = await self._reply("regrant", rules=rules, job_id=job_id,
                                       grant_token=grant_token,
                                       tok=tok, keep=keep)
        return res

    async def track_one(self, item: TrackItem) -> TrackConflict | None:
        res: TrackConflict | None = await self._reply("track_one", item=item)
        return res

    async def bump(self, job_id: str, field: JobField) -> int:
        return int(await self._reply("bump", job_id=job_id, field=field))

    # -- tracking and finishing ------------------------------------------------------------------
    async def visit(self, providers: Sequence[str], lease_ms: int, limit: int,
                    consumer: str | None = None) -> list[JobView]:
        res: list[JobView] = await self._reply("visit", providers=list(providers),
                                               lease_ms=lease_ms, limit=limit,
                                               consumer=consumer)
        return res

    async def revisit(self, items: Sequence[RevisitItem]) -> None:
        await self._reply("revisit", items=list(items))

    async def caller_id_ended(self, provider: str, caller_id: str, call_id: str, *,
                              answered: bool, keep: int, rate: float | None,
                              rest: bool) -> CallerIdEnded:
        res: CallerIdEnded = await self._reply(
            "caller_id_ended", provider=provider, caller_id=caller_id, call_id=call_id,
            answered=answered, keep=keep, rate=rate, rest=rest)
        return res

    async def bill(self, campaign: str, day: str, job_id: str, worst: int, call_id: str,
                   cost: int, keep_s: int = 3 * 86_400) -> bool:
        return bool(await self._reply("bill", campaign=campaign, day=day, job_id=job_id,
                                      worst=worst, call_id=call_id, cost=cost, keep_s=keep_s))

    async def claim_finishing(self, lease_ms: int, limit: int,
                              ids: Sequence[str] | None = None) -> list[JobView]:
        res: list[JobView] = await self._reply(
            "claim_finishing", lease_ms=lease_ms, limit=limit,
            ids=None if ids is None else list(ids))
        return res

    # -- pacing and provider-wide state ----------------------------------------------------------
    async def admit(self, rules: GrantRules, tok: str, *, now_ms: int | None = None) -> Admit:
        res: Admit = await self._reply("admit", rules=rules, tok=tok, now_ms=now_ms)
        return res

    async def move_later(self, provider: str, moves: Sequence[tuple[str, int]]) -> list[bool]:
        res: list[bool] = await self._reply("move_later", provider=provider, moves=list(moves))
        return res

    async def set_cooldown(self, provider: str, ms: int) -> None:
        await self._reply("set_cooldown", provider=provider, ms=ms)

    async def count_rate_limited(self) -> None:
        await self._reply("count_rate_limited")

    async def halt(self, provider: str, reason: str, code: str, first_probe_ms: int,
                   max_probe_ms: int) -> Halt:
        res: Halt = await self._reply("halt", provider=provider, reason=reason, code=code,
                                      first_probe_ms=first_probe_ms, max_probe_ms=max_probe_ms)
        return res

    async def unpark(self, provider: str, max_defer_ms: int = 86_400_000) -> int:
        return int(await self._reply("unpark", provider=provider, max_defer_ms=max_defer_ms))

    async def shrink_slots(self, provider: str, ttl_ms: int) -> int:
        return int(await self._reply("shrink_slots", provider=provider, ttl_ms=ttl_ms))

    async def observe(self, provider: str, limit: int, window_ms: int, remaining: int,
                      reset_ms: int, margin_ms: int = 0) -> bool:
        return bool(await self._reply("observe", provider=provider, limit=limit,
                                      window_ms=window_ms, remaining=remaining,
                                      reset_ms=reset_ms, margin_ms=margin_ms))


def _satisfies(store: RecordingStore) -> EngineStore:
    return store  # mypy checks here that the double keeps up with the ports
