"""What a provider dialect is: its configuration model, its adapter, its error table and (if
it has them) its webhooks. Adding a dialect means a folder like ``telecho/`` and one line in
the registry (``providers/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dispatcher.core.callerids import CallerIdPool
from dispatcher.core.classify import DialectTable
from dispatcher.core.jobs import Job
from dispatcher.core.limits import LimitList, Window, margin_ms, parse_limit
from dispatcher.core.model import CallState
from dispatcher.core.timing import Timing
from dispatcher.providers.base import StartResult


class CommonConfig(BaseModel):
    """Keys every provider account has (``[providers.<name>]``)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    api_key_env: str | None = None
    api_key_file: str | None = None
    limits: LimitList = Field(default_factory=list)
    max_concurrent_calls: int | None = Field(default=None, ge=1)
    request_timeout_s: float = Field(default=10.0, gt=0)
    send_margin_s: float = Field(default=0.01, ge=0, le=10)
    pace_short_windows: bool = False
    # the share of every window only high-priority jobs may take (callbacks, urgent calls)
    reserve_high: float = Field(default=0.0, ge=0, lt=1)
    caller_ids: CallerIdPool | None = None  # numbers to call from, chosen per call
    # spend: what a minute costs, how calls are rounded, and how long a live call can last
    # (counted whole until it ends, so a budget is never passed)
    price_per_minute: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    billing_increment_s: int = Field(default=60, ge=1, le=3600)
    max_call_s: float = Field(default=600.0, gt=0, le=86_400)
    agent_id: str | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def windows(self) -> list[Window]:
        return [parse_limit(x) for x in self.limits]

    @property
    def margin_ms(self) -> int:
        """The pacing margin (see limits.margin_ms)."""
        return margin_ms(self.send_margin_s, self.windows)

    def secrets(self) -> dict[str, tuple[str | None, str | None]]:
        """Every secret this account needs: name -> (env var, file)."""
        return {"api_key": (self.api_key_env, self.api_key_file)}


class Adapter(Protocol):
    kind: str
    name: str

    def check(self, job: Job) -> str | None: ...
    def caller(self, job: Job, chosen: str | None) -> str | None: ...
    def job_fields(self, job: Job) -> frozenset[str]: ...
    async def start_call(self, job: Job, call_n: int, chosen: str | None = None
                         ) -> StartResult: ...
    async def get_call(self, call_id: str) -> CallState: ...
    async def find_calls(self, job_id: str, call_n: int, since: float, cursor: str | None
                         ) -> tuple[list[CallState], str | None]: ...
    def poll_interval(self, visits: int, timing: Timing) -> float: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class WebhookEnd:
    """A call's end as a webhook reported it."""

    event_id: str
    call_id: str
    fields: dict[str, str]


@dataclass(frozen=True)
class Webhooks:
    """A dialect's webhooks: how to check a delivery and read the call end it reports.

    ``verify(cfg, secret, body, headers, now)`` -> None when genuine, else why not;
    ``parse(body)`` -> a WebhookEnd, None for events that are not a call's end, or raises
    ValueError for a malformed event; ``normalise(fields)`` -> the call's CallState.
    """

    verify: Callable[[Any, str, bytes, dict[str, str], float], str | None]
    parse: Callable[[bytes], WebhookEnd | None]
    normalise: Callable[[dict[str, str]], CallState]


@dataclass(frozen=True)
class Dialect:
    kind: str
    config: type[CommonConfig]
    adapter: Callable[[str, Any, str, int], Adapter]  # (name, config, api key, concurrency)
    errors: DialectTable
    webhooks: Webhooks | None = None
