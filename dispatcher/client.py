"""The producer's Python API: push jobs in the wire format of the job contract, cancel them,
wait for and read results, and steer campaigns. ``Client`` is asyncio; ``SyncClient`` is the
same API for code without an event loop.

    async with Client("redis://localhost:6379/0") as c:
        sent = await c.enqueue([{"id": "order-1", "to": "+14155550100"}])
        result = await c.wait("order-1", timeout=600)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from dispatcher.config.settings import RedisConfig
from dispatcher.core.jobs import InvalidJob, parse_job
from dispatcher.ops import campaigns
from dispatcher.ops.campaigns import CampaignStatus
from dispatcher.store import Store, connect

T = TypeVar("T")
READ_BATCH = 500


class JobRejected(ValueError):
    """Raised by ``enqueue(validate=True)``: the job would only produce an ``invalid`` result."""


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue`` pushed. ``duplicates`` are ids the dispatcher already knew when the
    batch was pushed (read by a worker before, result or not) or that came earlier in the
    same batch: those entries are read and dropped, never dialled again.

    The check is advisory. An id pushed a moment ago and not yet read by a worker is not known
    yet, so pushing it again right away is reported as new (the dispatcher still dials it
    once); an id whose result is older than ``worker.dedupe_ttl_s`` is forgotten and is new.
    """

    entry_ids: list[str]
    duplicates: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entry_ids)


def _wire(job: dict[str, Any] | str) -> str:
    return job if isinstance(job, str) else json.dumps(job, separators=(",", ":"))


def _job_id(job: dict[str, Any] | str) -> Any:
    if isinstance(job, dict):
        return job.get("id")
    try:
        parsed = json.loads(job)
    except ValueError:
        return None
    return parsed.get("id") if isinstance(parsed, dict) else None


