"""Permission to send: the grant rules of each provider, and the gate for requests that are
not dials (polls, lookups), which take one grant each from the same Redis log.

Within a process, requests to one provider queue behind a lock once the log says "wait", so a
backlog of polls costs one Redis call per grant, not one per waiting poll.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatcher.config.settings import Settings
from dispatcher.core.budgets import worst_micro
from dispatcher.core.limits import pace_windows
from dispatcher.core.margins import SENDING, LagMeter, SendClock, horizon_s
from dispatcher.core.policies import PolicyBook
from dispatcher.metrics import PACING_WAIT
from dispatcher.providers import CommonConfig
from dispatcher.store.ports import PacerStore
from dispatcher.store.protocol import GrantArgs, Why
from dispatcher.store.types import Admit, GrantRules, WindowsSet

FINAL = (Why.HALTED,)  # refusals that waiting inside the process cannot change
LATE_CAP_S = 5.0  # a dial this long after its grant is granted again, whatever the windows
KEEP_EVERY_MAX_S = 1.0  # how often unanswered requests are looked at (a quarter window if less)


@dataclass
class Gate:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    open: bool = True


def grant_rules(name: str, cfg: CommonConfig, *, track_calls: bool, slot_lease_s: float,
                caps: tuple[tuple[int, int], ...] = (),
                subject_caps: tuple[tuple[int, int], ...] = (), consent: bool = False,
                registries: tuple[dict[str, Any], ...] = (),
                campaigns: Mapping[str, dict[str, Any]] | None = None,
                dnc: bool = True) -> GrantRules:
    slot_cap = (cfg.max_concurrent_calls or 0) if track_calls else 0
    keep = max((ms for _, ms in caps), default=0)
    for campaign in (campaigns or {}).values():
        keep = max([keep, *(ms for _, ms in campaign.get("caps", ()))])
    return GrantRules(
        provider=name, windows=tuple((w.limit, w.ms) for w in cfg.windows),
        margin_ms=cfg.margin_ms, slot_cap=slot_cap,
        lease_ms=round(slot_lease_s * 1000), caps=caps, caps_keep_ms=keep,
        subject_caps=subject_caps, consent=consent, registries=registries,
        campaigns=dict(campaigns or {}), dnc=dnc,
        pace=tuple(pace_windows(cfg.windows)) if cfg.pace_short_windows else (),
        tracked=track_calls, reserve=cfg.reserve_high,
        caller_ids=cfg.caller_ids.grant_args() if cfg.caller_ids else None,
        worst_micro=None if cfg.price_per_minute is None else worst_micro(
            cfg.price_per_minute, cfg.max_call_s, cfg.billing_increment_s),
        hold_ms=round(cfg.max_call_s * 1000) + 60_000)  # a minute for the end to be read


class Pacer:
    def __init__(self, store: PacerStore, rules: dict[str, GrantRules], consumer: str):
        self.store = store
        self.rules = rules
        self.consumer = consumer
        self.gates = {name: Gate() for name in rules}
        self.meters = {name: LagMeter(horizon_s(max((ms for _, ms in r.windows), default=0)
                                                / 1000)) for name, r in rules.items()}
        self._seq = itertools.count()
        self._reports: set[asyncio.Task[None]] = set()
        self._late: dict[str, list[tuple[str, float]]] = {name: [] for name in rules}
        self._reporters = {name: self._reporter(name) for name in rules}
        self._flying: dict[str, set[SendClock]] = {name: set() for name in rules}
        self._shortest_s = {name: min((ms for _, ms in r.windows), default=0) / 1000
                            for name, r in rules.items()}  # 0: no window
        self._file_shortest_s = dict(self._shortest_s)
        self._margin_ms = {name: r.margin_ms for name, r in rules.items()}
        self._keep_every = min([KEEP_EVERY_MAX_S,
                                *(s / 4 for s in self._shortest_s.values() if s)])
        self._keeper: asyncio.Task[None] | None = None

    def token(self) -> str:
        return f"{self.consumer}.{next(self._seq)}"

    def margins_ms(self) -> dict[str, int]:
        """Each provider's measured lag that no place in the log absorbed, for the other
        workers (published by heartbeat)."""
        now = time.monotonic()
        return {name: round(m.margin_s(now) * 1000) for name, m in self.meters.items()}

    def late_s(self, provider: str) -> float:
        """How long after its grant a dial may still leave: a quarter of the shortest window
        (at most ``LATE_CAP_S``). Later, it is granted again first. A late send is counted
        safely (its place moves to its answer, see margins.py), but only if the answer comes
        before its slot can be reused, one window after the grant: three quarters of the
        window are left for the way there and back."""
        shortest = self._shortest_s[provider]
        return min(shortest / 4, LATE_CAP_S) if shortest else LATE_CAP_S

    def report_s(self, provider: str) -> float:
        """From how late after its grant an answered request moves its place in the log: a
        quarter of the margin. A quicker answer means the provider counted the request
        within that quarter, which the margin covers with room to spare; a later one (a
        burst queued at the provider, a slow network) is placed where its answer came."""
        return self._margin_ms[provider] * 0.25 / 1000

    def follow(self, provider: str, ws: WindowsSet | None) -> None:
        """Windows set at runtime (as the last grant applied them, or None: the file's):
        late dials, moves and keeps are timed by the windows in force."""
        if ws is None:
            self._shortest_s[provider] = self._file_shortest_s[provider]
            self._margin_ms[provider] = self.rules[provider].margin_ms
        else:
            self._shortest_s[provider] = ws.shortest_ms / 1000
            self._margin_ms[provider] = ws.margin_ms
            if ws.shortest_ms:
                self._keep_every = min(self._keep_every, ws.shortest_ms / 4000)

    def grant_args(self, provider: str, count: int) -> GrantArgs:
        return self.rules[provider].args(count, self.consumer, self.token())

    async def request(self, provider: str, *, deadline: float,
                      max_inline_s: float = 30.0) -> Admit:
        """Block until a request (poll, lookup) may be sent, or return the refusal.

        Returns a refusal for a halted provider, or when the wait would be longer than
        ``max_inline_s`` or run past ``deadline`` (epoch seconds).
        """
        gate = self.gates[provider]
        started = time.monotonic()
        if gate.open:
            asked, tok = time.monotonic(), self.token()
            res = await self._admit(provider, tok)
            if res.granted:
                SENDING.set(self.clock(provider, asked, tok))
            if res.granted or res.reason in FINAL:
                return res
            gate.open = False
        async with gate.lock:
            while True:
                asked, tok = time.monotonic(), self.token()
                res = await self._admit(provider, tok)
                if res.granted:
                    gate.open = True
                    SENDING.set(self.clock(provider, asked, tok))
                    PACING_WAIT.labels(provider).observe(time.monotonic() - started)
                    return res
                if res.reason in FINAL:
                    return res
                wait = res.wait_ms / 1000
                if wait > max_inline_s or time.time() + wait > deadline:
                    return res
                await asyncio.sleep(wait)

    async def _admit(self, provider: str, tok: str) -> Admit:
        return await self.store.admit(self.rules[provider], tok)

    def clock(self, provider: str, granted_at: float, tok: str) -> SendClock:
        """What a request granted at ``granted_at`` (its place in the log: ``tok``) carries
        to the transport, which reports when it was sent and when it was answered."""
        if self._keeper is None:
            self._keeper = asyncio.create_task(self._keep())
        return SendClock(granted_at, self.meters[provider], tok, self.report_s(provider),
                         self._reporters[provider], watch=self._flying[provider])

    async def _keep(self) -> None:
        """Requests still unanswered half a window after their grant (or their last move)
        have their places moved to now: the provider may count them any time until their
        answer, and their slot must not be given again meanwhile."""
        try:
            while True:
                await asyncio.sleep(self._keep_every)
                if not any(self._flying.values()):
                    return  # the next request's clock starts it again
                now = time.monotonic()
                for name, flying in self._flying.items():
                    after = self._shortest_s[name] / 2 or math.inf
                    for clock in [c for c in flying if now - c.granted_at - c.moved_s >= after]:
                        clock.keep(now)
        finally:
            self._keeper = None

    def _reporter(self, provider: str) -> Callable[[str, float], None]:
        """The moves of one event-loop turn go to Redis together (one round trip)."""
        def report(tok: str, move_s: float) -> None:
            late = self._late[provider]
            late.append((tok, move_s))
            if len(late) == 1:
                asyncio.get_running_loop().call_soon(self._flush, provider)
        return report

    def _flush(self, provider: str) -> None:
        late, self._late[provider] = self._late[provider], []
        task = asyncio.create_task(self._move(provider, late))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _move(self, provider: str, late: list[tuple[str, float]]) -> None:
        """Move places later; failing that, or when a place had already stayed put longer
        than its slot could wait (the shortest window plus the margin: it may have been
        given again), widen every worker's margin by the move."""
        reuse_s = self._shortest_s[provider] + self._margin_ms[provider] / 1000
        try:
            moved = await self.store.move_later(
                provider, [(tok, math.ceil(move_s * 1000) + 1) for tok, move_s in late])
        except Exception:  # Redis away: the measured margin covers it instead
            moved = [False] * len(late)
        for (_, move_s), ok in zip(late, moved, strict=True):
            if not ok or move_s >= reuse_s:
                self.meters[provider].add(time.monotonic(), move_s)

    async def drain(self) -> None:
        """At shutdown: the moves already reported reach Redis before it is closed."""
        if self._keeper is not None:
            self._keeper.cancel()
        for provider, late in self._late.items():
            if late:
                self._flush(provider)
        await asyncio.gather(*self._reports, return_exceptions=True)


def all_grant_rules(settings: Settings, policies: PolicyBook) -> dict[str, GrantRules]:
    """What every grant must respect, per configured provider."""
    return {name: grant_rules(
        name, cfg, track_calls=settings.tracking.track_calls,
        slot_lease_s=settings.tracking.slot_lease_s, caps=policies.default_caps(),
        subject_caps=policies.default_subject_caps(),
        consent=settings.policy.require_consent,
        registries=tuple(policies.grant_registries()),
        campaigns=policies.grant_campaigns()) for name, cfg in settings.providers.items()}
