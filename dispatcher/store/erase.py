"""What the dispatcher keeps about people, for how long, and erasing it on request.

``forget`` answers a right-to-erasure request: it finds the person's jobs (by id, or by
number through the job hashes and the payloads still queued), their results entries, and
erases them with one FORGET script per batch. The do-not-call set is never erased: keeping a
number there is how the objection to calls is honoured. ``trim_results`` drops results older
than ``results.max_age_s``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from dispatcher.core.numbers import dnc_key, normalise
from dispatcher.store import keys as K
from dispatcher.store.reads import peek
from dispatcher.store.scripts import Scripts, as_list

PAGE = 1000
BATCH = 100
TAIL = 1000
FENCE_S = 3600


@dataclass
class Erased:
    """What ``forget`` erased (and kept)."""

    jobs: list[str] = field(default_factory=list)
    fenced: list[str] = field(default_factory=list)   # in flight: a bare fence for a while
    unknown: list[str] = field(default_factory=list)  # ids with nothing to erase
    timelines: int = 0
    calls: int = 0
    results: int = 0
    entries: int = 0  # payloads still queued in the jobs stream
    number_logs: int = 0
    dnc_kept: list[str] = field(default_factory=list)

    def add(self, res: dict[str, Any]) -> None:
        for name in ("jobs", "fenced", "unknown"):
            getattr(self, name).extend(str(x) for x in as_list(res.get(name)))
        for name in ("timelines", "calls", "results", "entries", "number_logs"):
            setattr(self, name, getattr(self, name) + int(res.get(name) or 0))

    def to_json(self) -> dict[str, Any]:
        return {k: (sorted(set(v)) if isinstance(v, list) else v)
                for k, v in self.__dict__.items()}


def _payload(raw: str | None) -> dict[str, Any]:
    try:
        job = json.loads(raw or "")
    except ValueError:
        return {}
    return job if isinstance(job, dict) else {}


def _e164(text: str) -> str:
    return normalise(text, "possible")


def _same_number(to: Any, numbers: set[str]) -> bool:
    if not isinstance(to, str) or not numbers:
        return False
    try:
        return _e164(to) in numbers
    except ValueError:
        return to in numbers


class Retention:
    r: aioredis.Redis
    k: K.Keys
    s: Scripts

    async def trim_results(self, max_age_s: float) -> int:
        """Drop results entries older than ``max_age_s`` (by entry id, i.e. the time Redis
        wrote them); returns how many went. Approximate (whole stream nodes), so cheap to
        call often: the worker's upkeep calls it about once a minute."""
        t = await self.r.time()
        cutoff = int(t[0]) * 1000 + int(t[1]) // 1000 - round(max_age_s * 1000)
        if cutoff <= 0:
            return 0
        return int(await self.r.xtrim(self.k.results, minid=f"{cutoff}-0", approximate=True))

    async def forget(self, ids: Iterable[str] = (), numbers: Iterable[str] = (), *,
                     fence_s: int = FENCE_S) -> Erased:
        """Erase everything held about these job ids and these numbers (any format the jobs
        accept; raises ValueError for one that is not a phone number)."""
        wanted = {str(i) for i in ids}
        nums = {_e164(n) for n in numbers}
        wanted |= await self._ids_of_numbers(nums)
        entries, last_job = await self._queued(wanted, nums)
        results, last_result = await self._results(wanted)
        out = Erased()
        todo = sorted(wanted)
        first = True
        while first or todo:
            batch, todo = todo[:BATCH], todo[BATCH:]
            res = await self._forget_batch(batch, sorted(nums) if first else [], entries,
                                           results, last_job, last_result, fence_s)
            first = False
            out.add(res)
            if res.get("more"):  # many entries arrived meanwhile: scan the new ones too
                todo = sorted(set(todo) | set(batch))
                more_entries, last_job = await self._queued(wanted, nums, last_job)
                more_results, last_result = await self._results(wanted, last_result)
                entries += more_entries
                for jid, eids in more_results.items():
                    results.setdefault(jid, []).extend(eids)
        out.dnc_kept = await self._dnc_kept(nums)
        return out

    async def _forget_batch(self, batch: Sequence[str], nums: Sequence[str],
                            entries: list[dict[str, str | None]], results: dict[str, list[str]],
                            last_job: str, last_result: str, fence_s: int) -> dict[str, Any]:
        mine = set(batch)
        res: dict[str, Any] = await self.s.call(
            "forget", group=K.GROUP, ids=list(batch), numbers=list(nums),
            results=[e for i in batch for e in results.get(i, [])],
            entries=[x for x in entries if x["id"] in mine or (x["id"] is None and nums)],
            replies=await self._replies(mine, nums),
            after_results=last_result, after_jobs=last_job, tail=TAIL, fence=fence_s)
        return res

    async def _ids_of_numbers(self, nums: set[str]) -> set[str]:
        """Job ids whose hash names one of these numbers (a scan of the namespace's jobs)."""
        if not nums:
            return set()
        found: set[str] = set()
        # sleeping jobs first: one that wakes during the scans is then met as a hash (a job
        # only ever goes to sleep in the script that creates it)
        page: list[str] = []
        async for job_id, _ in self.r.hscan_iter(self.k.dormant, count=PAGE):
            page.append(str(job_id))
            if len(page) >= PAGE:
                found |= await self._match_sleeping(page, nums)
                page = []
        if page:
            found |= await self._match_sleeping(page, nums)
        batch: list[str] = []
        prefix = self.k.job_prefix
        async for key in self.r.scan_iter(match=prefix + "*", count=PAGE):
            batch.append(str(key))
            if len(batch) >= PAGE:
                found |= await self._match_to(batch, nums, prefix)
                batch = []
        if batch:
            found |= await self._match_to(batch, nums, prefix)
        return found

    async def _match_sleeping(self, job_ids: list[str], nums: set[str]) -> set[str]:
        return {str(j["id"]) for j in await peek(self.s, job_ids)
                if j["fields"].get("to") in nums}

    async def _match_to(self, keys: list[str], nums: set[str], prefix: str) -> set[str]:
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "to")
        tos = await pipe.execute()
        return {k[len(prefix):] for k, to in zip(keys, tos, strict=True) if to in nums}

    async def _pages(self, key: str, after: str) -> Any:
        while True:
            page: Any = await self.r.xrange(key, min=f"({after}", max="+", count=PAGE)
            if not page:
                return
            for entry in page:
                yield entry
            after = str(page[-1][0])

    async def _queued(self, wanted: set[str], nums: set[str], after: str = "0-0"
                      ) -> tuple[list[dict[str, str | None]], str]:
        """Payloads not yet ingested that carry a wanted id or number (adds their ids)."""
        found: list[dict[str, str | None]] = []
        last = after
        async for eid, fields in self._pages(self.k.jobs, after):
            last = str(eid)
            job = _payload((fields or {}).get("job"))
            jid = job.get("id") if isinstance(job.get("id"), str) else None
            if (jid and jid in wanted) or _same_number(job.get("to"), nums):
                if jid:
                    wanted.add(jid)
                found.append({"e": last, "id": jid})
        return found, last

    async def _results(self, wanted: set[str], after: str = "0-0"
                       ) -> tuple[dict[str, list[str]], str]:
        """Results entries of the wanted ids, by id."""
        found: dict[str, list[str]] = {}
        last = after
        async for eid, fields in self._pages(self.k.results, after):
            last = str(eid)
            jid = _payload((fields or {}).get("result")).get("job_id")
            if isinstance(jid, str) and jid in wanted:
                found.setdefault(jid, []).append(last)
        return found, last

    async def _replies(self, ids: set[str], nums: Sequence[str]) -> list[str]:
        """Cached grant replies (kept 5 s for a retried call) that carry these jobs."""
        needles = [json.dumps(i)[1:-1] for i in ids] + list(nums)
        found = []
        async for key in self.r.scan_iter(match=self.k.reply_prefix + "*", count=PAGE):
            text = str(await self.r.get(key) or "")
            if any(n and n in text for n in needles):
                found.append(str(key))
        return found

    async def _dnc_kept(self, nums: set[str]) -> list[str]:
        kept = []
        for n in sorted(nums):
            pipe = self.r.pipeline(transaction=False)
            for hashed in (False, True):
                pipe.sismember(self.k.dnc, dnc_key(n, hashed))
            if any(await pipe.execute()):
                kept.append(n)
        return kept
