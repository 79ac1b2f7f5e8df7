"""What the executors' unit tests share: a runtime on the recording store double, a fake
provider adapter (in-process: nothing crosses a process boundary here) and a fixed clock."""

from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from dispatcher.config.settings import load_settings
from dispatcher.core.classify import ProviderError
from dispatcher.core.jobs import Job
from dispatcher.core.model import CallState
from dispatcher.core.policies import PolicyBook
from dispatcher.core.timing import Timing
from dispatcher.engine import context, dialer, finisher, intake, lookup, tracker
from dispatcher.engine.context import Runtime
from dispatcher.engine.pacing import Pacer, grant_rules
from dispatcher.providers.base import ProviderFailure, StartResult
from dispatcher.store.types import Granted, ResultItem
from dispatcher.testing import RecordingStore

# a Wednesday, 11:00 in California: inside every default calling window
NOW_MS = 1_781_114_400_000
PROV = "p"


class FixedClock:
    def __init__(self, ms: int):
        self.ms = ms

    def now_ms(self) -> int:
        return self.ms

    def time(self) -> float:
        return self.ms / 1000

    def monotonic(self) -> float:
        return self.ms / 1000


@dataclass
class FakeAdapter:
    """Answers each request with the next scripted answer (a ProviderError is raised)."""

    name: str = PROV
    starts: deque[str | ProviderError] = field(default_factory=deque)
    polls: deque[CallState | ProviderError] = field(default_factory=deque)
    found: deque[list[CallState] | ProviderError] = field(default_factory=deque)
    dialled: list[tuple[str, int]] = field(default_factory=list)

    def check(self, job: Job) -> str | None:
        return None

    def job_fields(self, job: Job) -> frozenset[str]:
        return frozenset()

    def caller(self, job: Job, chosen: str | None) -> str | None:
        return chosen or job.from_

    async def start_call(self, job: Job, call_n: int, chosen: str | None = None
                         ) -> StartResult:
        self.dialled.append((job.id, call_n))
        answer = self.starts.popleft()
        if isinstance(answer, ProviderError):
            raise ProviderFailure(answer)
        return StartResult(answer, ())

    async def get_call(self, call_id: str) -> CallState:
        answer = self.polls.popleft()
        if isinstance(answer, ProviderError):
            raise ProviderFailure(answer)
        return answer

    async def find_calls(self, job_id: str, call_n: int, since: float, cursor: str | None
                         ) -> tuple[list[CallState], str | None]:
        answer = self.found.popleft()
        if isinstance(answer, ProviderError):
            raise ProviderFailure(answer)
        return answer, None

    def poll_interval(self, visits: int, timing: Timing) -> float:
        return timing.poll(visits)

    async def close(self) -> None:
        pass


def fix_clock(monkeypatch: pytest.MonkeyPatch) -> FixedClock:
    """The executors' clocks stopped at ``NOW_MS`` (their ``now_ms`` and ``time``)."""
    fixed = FixedClock(NOW_MS)
    for module in (context, dialer, tracker, intake, finisher):
        monkeypatch.setattr(module, "now_ms", fixed.now_ms)
    fake_time = SimpleNamespace(time=fixed.time, monotonic=fixed.monotonic)
    for module in (dialer, tracker, lookup):
        monkeypatch.setattr(module, "time", fake_time)
    return fixed


def make_runtime(store: RecordingStore, adapter: FakeAdapter | None = None,
                 **sections: dict[str, Any]) -> Runtime:
    data: dict[str, Any] = {
        "redis": {"url": "redis://127.0.0.1:9/0", "namespace": "t"},
        "retry": {"base_delay_s": 1.0, "max_delay_s": 8.0},
        "log_format": "json", "log_level": "warning",
        "providers": {PROV: {"kind": "telecho", "base_url": "http://127.0.0.1:9/api/v1/public",
                             "api_key_env": "TEST_TELECHO_KEY",
                             "phone_number_id": "tel_pn_main", "limits": ["1000/minute"],
                             "request_timeout_s": 2.0}},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    settings = load_settings(None, **data)
    policies = PolicyBook(settings.policy, settings.campaigns)
    rules = {name: grant_rules(name, cfg, track_calls=settings.tracking.track_calls,
                               slot_lease_s=settings.tracking.slot_lease_s)
             for name, cfg in settings.providers.items()}
    adapters: dict[str, Any] = {PROV: adapter} if adapter is not None else {}
    return Runtime(settings, store, adapters, Pacer(store, rules, "me"), policies, "me",
                   random.Random(7))


def payload(job_id: str = "j1", **over: Any) -> str:
    return json.dumps({"id": job_id, "to": "+14155550123", "provider": PROV,
                       "workflow_id": "wf_1", **over})


def granted(job_id: str = "j1", *, attempts: int = 1, call_n: int = 1, unsure: bool = False,
            probe: bool = False, hook_failures: int = 0, raw: str | None = None) -> Granted:
    return Granted(id=job_id, raw=raw or payload(job_id), attempts=attempts, call_n=call_n,
                   unsure=unsure, tok="tok1", campaign="", priority="normal",
                   first_seen_ms=NOW_MS - 1000, ready_since_ms=NOW_MS - 1000, redials=0,
                   calls=(), probe=probe, provider=PROV, dial_ms=NOW_MS - 100,
                   hook_failures=hook_failures)


def result_of(store: RecordingStore) -> ResultItem:
    """The one result the executor wrote."""
    [args] = store.args_of("finish_one")
    item: ResultItem = args["item"]
    return item
