"""What the dispatcher keeps about people, for how long, and erasing it on request.

``forget`` answers a right-to-erasure request: it finds the person's jobs (by id, or by
number: every job, sleeping job, queued payload, result and cached reply that names the number
anywhere — its ``to``, ``from``, metadata, an error message — in any spelling, see
``mentions``), their results entries, and erases them with one FORGET script per batch. The
do-not-call set is never erased: keeping a number there is how the objection to calls is
honoured; nor are the number's revocations in the consent ledger (kept under its SHA-256),
while its consents are erased. ``trim_results`` drops results older
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
from dispatcher.store.mentions import Needle, mentions, needle
from dispatcher.store.protocol import ForgetArgs
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
    subject_logs: int = 0  # per-subject call logs (named after the person or lead)
    dnc_kept: list[str] = field(default_factory=list)
    revocations_kept: list[str] = field(default_factory=list)  # numbers, hashed in the ledger
    consents_erased: int = 0

    def add(self, res: dict[str, Any]) -> None:
        for name in ("jobs", "fenced", "unknown"):
            getattr(self, name).extend(str(x) for x in as_list(res.get(name)))
        for name in ("timelines", "calls", "results", "entries", "number_logs",
                     "subject_logs"):
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


def _text(value: Any) -> str:
    """Everything a stored value holds, as one text to search."""
    if isinstance(value, dict):
        return "\n".join(f"{k}\n{v}" for k, v in value.items())
    return "" if value is None else str(value)


class Retention:
    r: aioredis.Redis
    k: K.Keys
    s: Scripts

    async def trim_results(self, max_age_s: float) -> int:
        """Drop results entries older than ``max_age_s`` (by entry id, i.e. the time Redis
        wrote them); returns how many went. Approximate (whole stream nodes), so cheap to
        call often: the worker's upkeep calls it about once a minute."""
        server_time = await self.r.time()
        cutoff = int(server_time[0]) * 1000 + int(server_time[1]) // 1000 - round(max_age_s * 1000)
        if cutoff <= 0:
            return 0
        return int(await self.r.xtrim(self.k.results, minid=f"{cutoff}-0", approximate=True))

    async def forget(self, ids: Iterable[str] = (), numbers: Iterable[str] = (), *,
                     fence_s: int = FENCE_S) -> Erased:
        """Erase everything held about these job ids and these numbers (any format the jobs
        accept; raises ValueError for one that is not a phone number)."""
        wanted = {str(i) for i in ids}
        nums = {_e164(n) for n in numbers}
        needles = [needle(n) for n in sorted(nums)]
        wanted |= await self._ids_of_numbers(needles)
        entries, last_job = await self._queued(wanted, needles)
        results, last_result = await self._results(wanted, needles)
        out = Erased()
        todo = sorted(wanted)
        first = True
        while first or todo:
            batch, todo = todo[:BATCH], todo[BATCH:]
            res = await self._forget_batch(batch, needles if first else [], entries,
                                           results, last_job, last_result, fence_s)
            first = False
            out.add(res)
            if res.get("more"):  # many entries arrived meanwhile: scan the new ones too
                todo = sorted(set(todo) | set(batch))
                more_entries, last_job = await self._queued(wanted, needles, last_job)
                more_results, last_result = await self._results(wanted, needles, last_result)
                entries += more_entries
                for jid, eids in more_results.items():
                    results.setdefault(jid, []).extend(eids)
        out.dnc_kept = await self._dnc_kept(nums)
        for number in sorted(nums):
            res = await self.s.call("unconsent", plain=dnc_key(number, False),
                                    hashed=dnc_key(number, True))
            out.consents_erased += int(res["erased"])
            if int(res["kept"]):
                out.revocations_kept.append(number)
        return out

    async def _forget_batch(self, batch: Sequence[str], needles: Sequence[Needle],
                            entries: list[dict[str, str]], results: dict[str, list[str]],
                            last_job: str, last_result: str, fence_s: int) -> dict[str, Any]:
        """``needles`` only in the first batch: it also erases what names the numbers but
        belongs to no job (a payload or a result without an id, the per-number logs)."""
        mine = set(batch) | ({""} if needles else set())
        args = ForgetArgs(
            group=K.GROUP, ids=list(batch), numbers=[n.e164 for n in needles],
            patterns=[n.lua for n in needles],
            results=[e for i in sorted(mine) for e in results.get(i, [])],
            entries=[x for x in entries if x.get("id", "") in mine],
            replies=await self._replies(set(batch), needles),
            after_results=last_result, after_jobs=last_job, tail=TAIL, fence=fence_s)
        res: dict[str, Any] = await self.s.call("forget", **args)
        return res

    async def _ids_of_numbers(self, needles: list[Needle]) -> set[str]:
        """Job ids whose hash (or packed form) names one of these numbers anywhere."""
        if not needles:
            return set()
        found: set[str] = set()
        # sleeping jobs first: one that wakes during the scans is then met as a hash (a job
        # only ever goes to sleep in the script that creates it)
        page: list[str] = []
        async for job_id, _ in self.r.hscan_iter(self.k.dormant, count=PAGE):
            page.append(str(job_id))
            if len(page) >= PAGE:
                found |= await self._match_sleeping(page, needles)
                page = []
        if page:
            found |= await self._match_sleeping(page, needles)
        batch: list[str] = []
        prefix = self.k.job_prefix
        async for key in self.r.scan_iter(match=prefix + "*", count=PAGE):
            batch.append(str(key))
            if len(batch) >= PAGE:
                found |= await self._match_hashes(batch, needles, prefix)
                batch = []
        if batch:
            found |= await self._match_hashes(batch, needles, prefix)
        return found

    async def _match_sleeping(self, job_ids: list[str], needles: list[Needle]) -> set[str]:
        return {str(j["id"]) for j in await peek(self.s, job_ids)
                if mentions(_text(j["fields"]), needles)}

    async def _match_hashes(self, keys: list[str], needles: list[Needle], prefix: str
                            ) -> set[str]:
        # everything a job holds about its person came from its payload (raw); `to` is the
        # number in E.164
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, "to", "raw")
        held = await pipe.execute()
        return {k[len(prefix):] for k, fields in zip(keys, held, strict=True)
                if mentions("\n".join(f or "" for f in fields), needles)}

    async def _pages(self, key: str, after: str) -> Any:
        while True:
            page: Any = await self.r.xrange(key, min=f"({after}", max="+", count=PAGE)
            if not page:
                return
            for entry in page:
                yield entry
            after = str(page[-1][0])

    async def _queued(self, wanted: set[str], needles: list[Needle], after: str = "0-0"
                      ) -> tuple[list[dict[str, str]], str]:
        """Payloads not yet ingested that carry a wanted id or name a number (adds their
        ids); one without a readable id is listed with none."""
        found: list[dict[str, str]] = []
        last = after
        async for eid, fields in self._pages(self.k.jobs, after):
            last = str(eid)
            raw = (fields or {}).get("job")
            jid = _payload(raw).get("id")
            jid = jid if isinstance(jid, str) else None
            if (jid and jid in wanted) or mentions(_text(raw), needles):
                if jid:
                    wanted.add(jid)
                found.append({"e": last, "id": jid} if jid else {"e": last})
        return found, last

    async def _results(self, wanted: set[str], needles: list[Needle], after: str = "0-0"
                       ) -> tuple[dict[str, list[str]], str]:
        """Results entries of the wanted ids, by id, and those that name a number (under
        their job's id, which becomes wanted, or under "" when they have none)."""
        found: dict[str, list[str]] = {}
        last = after
        async for eid, fields in self._pages(self.k.results, after):
            last = str(eid)
            text = (fields or {}).get("result")
            jid = _payload(text).get("job_id")
            key = jid if isinstance(jid, str) else ""
            if (key and key in wanted) or mentions(_text(text), needles):
                if key:
                    wanted.add(key)
                found.setdefault(key, []).append(last)
        return found, last

    async def _replies(self, ids: set[str], needles: Sequence[Needle]) -> list[str]:
        """Cached grant replies (kept 5 s for a retried call) that carry these jobs or name
        these numbers."""
        quoted = [json.dumps(i)[1:-1] for i in ids]
        found = []
        async for key in self.r.scan_iter(match=self.k.reply_prefix + "*", count=PAGE):
            text = str(await self.r.get(key) or "")
            if any(q and q in text for q in quoted) or mentions(text, needles):
                found.append(str(key))
        return found

    async def _dnc_kept(self, nums: set[str]) -> list[str]:
        kept = []
        for number in sorted(nums):
            pipe = self.r.pipeline(transaction=False)
            for hashed in (False, True):
                pipe.sismember(self.k.dnc, dnc_key(number, hashed))
            if any(await pipe.execute()):
                kept.append(number)
        return kept
