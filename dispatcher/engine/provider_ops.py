"""Provider-wide state that every worker shares through Redis: cooldowns after a 429, halts
on account errors and their resumption, the provider's own rate counts, the call-slot cap.
"""

from __future__ import annotations

import random

from dispatcher.core.classify import ProviderError
from dispatcher.core.timing import SLOT_SHRINK_S, Timing
from dispatcher.logs import get_logger
from dispatcher.metrics import HALTS, RATE_LIMITED, code_label, provider_label
from dispatcher.providers import CommonConfig
from dispatcher.providers.base import RateObservation
from dispatcher.store.ports import ProviderStore

CIRCUIT_FAILURES = 5  # requests in a row that never reached the provider open its circuit


class ProviderOps:
    def __init__(self, store: ProviderStore, providers: dict[str, CommonConfig], timing: Timing,
                 rng: random.Random):
        self.store = store
        self.providers = providers
        self.timing = timing
        self.rng = rng
        self.unreached: dict[str, int] = {}
        self.halts_logged: dict[str, int] = {}  # provider -> the halt (its start) logged
        # parsed once: observe() runs after every answer
        self.windows = {name: {w.seconds: w for w in cfg.windows}
                        for name, cfg in providers.items()}

    def reached(self, provider: str) -> None:
        """The provider answered (anything with a status): its circuit stays closed."""
        self.unreached[provider] = 0

    async def unreachable(self, provider: str, err: ProviderError) -> None:
        """Requests keep failing before they leave (refused, DNS): after a few in a row,
        open the circuit — halt the provider, park its jobs, and let probes find out when
        it is back. No job spends an attempt on it."""
        failures = self.unreached.get(provider, 0) + 1
        self.unreached[provider] = failures
        if failures == CIRCUIT_FAILURES:
            await self.halt(provider, ProviderError(
                None, "circuit_open", f"provider unreachable ({failures} requests in a row): "
                                      f"{err.message}"))

    async def cooldown(self, provider: str, err: ProviderError, delay: float) -> None:
        """Pause every worker's requests to the provider for ``delay`` seconds."""
        RATE_LIMITED.labels(provider_label(provider), code_label(err.code)).inc()
        await self.store.set_cooldown(provider, round(delay * 1000))
        await self.store.count_rate_limited()  # the console's history of 429s
        get_logger(provider=provider).warning("provider.cooldown", seconds=round(delay, 3),
                                              error_code=err.code)

    async def halt(self, provider: str, err: ProviderError, *, probe: bool = False) -> None:
        """Halt the provider (or find it halted). Every job in flight meets the same error:
        the halt is logged once per process, when first seen; a failed probe at info."""
        first, cap = self.timing.halt_probe_ms()
        halt = await self.store.halt(provider, err.message or err.code, err.code, first, cap)
        if halt.began:
            HALTS.labels(provider_label(provider), code_label(err.code)).inc()
        fields = {"http_status": err.status, "error_code": err.code,
                  "error_message": err.message, "next_probe_s": halt.backoff_ms / 1000}
        log = get_logger(provider=provider)
        if self.halts_logged.get(provider) != halt.since_ms:
            self.halts_logged[provider] = halt.since_ms
            log.error("provider.halted", **fields,
                      hint=f"fix the account, then run: dispatcher resume {provider}")
        elif probe:
            log.info("provider.probe_failed", **fields)

    async def resume(self, provider: str, why: str) -> None:
        moved = await self.store.unpark(provider, round(self.timing.max_defer_s * 1000))
        get_logger(provider=provider).warning("provider.resumed", reason=why, requeued=moved)

    async def shrink(self, provider: str) -> None:
        await self.store.shrink_slots(provider, round(SLOT_SHRINK_S * 1000))

    async def observe(self, provider: str, rate: tuple[RateObservation, ...]) -> None:
        """Yield to the provider's count when it runs low (the key may be shared)."""
        windows = self.windows[provider]
        for obs in rate:
            window = windows.get(obs.seconds)
            if window is None:
                if obs.remaining <= 0 and obs.reset_s > 0:
                    # a window we were not told about is full: wait for its reset, not a 429
                    await self.store.set_cooldown(provider, round(obs.reset_s * 1000))
                    get_logger(provider=provider).warning(
                        "pacing.provider_window_full", window_s=obs.seconds,
                        reset_s=obs.reset_s, hint="add this window to the provider's limits")
                continue
            if obs.remaining > window.limit // 4:
                continue
            margin_ms = self.providers[provider].margin_ms
            if await self.store.observe(provider, window.limit, window.ms, obs.remaining,
                                        round(obs.reset_s * 1000), margin_ms):
                get_logger(provider=provider).info("pacing.provider_count_lower",
                                                   window=window.label(), remaining=obs.remaining)
