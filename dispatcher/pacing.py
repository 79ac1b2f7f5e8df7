"""Waiting for permission to send: one Redis decision (``Store.admit``) per request.

Within a process, requests of one provider queue behind a lock once the limiter says "wait",
so a backlog costs one Redis call per token, not one per waiting job. Dials that need a call
slot queue behind their own lock: polls (which end calls and so free slots) must never wait
behind a dial that waits for a slot.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from dataclasses import dataclass, field

from dispatcher.config import ProviderConfig, TrackingConfig
from dispatcher.metrics import PACING_WAIT
from dispatcher.store import Admit, Begin, Store

FINAL = ("halted", "lost", "cancelled")  # refusals that waiting cannot change


@dataclass
class Gate:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    open: bool = True


class Pacer:
    def __init__(self, store: Store, providers: dict[str, ProviderConfig],
                 tracking: TrackingConfig, consumer: str):
        self.store = store
        self.providers = providers
        self.tracking = tracking
        self.consumer = consumer
        self.gates = {(name, slot): Gate() for name in providers for slot in (False, True)}
        self._seq = itertools.count()
        self._tag = f"{os.getpid()}.{consumer}"

    async def acquire(self, provider: str, *, job_id: str, deadline: float,
                      dial_attempts: int | None = None, entry_id: str = "",
                      max_inline_s: float = 30.0) -> Admit:
        """Block until granted, or return the refusal that the caller must act on.

        Returns a non-granted Admit for: halted, lost (entry taken by another worker), or a
        wait that is longer than ``max_inline_s`` or runs past ``deadline`` (epoch seconds).
        """
        cfg = self.providers[provider]
        need_slot = cfg.max_concurrent_calls if (
            dial_attempts is not None and self.tracking.track_calls) else None
        gate = self.gates[(provider, need_slot is not None)]
        started = time.monotonic()
        if gate.open:
            res = await self._admit(provider, cfg, job_id, dial_attempts, entry_id, need_slot)
            if res.granted or res.reason in FINAL:
                return res
            gate.open = False
        async with gate.lock:
            while True:
                res = await self._admit(provider, cfg, job_id, dial_attempts, entry_id,
                                        need_slot)
                if res.granted:
                    gate.open = True
                    PACING_WAIT.labels(provider).observe(time.monotonic() - started)
                    return res
                if res.reason in FINAL:
                    return res
                wait = res.wait_ms / 1000
                if wait > max_inline_s or time.time() + wait > deadline:
                    return res
                await asyncio.sleep(wait)

    async def begin_admit(self, provider: str, *, job_id: str, raw: str, entry_id: str,
                          max_age_ms: int) -> tuple[Begin, Admit | None] | None:
        """Claim a new job and try its first grant in one call; None when the provider is
        saturated (the gate is closed: the caller claims and then queues as usual)."""
        cfg = self.providers[provider]
        slot_cap = cfg.max_concurrent_calls if self.tracking.track_calls else None
        gate = self.gates[(provider, slot_cap is not None)]
        if not gate.open:
            return None
        b, adm = await self.store.begin_admit(
            provider, cfg.windows, job_id=job_id, raw=raw, max_age_ms=max_age_ms,
            token=f"{self._tag}.{next(self._seq)}", margin_ms=round(cfg.send_margin_s * 1000),
            slot_cap=slot_cap, lease_ms=round(self.tracking.slot_lease_s * 1000),
            entry_id=entry_id, consumer=self.consumer)
        if adm is not None and not adm.granted and adm.reason not in FINAL:
            gate.open = False
        return b, adm

    async def _admit(self, provider: str, cfg: ProviderConfig, job_id: str,
                     attempts: int | None, entry_id: str, slot_cap: int | None) -> Admit:
        return await self.store.admit(
            provider, cfg.windows, job_id=job_id, token=f"{self._tag}.{next(self._seq)}",
            margin_ms=round(cfg.send_margin_s * 1000), slot_cap=slot_cap,
            lease_ms=round(self.tracking.slot_lease_s * 1000), attempts=attempts,
            entry_id=entry_id, consumer=self.consumer)
