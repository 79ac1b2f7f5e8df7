"""What each consumer needs of the store: one narrow Protocol per consumer, so an executor
states the Redis steps it takes, and a test double (``dispatcher.testing``) only answers
those. ``Store`` satisfies them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from dispatcher.store.callerids import CallerIdEnded, CallerIdHealth
from dispatcher.store.limits import LimitsOverride
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


class ResultStore(Protocol):
    """Writing one job's result (every executor ends a job this way)."""

    async def finish_one(self, item: ResultItem, ttl_s: int) -> bool: ...


class Deferring(Protocol):
    async def defer(self, job_id: str, *, to: DeferTo, reason: str, until_ms: int,
                    grant_token: str | None = None, fields: dict[JobField, Any] | None = None,
                    deadline_ms: int = 0, refund_rate: bool = False,
                    refund_number: bool = False, detail: str = "") -> bool: ...


class IntakeStore(ResultStore, Protocol):
    """Placing a batch of stream entries (INGEST), and results for unreadable ones."""

    async def finish(self, items: Sequence[ResultItem], ttl_s: int) -> int: ...
    async def ingest(self, entries: Sequence[Placement], grants: Sequence[GrantArgs] = ()
                     ) -> tuple[list[tuple[str, Ingested, str]], list[GrantReply]]: ...


class DialerStore(ResultStore, Deferring, Protocol):
    """A granted job's exits: defer, track, finish; a late grant moved; a crash counted."""

    async def regrant(self, rules: GrantRules, job_id: str, grant_token: str, tok: str, *,
                      keep: bool = False) -> Admit: ...
    async def track_one(self, item: TrackItem) -> TrackConflict | None: ...
    async def bump(self, job_id: str, field: JobField) -> int: ...


class TrackerStore(ResultStore, Deferring, Protocol):
    """Leasing live calls (VISIT), their next visit (REVISIT), a redial (DEFER)."""

    async def visit(self, providers: Sequence[str], lease_ms: int, limit: int,
                    consumer: str | None = None) -> list[JobView]: ...
    async def revisit(self, items: Sequence[RevisitItem]) -> None: ...
    async def caller_id_ended(self, provider: str, caller_id: str, call_id: str, *,
                              answered: bool, keep: int, rate: float | None,
                              rest: bool) -> CallerIdEnded: ...
    async def bill(self, campaign: str, day: str, job_id: str, worst: int, call_id: str,
                   cost: int, keep_s: int = 3 * 86_400) -> bool: ...


class FinisherStore(ResultStore, Protocol):
    async def claim_finishing(self, lease_ms: int, limit: int,
                              ids: Sequence[str] | None = None) -> list[JobView]: ...


class PacerStore(Protocol):
    """Grants for requests that are not dials, and late answers moved in the log."""

    async def admit(self, rules: GrantRules, tok: str, *, now_ms: int | None = None
                    ) -> Admit: ...
    async def move_later(self, provider: str, moves: Sequence[tuple[str, int]]
                         ) -> list[bool]: ...


class ProviderStore(Protocol):
    """Provider-wide effects: cooldown, halt and resume, fewer slots, the provider's count."""

    async def set_cooldown(self, provider: str, ms: int) -> None: ...
    async def count_rate_limited(self) -> None: ...
    async def halt(self, provider: str, reason: str, code: str, first_probe_ms: int,
                   max_probe_ms: int) -> Halt: ...
    async def unpark(self, provider: str, max_defer_ms: int = 86_400_000) -> int: ...
    async def shrink_slots(self, provider: str, ttl_ms: int) -> int: ...
    async def observe(self, provider: str, limit: int, window_ms: int, remaining: int,
                      reset_ms: int, margin_ms: int = 0) -> bool: ...


class EngineStore(IntakeStore, DialerStore, TrackerStore, FinisherStore, PacerStore,
                  ProviderStore, Protocol):
    """Everything the worker's executors share (``Runtime.store``)."""


class OperatorReads(Protocol):
    """What operators read for ``dispatcher status``: live counts, waiting sets, the stream's
    backlog, each provider's budget and the workers' heartbeats (read-only)."""

    async def server_ms(self) -> int: ...
    async def counts(self, campaign: str | None = None) -> dict[str, int]: ...
    async def counts_and_parked(self, providers: Sequence[str]
                                ) -> tuple[dict[str, int], dict[str, int]]: ...
    async def queue_sizes(self, now: int) -> dict[str, int]: ...
    async def backlog(self) -> dict[str, int]: ...
    async def provider_state(self, provider: str, windows: list[tuple[int, int]],
                             margin_ms: int, now: int) -> dict[str, Any]: ...
    async def unconfigured_parked(self, configured: set[str]) -> dict[str, int]: ...
    async def group_info(self) -> dict[str, Any]: ...
    async def consumer_beats(self) -> list[tuple[str, int]]: ...
    async def limits_get(self, provider: str) -> LimitsOverride: ...
    async def caller_id_health(self, provider: str, ids: Sequence[str]
                               ) -> list[CallerIdHealth]: ...
