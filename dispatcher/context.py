"""What a worker's executors share: configuration, Redis, the adapters, pacing, policy."""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import aiohttp

from dispatcher.config import Settings
from dispatcher.decide import Finish
from dispatcher.jobs import InvalidJob, Job, parse_job
from dispatcher.logs import get_logger, info_on
from dispatcher.metrics import RESULTS, count, provider_label
from dispatcher.pacing import Pacer
from dispatcher.policies import PolicyBook
from dispatcher.provider_ops import ProviderOps
from dispatcher.providers import Adapter, dialect
from dispatcher.results import build, item
from dispatcher.store import Store
from dispatcher.timing import Timing

PARSED_KEPT = 4096  # payloads parsed recently (oldest dropped first)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    adapters: dict[str, Adapter]
    pacer: Pacer
    policies: PolicyBook
    consumer: str
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.timing: Timing = self.settings.timing()
        self.ops = ProviderOps(self.store, dict(self.settings.providers), self.timing, self.rng)
        self.rules = self.settings.job_rules()
        self.stored_rules = replace(self.rules, stored=True)
        self.meters = {name: self.pacer.meters[name] for name in self.settings.providers}
        self._http: aiohttp.ClientSession | None = None
        self._parsed: OrderedDict[str, Job | InvalidJob] = OrderedDict()

    def http(self) -> aiohttp.ClientSession:
        """A session for calls that are not to a provider (the pre-dial hook)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    @property
    def ttl(self) -> int:
        return self.settings.worker.dedupe_ttl_s

    def errors(self, provider: str) -> object:
        return dialect(self.settings.providers[provider].kind).errors

    def parse(self, raw: str | bytes | None) -> Job | InvalidJob:
        """A payload just read from the stream: every rule checked."""
        return parse_job(raw, self.rules)

    def parse_stored(self, raw: str | None) -> Job | InvalidJob:
        """A payload that was valid at intake, read back from its job (cached: a worker reads
        the same job at its dial, its polls and its result)."""
        key = raw or ""
        job = self._parsed.get(key)
        if job is None:
            job = self.remember(key, parse_job(raw, self.stored_rules))
        return job

    def remember(self, raw: str, job: Job | InvalidJob) -> Job | InvalidJob:
        """Keep a parsed payload for its dial: intake has just checked every rule on it."""
        self._parsed[raw] = job
        if len(self._parsed) > PARSED_KEPT:
            self._parsed.popitem(last=False)  # O(1); next(iter(dict)) slows as dict holes pile up
        return job

    async def finish(self, job: Job | InvalidJob, fin: Finish, *, attempts: int,
                     first_seen_ms: int | None, entry_id: str | None = None,
                     dtok: str | None = None) -> bool:
        """Write the job's one result; False when another worker already did (or owns it)."""
        res = build(job, fin, attempts=attempts, first_seen_ms=first_seen_ms, now_ms=now_ms())
        wire = res.to_json()
        written = await self.store.finish_one(item(res, entry_id=entry_id, dtok=dtok,
                                                   wire=wire), self.ttl)
        if written:
            count(RESULTS, provider_label(job.provider), res.outcome.value)
            if info_on():
                extra = {k: v for k, v in wire.items() if k in
                         ("outcome", "http_status", "error_code", "answer_status", "reason")}
                get_logger(job_id=res.job_id, provider=job.provider, attempt=attempts).info(
                    "job.result", **extra)
        return bool(written)

