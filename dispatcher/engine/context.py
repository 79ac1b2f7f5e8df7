"""What a worker's executors share: configuration, Redis, the adapters, pacing, policy."""

from __future__ import annotations

import os
import random
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import aiohttp

from dispatcher.config.settings import Settings, read_secret
from dispatcher.core.decide import Finish
from dispatcher.core.jobs import InvalidJob, Job, parse_job
from dispatcher.core.policies import PolicyBook
from dispatcher.core.timing import Timing
from dispatcher.engine.pacing import Pacer
from dispatcher.engine.provider_ops import ProviderOps
from dispatcher.engine.results import build, item
from dispatcher.logs import get_logger, info_on
from dispatcher.metrics import RESULTS, count, provider_label
from dispatcher.providers import Adapter, build_adapter, dialect
from dispatcher.store.ports import EngineStore

# payloads parsed recently: intake runs ahead of the dials (up to intake_max_ready jobs), and a
# dial that finds its payload here is spared a second parse; bounded in entries and in text (a
# payload may be padded up to max_payload_bytes)
PARSED_KEPT = 8192
PARSED_CHARS = 4 << 20


def now_ms() -> int:
    return int(time.time() * 1000)


class Parsed:
    """Parsed payloads by their text, the oldest dropped first once there are more than
    ``entries`` or their texts add up to more than ``chars``."""

    def __init__(self, entries: int = PARSED_KEPT, chars: int = PARSED_CHARS):
        self.entries, self.chars = entries, chars
        self._jobs: OrderedDict[str, Job | InvalidJob] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, raw: str) -> Job | InvalidJob | None:
        return self._jobs.get(raw)

    def put(self, raw: str, job: Job | InvalidJob) -> None:
        if raw not in self._jobs:
            self._chars += len(raw)
        self._jobs[raw] = job
        while len(self._jobs) > self.entries or self._chars > self.chars:
            old, _ = self._jobs.popitem(last=False)  # O(1), unlike next(iter(dict)) with holes
            self._chars -= len(old)


@dataclass
class Runtime:
    settings: Settings
    store: EngineStore
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
        self._parsed = Parsed()

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
        self._parsed.put(raw, job)
        return job

    async def finish(self, job: Job | InvalidJob, fin: Finish, *, attempts: int,
                     first_seen_ms: int | None, entry_id: str | None = None,
                     grant_token: str | None = None) -> bool:
        """Write the job's one result; False when another worker already did (or owns it)."""
        res = build(job, fin, attempts=attempts, first_seen_ms=first_seen_ms, now_ms=now_ms())
        wire = res.to_json()
        written = await self.store.finish_one(item(res, entry_id=entry_id, grant_token=grant_token,
                                                   wire=wire), self.ttl)
        if written:
            count(RESULTS, provider_label(job.provider), res.outcome.value)
            if info_on():
                extra = {k: v for k, v in wire.items() if k in
                         ("outcome", "http_status", "error_code", "answer_status", "reason")}
                get_logger(job_id=res.job_id, provider=job.provider, attempt=attempts).info(
                    "job.result", **extra)
        return bool(written)


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"


def build_adapters(settings: Settings) -> dict[str, Adapter]:
    out = {}
    for name, cfg in settings.providers.items():
        env, path = cfg.secrets()["api_key"]
        key = read_secret(env, path, f"providers.{name}.api_key") or ""
        out[name] = build_adapter(name, cfg, key, settings.worker.concurrency)
    return out