class Client:
    """An asyncio producer. ``providers`` (configured provider names) lets ``cancel_campaign``
    reach every ready list at once; without it they are looked up in Redis."""

    def __init__(self, redis_url: str | RedisConfig = "redis://localhost:6379/0",
                 namespace: str = "dispatcher", *, providers: Iterable[str] = (),
                 store: Store | None = None):
        self.store = store or Store(connect(redis_url), namespace)
        self.providers = tuple(providers)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self.store.close()

    # -- jobs -----------------------------------------------------------------------------------
    async def enqueue(self, jobs: Iterable[dict[str, Any] | str], *, validate: bool = True
                      ) -> Enqueued:
        """XADD each job (a dict, or its JSON text) in one pipeline; with ``validate``, refuse
        the whole batch if any job is malformed. Tells which ids were already known."""
        batch = list(jobs)
        if validate:
            for index, job in enumerate(batch):
                parsed = parse_job(_wire(job))
                if isinstance(parsed, InvalidJob):
                    raise JobRejected(f"job {index} ({_job_id(job)!r}): {parsed.error}")
        ids = [_job_id(j) for j in batch]
        entry_ids, known = await self.store.push_jobs(
            [(None if i is None else str(i), _wire(j)) for i, j in zip(ids, batch, strict=True)])
        seen: set[Any] = set()
        duplicates = []
        for job_id, was_known in zip(ids, known, strict=True):
            if isinstance(job_id, str) and (was_known or job_id in seen):
                duplicates.append(job_id)
            seen.add(job_id)
        return Enqueued(entry_ids, duplicates)

    async def cancel(self, job_id: str, ttl_s: int = 7 * 86400) -> bool:
        """True when the job will get ``cancelled`` (now, or when it is pushed); False when it
        is already dialled or finished."""
        return await self.store.cancel(job_id, ttl_s)

    # -- results --------------------------------------------------------------------------------
    async def results(self, start: str = "0", follow: bool = False, block_ms: int = 1000,
                      campaign: str | None = None
                      ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(stream id, result) after ``start``; ``campaign`` keeps that campaign's only."""
        last = start
        while True:
            batch = await self.store.read_results(last, READ_BATCH, block_ms if follow else None)
            for eid, res in batch:
                last = eid
                if campaign is None or res.get("campaign") == campaign:
                    yield eid, res
            if not batch and not follow:
                return

    async def wait(self, job_id: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """The job's result, waiting up to ``timeout`` seconds for it (TimeoutError then).

        A job that already has a result is found from its finishing time, without reading the
        whole results stream; otherwise new results are followed until its own arrives.
        LookupError: the job finished but its result was trimmed away (``results.maxlen``).
        """
        deadline = time.monotonic() + timeout
        last = await self.store.newest_result_id()
        done_ms = await self.store.done_ms(job_id)
        if done_ms is not None:  # the script that set it wrote the result in the same step
            return await self._result_at(job_id, done_ms)
        while (left := deadline - time.monotonic()) > 0:
            batch = await self.store.read_results(last, READ_BATCH, max(1, int(left * 1000)))
            for eid, res in batch:
                last = eid
                if res.get("job_id") == job_id:
                    return res
        raise TimeoutError(f"no result for job {job_id!r} within {timeout} s")

    async def _result_at(self, job_id: str, done_ms: int) -> dict[str, Any]:
        """Scan the results written from ``done_ms`` on (a result's stream id is its time)."""
        start = f"{max(done_ms - 1000, 0)}-0"
        while True:
            entries = await self.store.results_from(start, READ_BATCH)
            for _, res in entries:
                if res.get("job_id") == job_id:
                    return res
            if len(entries) < READ_BATCH:
                raise LookupError(f"job {job_id!r} finished but its result is no longer in "
                                  f"the results stream (trimmed by results.maxlen)")
            start = "(" + entries[-1][0]

    # -- campaigns -------------------------------------------------------------------------------
    async def pause(self, campaign: str) -> None:
        """No new dial for the campaign's jobs, on every worker from its next grant."""
        await campaigns.control(self.store, "pause", campaign, self.providers)

    async def resume(self, campaign: str) -> None:
        """Dial again; also lifts a cancel for jobs pushed from now on."""
        await campaigns.control(self.store, "resume", campaign, self.providers)

    async def cancel_campaign(self, campaign: str) -> int:
        """Every job of the campaign not yet dialled gets ``cancelled`` (and later ones too,
        until ``resume``); returns how many were cancelled now."""
        return await campaigns.control(self.store, "cancel", campaign, self.providers)

    async def campaign(self, name: str) -> CampaignStatus | None:
        return await campaigns.status(self.store, name)

    async def campaigns(self) -> list[CampaignStatus]:
        return await campaigns.statuses(self.store)


class SyncClient:
    """``Client`` for code without an event loop (scripts, WSGI apps, notebooks use the async
    one). Not thread-safe: one instance per thread."""

    def __init__(self, redis_url: str = "redis://localhost:6379/0",
                 namespace: str = "dispatcher", *, providers: Iterable[str] = ()):
        self._runner = asyncio.Runner()
        self._client: Client = self._run(_make(redis_url, namespace, tuple(providers)))

    def _run(self, aw: Awaitable[T]) -> T:
        async def call() -> T:
            return await aw
        return self._runner.run(call())

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._run(self._client.close())
        finally:
            self._runner.close()

    def enqueue(self, jobs: Iterable[dict[str, Any] | str], *, validate: bool = True
                ) -> Enqueued:
        return self._run(self._client.enqueue(jobs, validate=validate))

    def cancel(self, job_id: str, ttl_s: int = 7 * 86400) -> bool:
        return self._run(self._client.cancel(job_id, ttl_s))

    def wait(self, job_id: str, timeout: float) -> dict[str, Any]:
        return self._run(self._client.wait(job_id, timeout))

    def results(self, start: str = "0", follow: bool = False, block_ms: int = 1000,
                campaign: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        it = self._client.results(start, follow, block_ms, campaign).__aiter__()
        while True:
            try:
                yield self._run(it.__anext__())
            except StopAsyncIteration:
                return

    def pause(self, campaign: str) -> None:
        self._run(self._client.pause(campaign))

    def resume(self, campaign: str) -> None:
        self._run(self._client.resume(campaign))

    def cancel_campaign(self, campaign: str) -> int:
        return self._run(self._client.cancel_campaign(campaign))

    def campaign(self, name: str) -> CampaignStatus | None:
        return self._run(self._client.campaign(name))

    def campaigns(self) -> list[CampaignStatus]:
        return self._run(self._client.campaigns())


async def _make(url: str, ns: str, providers: tuple[str, ...]) -> Client:
    """Built inside the runner's loop, so the connection pool belongs to it."""
    return Client(url, ns, providers=providers)

