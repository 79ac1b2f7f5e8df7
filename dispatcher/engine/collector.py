"""Deployment metrics read from Redis at scrape time.

A process only knows what it did; the queues, waits, windows and halts belong to the whole
deployment and live in Redis. This collector reads them when ``/metrics`` is scraped, so every
pod reports the same values (a halt shows on every pod and drops to 0 on every pod the moment
anyone resumes the provider). Aggregate these with ``max``, never ``sum``.

Every label comes from a closed set: configured provider names, their configured windows, job
states, wait reasons, outcomes and configured registry names. Never a job id, a number or a
campaign name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from dispatcher.config.settings import Settings
from dispatcher.core.model import Outcome, WaitReason
from dispatcher.core.policies import registry_states
from dispatcher.core.workers import live_count
from dispatcher.logs import get_logger
from dispatcher.store import Store
from dispatcher.store.callerids import CallerIdHealth

STATES = {"queued": "queued", "delayed": "delayed", "parked": "parked", "dialing": "dialing",
          "live": "tracking", "finishing": "finishing"}
"""Count field in Redis -> the ``state`` label."""

MIN_INTERVAL_S = 1.0
TIMEOUT_S = 5.0


def _gauge(name: str, doc: str, value: float | None = None,
           labels: Iterable[str] = ()) -> GaugeMetricFamily:
    labels = list(labels)
    if labels:
        return GaugeMetricFamily(name, doc, labels=labels)
    return GaugeMetricFamily(name, doc, value=value or 0)


def _age_s(now: int, since: int | None) -> float:
    return 0.0 if since is None else max(0.0, (now - since) / 1000)


class DeploymentCollector(Collector):
    """``await refresh()`` before each exposition; ``collect()`` yields the last reading."""

    def __init__(self, settings: Settings, store: Store,
                 min_interval_s: float = MIN_INTERVAL_S):
        self.settings = settings
        self.store = store
        self.min_interval_s = min_interval_s
        self._families: list[Metric] = []
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    def collect(self) -> Iterator[Metric]:
        yield from self._families

    async def refresh(self) -> None:
        """Read Redis (at most once a second however many scrapers there are)."""
        async with self._lock:
            if self._families and time.monotonic() - self._read_at < self.min_interval_s:
                return
            started = time.monotonic()
            try:
                fams = await asyncio.wait_for(self._read(), TIMEOUT_S)
                up = 1
            except (RedisError, OSError, TimeoutError) as exc:
                get_logger().warning("metrics.redis_unreadable", error=str(exc))
                fams, up = [], 0
            fams.append(_gauge("dispatcher_redis_up",
                               "1 when the last scrape could read the deployment from Redis",
                               up))
            fams.append(_gauge("dispatcher_collector_read_seconds",
                               "Time the last scrape spent reading Redis",
                               time.monotonic() - started))
            self._families = fams
            self._read_at = time.monotonic()

    async def _read(self) -> list[Metric]:
        now = await self.store.server_ms()
        return [*await self._jobs(now), *await self._providers(now), *await self._upkeep(now),
                *await self._registries(now)]

    async def _registries(self, now: int) -> list[Metric]:
        """Each configured do-not-call registry's age and whether it holds jobs (stale: older
        than its max_age_days, or never imported)."""
        loaded = await self.store.registries() if self.settings.policy.registries else {}
        age = _gauge("dispatcher_registry_age_days",
                     "Age of a do-not-call registry's loaded copy (absent: never imported)",
                     labels=["registry"])
        stale = _gauge("dispatcher_registry_stale",
                       "1 while a registry's copy is missing or older than its max_age_days: "
                       "the jobs it covers wait (registry_stale)", labels=["registry"])
        for registry in registry_states(self.settings.policy, loaded, now):
            if registry.age_days is not None:
                age.add_metric([registry.name], registry.age_days)
            stale.add_metric([registry.name], 1 if registry.stale else 0)
        return [age, stale]

    async def _jobs(self, now: int) -> list[Metric]:
        counts = await self.store.counts()
        backlog = await self.store.backlog()
        sizes = await self.store.queue_sizes(now)
        state = _gauge("dispatcher_jobs", "Jobs by state, whole deployment", labels=["state"])
        for field, label in STATES.items():
            state.add_metric([label], counts.get(field, 0))
        waits = _gauge("dispatcher_waiting_jobs", "Delayed or parked jobs by why they wait",
                       labels=["reason"])
        for reason in WaitReason:
            waits.add_metric([reason.value], counts.get(f"w:{reason.value}", 0))
        results = CounterMetricFamily("dispatcher_deployment_results",
                                      "Results written by any worker, by outcome",
                                      labels=["outcome"])
        for outcome in Outcome:
            results.add_metric([outcome.value], counts.get(f"o:{outcome.value}", 0))
        return [
            _gauge("dispatcher_stream_unread_jobs", "Stream entries no worker has read yet",
                   backlog["unread"]),
            _gauge("dispatcher_stream_pending_jobs",
                   "Stream entries read by a worker and not yet ingested", backlog["pending"]),
            state, waits, results,
            _gauge("dispatcher_delayed_due_jobs",
                   "Delayed jobs whose time has come and that are not back in line yet",
                   sizes["delayed_due"]),
            _gauge("dispatcher_orphaned_jobs", "Jobs that lost their payload and cannot be sent",
                   sizes["orphans"]),
            _gauge("dispatcher_results_stream_length", "Entries kept in the results stream",
                   sizes["results"]),
        ]

    async def _providers(self, now: int) -> list[Metric]:
        fams: dict[str, GaugeMetricFamily] = {
            "halted": _gauge("dispatcher_provider_halted", "1 while a provider is halted",
                             labels=["provider"]),
            "cooldown": _gauge("dispatcher_provider_cooldown_seconds",
                               "Time left of a provider's 429 cooldown", labels=["provider"]),
            "parked": _gauge("dispatcher_parked_jobs",
                             "Jobs parked for a halted provider", labels=["provider"]),
            "slots": _gauge("dispatcher_call_slots_in_use", "Live calls holding a call slot",
                            labels=["provider"]),
            "slot_cap": _gauge("dispatcher_call_slots_limit",
                               "Call slots a capped provider has (after any shrink)",
                               labels=["provider"]),
            "oldest": _gauge("dispatcher_oldest_ready_job_age_seconds",
                             "How long the longest-waiting ready job has been ready (0: none)",
                             labels=["provider"]),
        }
        cids = CallerIdFamilies()
        wins = WindowFamilies()
        for name, cfg in self.settings.providers.items():
            ov = await self.store.limits_get(name)  # limits set at runtime replace the file's
            windows, margin, configured_cap = ov.in_force(cfg.windows, cfg.margin_ms,
                                                          cfg.max_concurrent_calls)
            st = await self.store.provider_state(
                name, [(w.limit, w.ms) for w in windows], margin, now)
            fams["halted"].add_metric([name], 1 if st["halt"] else 0)
            fams["cooldown"].add_metric([name], st["cooldown_ms"] / 1000)
            fams["parked"].add_metric([name], st["parked"])
            fams["slots"].add_metric([name], st["slots_in_use"])
            cap = _slot_cap(configured_cap, st["slot_cap_shrunk_to"])
            if cap:
                fams["slot_cap"].add_metric([name], cap)
            since = await self.store.oldest_ready_ms(name)
            fams["oldest"].add_metric([name], _age_s(now, since))
            for window, state in zip(windows, st["windows"], strict=True):
                wins.add(name, window.label(), state)
            if cfg.caller_ids:
                pool = cfg.caller_ids
                labels = {n.key: n.metric_label for n in pool.numbers}
                for health in await self.store.caller_id_health(name, pool.keys()):
                    cids.add(name, labels[health.caller_id], health)
        return [*fams.values(), *wins.families(), *cids.families()]

    async def _upkeep(self, now: int) -> list[Metric]:
        beats = await self.store.consumer_beats()
        alive_ms = self.settings.worker.dead_after_s * 1000
        paused, cancelled = await self.store.campaign_flags()
        oldest_result = await self.store.stream_oldest_ms(self.store.k.results)
        oldest_track = await self.store.tracking_oldest_ms(list(self.settings.providers))
        return [
            _gauge("dispatcher_workers_alive",
                   "Workers whose last heartbeat is recent enough to count them alive",
                   live_count(now, beats, alive_ms)),
            _gauge("dispatcher_campaigns_paused", "Campaigns paused", len(paused)),
            _gauge("dispatcher_campaigns_cancelled", "Campaigns cancelled", len(cancelled)),
            _gauge("dispatcher_results_oldest_age_seconds",
                   "Age of the oldest entry kept in the results stream (0: empty)",
                   _age_s(now, oldest_result)),
            _gauge("dispatcher_tracking_oldest_age_seconds",
                   "How long the longest-followed live call has been followed (0: none)",
                   _age_s(now, oldest_track)),
        ]


class CallerIdFamilies:
    """Per caller ID of a configured pool (a bounded label set): calls, answer rate, flag."""

    def __init__(self) -> None:
        labels = ["provider", "caller_id"]
        self.calls = _gauge("dispatcher_caller_id_calls", "Calls ended per caller ID",
                            labels=labels)
        self.rate = _gauge("dispatcher_caller_id_answer_rate",
                           "Share of a caller ID's recent calls answered by a person",
                           labels=labels)
        self.flagged = _gauge("dispatcher_caller_id_flagged",
                              "1 while a caller ID's answer rate is flagged (2: and rested, "
                              "or rested by an operator)", labels=labels)

    def add(self, provider: str, label: str, health: CallerIdHealth) -> None:
        self.calls.add_metric([provider, label], health.calls)
        if health.answer_rate is not None:
            self.rate.add_metric([provider, label], health.answer_rate)
        flag = 2 if health.rested else (1 if health.flagged_since_ms is not None else 0)
        self.flagged.add_metric([provider, label], flag)

    def families(self) -> list[Metric]:
        return [self.calls, self.rate, self.flagged]


def _slot_cap(configured: int | None, shrunk: int | None) -> int | None:
    if not configured:
        return None
    return min(configured, shrunk) if shrunk else configured


class WindowFamilies:
    """One series per configured window of each provider (the window label is its limit,
    e.g. ``1000/hour``)."""

    def __init__(self) -> None:
        labels = ["provider", "window"]
        self.used = _gauge("dispatcher_rate_window_used",
                           "Requests granted within a rate window", labels=labels)
        self.limit = _gauge("dispatcher_rate_window_limit", "A rate window's limit",
                            labels=labels)
        self.ratio = _gauge("dispatcher_rate_window_used_ratio",
                            "Share of a rate window in use (1: full)", labels=labels)
        self.reset = _gauge("dispatcher_rate_window_reset_seconds",
                            "Time until the oldest grant leaves a rate window", labels=labels)

    def add(self, provider: str, window: str, state: dict[str, Any]) -> None:
        key = [provider, window]
        self.used.add_metric(key, state["used"])
        self.limit.add_metric(key, state["limit"])
        used, limit = state["used"], state["limit"]
        self.ratio.add_metric(key, min(1.0, used / limit) if limit else 0.0)
        self.reset.add_metric(key, state["resets_in_ms"] / 1000)

    def families(self) -> list[Metric]:
        return [self.used, self.limit, self.ratio, self.reset]
