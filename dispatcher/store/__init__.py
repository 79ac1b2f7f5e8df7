"""The Redis adapter: the only code that talks to Redis. One method per atomic step; the
steps themselves are the Lua scripts in ``dispatcher/lua``.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from dispatcher.core import timing
from dispatcher.store import keys as K
from dispatcher.store.audit import AuditLog
from dispatcher.store.batch import Batcher
from dispatcher.store.callerids import CallerIdStore
from dispatcher.store.client import bytes_twin, connect
from dispatcher.store.erase import Retention
from dispatcher.store.fleet import Fleet, WorkerInfo
from dispatcher.store.history import HistoryStore
from dispatcher.store.joblist import JobList
from dispatcher.store.ledger import Ledger
from dispatcher.store.limits import RuntimeLimits
from dispatcher.store.producing import Producing
from dispatcher.store.protocol import (
    AdmitArgs,
    CampaignArgs,
    CampaignOp,
    CampaignReply,
    CancelArgs,
    CancelReply,
    CancelResult,
    ClaimfinArgs,
    ClaimfinReply,
    CooldownArgs,
    DeferArgs,
    DeferTo,
    FinishArgs,
    FinishReply,
    GrantArgs,
    Ingested,
    JobField,
    ObserveArgs,
    PromoteArgs,
    PromoteReply,
    RedriveArgs,
    Redriven,
    RedriveReply,
    RegrantArgs,
    ResumeArgs,
    ResumeReply,
    RevisitArgs,
    RevisitItem,
    ScriptName,
    ShrinkArgs,
    SweepArgs,
    SweepReply,
    TrackArgs,
    TrackConflict,
    TrackItem,
    TrackReply,
    WebhookArgs,
)
from dispatcher.store.reads import Reads
from dispatcher.store.scripts import Scripts, as_list
from dispatcher.store.sessions import ConsoleSessions
from dispatcher.store.types import (
    Admit,
    GrantReply,
    GrantRules,
    Halt,
    JobView,
    Placement,
    ResultItem,
)

__all__ = ["Store", "WorkerInfo", "connect"]

Entry = tuple[str, bytes | None]


class Store(Reads, Retention, Producing, Ledger, RuntimeLimits, CallerIdStore, Fleet,
            AuditLog, HistoryStore, JobList):
    def __init__(self, client: aioredis.Redis, namespace: str, results_maxlen: int = 1_000_000,
                 raw_client: aioredis.Redis | None = None, *, wait_replicas: int = 0,
                 wait_timeout_ms: int = 1000):
        self.r = client
        self.wait_replicas = wait_replicas  # grants wait for this many replicas (WAIT)
        self.wait_timeout_ms = wait_timeout_ms
        self.raw = raw_client or bytes_twin(client)
        self.k = K.Keys(namespace)
        self.results_maxlen = results_maxlen
        self.s = Scripts(client, self.k.jobs, self.k.prefix)
        self._rid = itertools.count()
        self._finishers: dict[int, Batcher[ResultItem, bool]] = {}
        self._trackers = Batcher(self._track_many)
        self._tag = f"{os.getpid()}.{os.urandom(3).hex()}"

    def rid(self) -> str:
        """A unique request id (replays of a granting call return the first reply)."""
        return f"{self._tag}.{next(self._rid)}"

    def console_sessions(self, ttl_s: float) -> ConsoleSessions:
        """The operator console's sessions (server-side, each expiring after ``ttl_s``)."""
        return ConsoleSessions(self.r, self.k, ttl_s)

    async def close(self) -> None:
        await self.r.aclose()
        await self.raw.aclose()

    # -- producers ---------------------------------------------------------------------------
    async def ensure_group(self) -> bool:
        """Create the consumer group; True when it had to be created."""
        try:
            await self.r.xgroup_create(self.k.jobs, K.GROUP, id="0", mkstream=True)
            return True
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return False

    async def enqueue(self, payloads: Sequence[dict[str, Any] | str]) -> list[str]:
        pipe = self.r.pipeline(transaction=False)
        for payload in payloads:
            text = (payload if isinstance(payload, str)
                    else json.dumps(payload, separators=(",", ":")))
            pipe.xadd(self.k.jobs, {"job": text})
        return [str(x) for x in await pipe.execute()]

    async def read_results(self, after: str, count: int, block_ms: int | None
                           ) -> list[tuple[str, dict[str, Any]]]:
        """Results after stream id ``after`` (block_ms None: do not wait)."""
        resp: Any = await self.r.xread({self.k.results: after}, count=count, block=block_ms)
        return [(eid, json.loads(f["result"])) for _, es in resp or [] for eid, f in es]

    async def cancel_job(self, job_id: str, ttl_s: int, *, ahead: bool) -> CancelResult:
        """Cancel a job that has not been dialled (``ahead``: also one not pushed yet)."""
        res: CancelReply = await self.s.call("cancel", **CancelArgs(id=job_id, ttl=ttl_s,
                                                                    ahead=ahead))
        return CancelResult(res["r"])

    async def cancel(self, job_id: str, ttl_s: int) -> bool:
        """True when the job will be cancelled (now, or when it is pushed)."""
        return await self.cancel_job(job_id, ttl_s, ahead=True) in (
            CancelResult.CANCELLED, CancelResult.AHEAD)

    # -- intake --------------------------------------------------------------------------------
    async def read(self, consumer: str, count: int, block_ms: int, *, own: bool = False
                   ) -> list[Entry]:
        """New entries (or, ``own``, the ones this consumer read and did not finish), as bytes:
        a producer may write anything, so decoding is per entry, never per batch."""
        resp: Any = await self.raw.xreadgroup(K.GROUP, consumer, {self.k.jobs: "0" if own
                                                                  else ">"},
                                              count=count, block=None if own else block_ms)
        out: list[Entry] = []
        for _, entries in resp or []:
            for eid, fields in entries:
                out.append((eid.decode(), (fields or {}).get(b"job")))
        return out

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        resp: Any = await self.raw.xautoclaim(self.k.jobs, K.GROUP, consumer, min_idle_ms,
                                              "0-0", count=count)
        entries = resp[1] if resp else []
        return [(eid.decode(), (fields or {}).get(b"job")) for eid, fields in entries
                if fields is not None]

    async def ingest(self, entries: Sequence[Placement], grants: Sequence[GrantArgs] = ()
                     ) -> tuple[list[tuple[str, Ingested, str]], list[GrantReply]]:
        """Claim and place entries; (id, what happened, why a result is due) for each."""
        res, replicated = await self._granting(
            "ingest", bool(grants), group=K.GROUP, rid=self.rid(),
            sleep_after=round(timing.DORMANT_AFTER_S * 1000),
            entries=[e.args() for e in entries], grants=list(grants))
        done = [(str(x["id"]), Ingested(x["r"]), str(x.get("fin") or ""))
                for x in as_list(res["entries"])]
        return done, [GrantReply.decode(g, replicated) for g in as_list(res["grants"])]

    # -- grants --------------------------------------------------------------------------------
    async def grant(self, grants: Sequence[GrantArgs]) -> list[GrantReply]:
        res, replicated = await self._granting("grant", True, rid=self.rid(),
                                               grants=list(grants))
        return [GrantReply.decode(g, replicated) for g in as_list(res["grants"])]

    async def _granting(self, name: ScriptName, granting: bool, **args: Any) -> tuple[Any, bool]:
        """A script that may grant dials; with ``wait_replicas``, the grant is acknowledged
        by that many replicas before any request leaves (a failover to a replica that lacks
        it would grant the same job again), in the same round trip. (reply, replicated)"""
        if not (granting and self.wait_replicas):
            return await self.s.call(name, **args), True
        res, acked = await self.s.call_replicated(name, self.wait_replicas,
                                                  self.wait_timeout_ms, **args)
        return res, acked >= self.wait_replicas

    async def admit(self, rules: GrantRules, tok: str, *, now_ms: int | None = None) -> Admit:
        args: AdmitArgs = {**rules.rate_args(), "tok": tok}
        return Admit.decode(await self.s.call("admit", now_ms, **args))

    async def regrant(self, rules: GrantRules, job_id: str, grant_token: str, tok: str, *,
                      keep: bool = False) -> Admit:
        """Move a late dial's place in the provider's log to now (see lua/regrant.lua);
        ``keep``: its old place was used by another request, so a new one is added."""
        args: RegrantArgs = {**rules.rate_args(), "id": job_id, "dtok": grant_token, "tok": tok,
                             "keep": keep}
        return Admit.decode(await self.s.call("regrant", **args))

    async def move_later(self, provider: str, moves: Sequence[tuple[str, int]]) -> list[bool]:
        """Requests answered ``late_ms`` after their grants (``(tok, late_ms)``): each place
        in the provider's log moves that much later, so its slot is reused one window after
        the provider counted it. False for a place that is gone (given back, or out of every
        window). One round trip; run twice, a place moves twice (later: still safe)."""
        pipe = self.r.pipeline(transaction=False)
        for tok, late_ms in moves:
            pipe.zadd(self.k.rate_log(provider), {tok: late_ms}, xx=True, incr=True)
        return [res is not None for res in await pipe.execute()]

    # -- outcomes ------------------------------------------------------------------------------
    async def finish(self, items: Sequence[ResultItem], ttl_s: int) -> int:
        return sum(await self._finish_many(items, ttl_s))

    async def _finish_many(self, items: Sequence[ResultItem], ttl_s: int) -> list[bool]:
        if not items:
            return []
        res: FinishReply = await self.s.call("finish", **FinishArgs(
            group=K.GROUP, ttl=ttl_s, maxlen=self.results_maxlen,
            items=[i.args() for i in items]))
        return [bool(x) for x in as_list(res["done"])]

    async def finish_one(self, item: ResultItem, ttl_s: int) -> bool:
        """One result, sent together with the others written at the same time."""
        batcher = self._finishers.get(ttl_s)
        if batcher is None:
            async def send(items: list[ResultItem]) -> list[bool]:
                return await self._finish_many(items, ttl_s)
            batcher = self._finishers[ttl_s] = Batcher(send)
        return await batcher.submit(item)

    async def defer(self, job_id: str, *, to: DeferTo, reason: str, until_ms: int,
                    grant_token: str | None = None, fields: dict[JobField, Any] | None = None,
                    deadline_ms: int = 0, refund_rate: bool = False,
                    refund_number: bool = False, detail: str = "") -> bool:
        """``reason``: a WaitReason's value ("" when handed back to its ready list)."""
        args: DeferArgs = {"id": job_id, "to": to, "reason": reason, "until": until_ms,
                           "detail": detail, "set": {f.value: v for f, v in (fields or {}).items()},
                           "deadline": deadline_ms, "refund_rate": refund_rate,
                           "refund_number": refund_number}
        if grant_token:
            args["dtok"] = grant_token
        return bool(await self.s.call("defer", **args))

    async def track(self, items: Sequence[TrackItem]) -> TrackReply:
        res: TrackReply = await self.s.call("track", **TrackArgs(items=list(items)))
        return res

    async def _track_many(self, items: list[TrackItem]) -> list[TrackConflict | None]:
        res = await self.track(items)
        conflicts: dict[str, TrackConflict] = {
            str(c["id"]): c for c in as_list(res.get("conflicts"))}
        return [conflicts.get(str(i["id"])) for i in items]

    async def track_one(self, item: TrackItem) -> TrackConflict | None:
        """One started call into tracking, batched with the others; a conflict or None."""
        return await self._trackers.submit(item)

    async def claim_finishing(self, lease_ms: int, limit: int,
                              ids: Sequence[str] | None = None) -> list[JobView]:
        args = ClaimfinArgs(lease=lease_ms, limit=limit)
        if ids is not None:
            args["ids"] = list(ids)
        res: ClaimfinReply = await self.s.call("claimfin", **args)
        return [JobView(str(j["id"]), {k: str(v) for k, v in j.items()})
                for j in as_list(res["jobs"])]

    async def bump(self, job_id: str, field: JobField) -> int:
        """Count something about a job (crashes) in its hash."""
        return int(await self.r.hincrby(self.k.job(job_id), field, 1))

    # -- tracking ------------------------------------------------------------------------------
    async def visit(self, providers: Sequence[str], lease_ms: int, limit: int,
                    consumer: str | None = None) -> list[JobView]:
        args: dict[str, Any] = {"consumer": consumer} if consumer else {}
        res = await self.s.call("visit", provs=list(providers), lease=lease_ms, limit=limit,
                                **args)
        out = []
        for visited in as_list(res["visits"]):
            hook = visited.pop("hook", None)
            fields = {k: str(x) for k, x in visited.items()}
            if isinstance(hook, dict):
                fields.update({f"hook.{k}": str(x) for k, x in hook.items()})
            out.append(JobView(str(visited["id"]), fields))
        return out

    async def revisit(self, items: Sequence[RevisitItem]) -> None:
        if items:
            await self.s.call("revisit", **RevisitArgs(items=list(items)))

    async def webhook(self, event_id: str, call_id: str, fields: dict[str, str],
                      ttl_s: int) -> int:
        return int(await self.s.call("webhook", **WebhookArgs(
            event_id=event_id, call_id=call_id, ttl=ttl_s, fields=fields)))

    # -- upkeep --------------------------------------------------------------------------------
    async def promote(self, max_defer_ms: int, limit: int = 500) -> int:
        res: PromoteReply = await self.s.call("promote", **PromoteArgs(
            src="delayed", top="now", limit=limit, max_defer=max_defer_ms))
        return int(res["moved"])

    async def sweep(self, limit: int = 200) -> list[str]:
        res: SweepReply = await self.s.call("sweep", **SweepArgs(limit=limit))
        return [str(x) for x in as_list(res["due"])]

    async def heartbeat(self, consumer: str, held: Sequence[str], dead_ms: int, stale_ms: int,
                        settle_ms: dict[str, int], margins_ms: dict[str, int] | None = None,
                        visiting: Sequence[str] = (), visited: Sequence[str] | None = None,
                        info: WorkerInfo | None = None) -> dict[str, Any]:
        """``visited``: the visits ended since the last heartbeat (None: ``visiting`` is
        the whole set, for a caller whose VISITs do not name it). ``info``: what the worker
        says of itself (the Workers page)."""
        extra: dict[str, Any] = {} if visited is None else {"visited": list(visited)}
        if info is not None:
            extra["info"] = info.args()
        res: dict[str, Any] = await self.s.call(
            "heartbeat", group=K.GROUP, consumer=consumer, held=list(held), dead=dead_ms,
            stale=stale_ms, settle=settle_ms or {"~": 0}, margins=margins_ms or {},
            visiting=list(visiting), **extra)
        return res

    async def redrive(self, job_ids: Sequence[str], outcomes: Sequence[str], *, dry: bool
                      ) -> list[tuple[str, Redriven]]:
        """Put finished jobs back as new work; (id, what happened) for each."""
        res: RedriveReply = await self.s.call("redrive", **RedriveArgs(
            ids=list(job_ids), outcomes=list(outcomes), dry=dry))
        return [(str(j["id"]), Redriven(j["r"])) for j in as_list(res["jobs"])]

    async def maxmemory_policy(self) -> str | None:
        """Redis's eviction policy, or None when the server does not say (managed Redis)."""
        return await self.server_setting("maxmemory-policy")

    async def server_setting(self, name: str) -> str | None:
        """One CONFIG GET value, or None when the server does not say (managed Redis)."""
        try:
            got: Any = await self.r.config_get(name)
        except ResponseError:
            return None
        value = got.get(name) if isinstance(got, dict) else None
        return str(value) if value else None

    # -- do-not-call ------------------------------------------------------------------------------
    async def dnc_add(self, keys: Sequence[str]) -> int:
        return int(await self.r.sadd(self.k.dnc, *keys)) if keys else 0

    async def dnc_remove(self, keys: Sequence[str]) -> int:
        return int(await self.r.srem(self.k.dnc, *keys)) if keys else 0

    async def dnc_check(self, keys: Sequence[str]) -> list[bool]:
        if not keys:
            return []
        return [bool(x) for x in await self.r.smismember(self.k.dnc, list(keys))]

    # -- provider-wide state ----------------------------------------------------------------------
    async def set_cooldown(self, provider: str, ms: int) -> None:
        await self.s.call("cooldown", **CooldownArgs(prov=provider, ms=max(1, ms)))

    async def observe(self, provider: str, limit: int, window_ms: int, remaining: int,
                      reset_ms: int, margin_ms: int = 0) -> bool:
        return bool(await self.s.call("observe", **ObserveArgs(
            prov=provider, limit=limit, ms=window_ms, remaining=remaining, reset=reset_ms,
            margin=margin_ms)))

    async def shrink_slots(self, provider: str, ttl_ms: int) -> int:
        return int(await self.s.call("shrink", **ShrinkArgs(prov=provider, ttl=ttl_ms)))

    async def halt(self, provider: str, reason: str, code: str, first_probe_ms: int,
                   max_probe_ms: int) -> Halt:
        """Halt a provider and park its ready jobs; says which halt, and whether this call
        began it."""
        began = False
        while True:
            res = await self.s.call("halt", prov=provider, reason=reason, code=code,
                                    first=first_probe_ms, max=max_probe_ms, batch=2000)
            began = began or bool(res["new"])  # the batches after the first see it halted
            if int(res["left"]) == 0 or int(res["parked"]) == 0:
                return Halt(int(res["backoff"]), int(res["since"]), began)

    async def unpark(self, provider: str, max_defer_ms: int = 86_400_000) -> int:
        """Resume a provider: clear its halt and put its parked jobs back in line."""
        total = 0
        while True:
            res: ResumeReply = await self.s.call("resume", **ResumeArgs(
                prov=provider, batch=1000, max_defer=max_defer_ms))
            total += int(res["moved"])
            if int(res["left"]) == 0 or int(res["moved"]) == 0:
                return total

    async def campaign(self, op: CampaignOp, name: str, providers: Sequence[str]) -> int:
        """Pause, resume or cancel a campaign; returns the jobs cancelled (for ``cancel``)."""
        total = 0
        while True:
            res: CampaignReply = await self.s.call("campaign", **CampaignArgs(
                op=op, camp=name, provs=list(providers), batch=1000))
            total += int(res["cancelled"])
            if op != "cancel" or int(res["left"]) == 0 or int(res["cancelled"]) == 0:
                return total
