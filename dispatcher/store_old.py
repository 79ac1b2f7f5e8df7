"""Redis adapter: the only module that talks to Redis. One method per atomic state change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from dispatcher import keys as K
from dispatcher.limits import Window


def connect(url: str, socket_timeout_s: float = 10.0, *,
            idempotent: bool = False) -> aioredis.Redis:
    """A Redis client; only ``idempotent`` users (the worker's scripts) retry connection errors.

    A producer's XADD retried after a lost reply would push a job twice, so producer clients
    never retry. Every worker write is a script that checks state first, so retrying one after
    a stale pooled connection (a Redis restart) is safe. Timeouts are never retried.
    """
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 3) if idempotent else \
        Retry(NoBackoff(), 0)
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=min(5.0, socket_timeout_s),
        retry=retry,
        retry_on_error=[RedisConnectionError] if idempotent else [],
        health_check_interval=30,
    )


@dataclass(frozen=True)
class Begin:
    status: str  # ok | duplicate | done
    attempts: int = 0
    first_seen_ms: int = 0
    state: str = "queued"
    cancelled: bool = False
    call_id: str = ""
    prior_calls: tuple[str, ...] = ()
    dial_ms: int = 0
    unsure: bool = False


@dataclass(frozen=True)
class Admit:
    granted: bool
    wait_ms: int = 0
    reason: str = "ok"  # ok | cooldown | slot | rate | halted | lost | cancelled
    canary: bool = False


class Store:
    def __init__(self, client: aioredis.Redis, namespace: str, results_maxlen: int = 1_000_000):
        self.r = client
        self.k = K.Keys(namespace)
        self.results_maxlen = results_maxlen
        reg = client.register_script
        self._begin = reg(K.BEGIN)
        self._finish = reg(K.FINISH)
        self._defer = reg(K.DEFER)
        self._promote = reg(K.PROMOTE)
        self._admit = reg(K.ADMIT)
        self._begin_admit = reg(K.BEGIN_ADMIT)
        self._cooldown = reg(K.COOLDOWN)
        self._observe = reg(K.OBSERVE)
        self._halt = reg(K.HALT)
        self._shrink = reg(K.SHRINK)
        self._track = reg(K.TRACK)
        self._claim_due = reg(K.CLAIM_DUE)
        self._webhook = reg(K.WEBHOOK)
        self._heartbeat = reg(K.HEARTBEAT)
        self._cancel = reg(K.CANCEL)

    async def _hash(self, key: str) -> dict[str, str]:
        raw: Any = await self.r.hgetall(key)
        return {str(k): str(v) for k, v in raw.items()}

    # -- producer side -------------------------------------------------------------------
    async def ensure_group(self) -> None:
        try:
            await self.r.xgroup_create(self.k.jobs, K.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def enqueue(self, payloads: list[dict[str, Any]]) -> list[str]:
        pipe = self.r.pipeline(transaction=False)
        for p in payloads:
            pipe.xadd(self.k.jobs, {"job": json.dumps(p, separators=(",", ":"))})
        return [str(x) for x in await pipe.execute()]

    async def read_results(self, after: str, count: int, block_ms: int | None
                           ) -> list[tuple[str, dict[str, Any]]]:
        """Results after stream id ``after`` (block_ms None: do not wait)."""
        resp: Any = await self.r.xread({self.k.results: after}, count=count, block=block_ms)
        return [(eid, json.loads(f["result"])) for _, es in resp or [] for eid, f in es]

    async def close(self) -> None:
        await self.r.aclose()

    async def cancel(self, job_id: str, ttl_s: int) -> bool:
        res = await self._cancel(keys=[self.k.job(job_id), self.k.delayed],
                                 args=["", job_id, ttl_s])
        return bool(res)

    # -- consuming -------------------------------------------------------------------------
    async def read(self, consumer: str, count: int, block_ms: int) -> list[tuple[str, str | None]]:
        resp: Any = await self.r.xreadgroup(K.GROUP, consumer, {self.k.jobs: ">"}, count=count,
                                       block=block_ms)
        return [(eid, fields.get("job")) for _, entries in resp or [] for eid, fields in entries]

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int
                      ) -> list[tuple[str, str | None]]:
        resp: Any = await self.r.xautoclaim(self.k.jobs, K.GROUP, consumer, min_idle_ms, "0-0",
                                       count=count)
        entries = resp[1] if resp else []
        return [(eid, (fields or {}).get("job")) for eid, fields in entries if fields is not None]

    async def heartbeat(self, consumer: str, entry_ids: list[str]) -> list[str]:
        if not entry_ids:
            return []
        lost = await self._heartbeat(keys=[self.k.jobs], args=["", K.GROUP, consumer, *entry_ids])
        return [str(x) for x in lost]

    async def ack(self, entry_id: str) -> None:
        await self.r.xack(self.k.jobs, K.GROUP, entry_id)

    async def begin(self, job_id: str, entry_id: str, raw: str) -> Begin:
        res = await self._begin(keys=[self.k.job(job_id), self.k.jobs],
                                args=["", entry_id, K.GROUP, raw])
        return self._begun(res)

    @staticmethod
    def _begun(res: Any) -> Begin:
        if res[0] != "ok":
            return Begin(status=str(res[0]))
        prior = tuple(x for x in str(res[6]).split(",") if x)
        return Begin("ok", int(res[1]), int(res[2]), str(res[3]), res[4] == "1", str(res[5]),
                     prior, int(res[7] or 0), res[8] == "1")

    async def finish(self, job_id: str | None, entry_id: str, provider: str,
                     result: dict[str, Any], ttl_s: int) -> bool:
        marker = self.k.job(job_id) if job_id else self.k.invalid_marker(entry_id)
        res = await self._finish(
            keys=[marker, self.k.jobs, self.k.results, self.k.tracking, self.k.delayed,
                  self.k.slots(provider)],
            args=["", entry_id, K.GROUP, job_id or "", json.dumps(result, separators=(",", ":")),
                  ttl_s, self.results_maxlen])
        return bool(res)

    async def defer(self, job_id: str, entry_id: str, provider: str, delay_ms: int,
                    attempts: int, *, last_status: int | None = None, last_code: str = "",
                    park: bool = False, unsure: bool = False, raw: str = "") -> None:
        target = self.k.parked(provider) if park else self.k.delayed
        await self._defer(
            keys=[self.k.job(job_id), self.k.jobs, target, self.k.slots(provider),
                  self.k.tracking],
            args=["", entry_id, K.GROUP, job_id, max(0, delay_ms),
                  "parked" if park else "delayed", attempts,
                  "" if last_status is None else last_status, last_code,
                  "1" if unsure else "", raw])

    async def promote(self, limit: int = 500) -> int:
        res = await self._promote(keys=[self.k.delayed, self.k.jobs],
                                  args=["", self.k.job_prefix, limit, "now", self.k.orphans])
        return int(res[0])

    async def release_one_parked(self, provider: str) -> int:
        """Put the oldest parked job back in the stream, to serve as a halted provider's probe."""
        res = await self._promote(keys=[self.k.parked(provider), self.k.jobs],
                                  args=["", self.k.job_prefix, 1, "+inf", self.k.orphans])
        return int(res[0])

    async def unpark(self, provider: str, batch: int = 500) -> int:
        """Resume a halted provider: clear the halt and put its parked jobs back in the stream."""
        await self.r.delete(self.k.halt(provider))
        total = 0
        while True:
            res = await self._promote(keys=[self.k.parked(provider), self.k.jobs],
                                      args=["", self.k.job_prefix, batch, "+inf", self.k.orphans])
            total += int(res[0])
            if int(res[1]) < batch:
                return total

    async def remember_prior_call(self, job_id: str, call_id: str) -> None:
        h = self.k.job(job_id)
        prior = str(await self.r.hget(h, "prior_calls") or "")
        await self.r.hset(h, "prior_calls", f"{prior},{call_id}".strip(","))

    async def bump(self, job_id: str, field: str) -> int:
        """Count something about a job (tracking visits, crashes) in its hash."""
        return int(await self.r.hincrby(self.k.job(job_id), field, 1))

    async def job_info(self, job_id: str) -> dict[str, str]:
        return await self._hash(self.k.job(job_id))

    # -- pacing ----------------------------------------------------------------------------
    def _admit_call(self, provider: str, windows: list[Window], *, job_id: str, token: str,
                    margin_ms: int, slot_cap: int | None, lease_ms: int,
                    attempts: int | None, entry_id: str, consumer: str, dial: bool
                    ) -> tuple[list[str], list[Any]]:
        k = self.k
        keys_ = [k.rate_log(provider), k.cooldown(provider), k.halt(provider), k.slots(provider),
                 k.slot_cap(provider), k.job(job_id) if dial else "", k.jobs]
        keys_ += [k.rate_hint(provider, w.ms) for w in windows]
        args: list[Any] = [job_id, token, margin_ms, "1" if slot_cap else "0", slot_cap or 0,
                           lease_ms, "" if attempts is None else attempts, entry_id, K.GROUP,
                           consumer, len(windows)]
        for w in windows:
            args += [w.limit, w.ms]
        return keys_, args

    @staticmethod
    def _admitted(res: Any) -> Admit:
        code = int(res[0])
        if code == 1:
            return Admit(True, 0, "ok", canary=int(res[1]) == 1)
        return Admit(False, int(res[1]), str(res[2]))

    async def admit(self, provider: str, windows: list[Window], *, job_id: str, token: str,
                    margin_ms: int, slot_cap: int | None, lease_ms: int,
                    attempts: int | None, entry_id: str, consumer: str,
                    now_ms: int | None = None) -> Admit:
        keys_, args = self._admit_call(
            provider, windows, job_id=job_id, token=token, margin_ms=margin_ms,
            slot_cap=slot_cap, lease_ms=lease_ms, attempts=attempts, entry_id=entry_id,
            consumer=consumer, dial=attempts is not None)
        res = await self._admit(keys=keys_, args=["" if now_ms is None else now_ms, *args])
        return self._admitted(res)

    async def begin_admit(self, provider: str, windows: list[Window], *, job_id: str,
                          raw: str, max_age_ms: int, token: str, margin_ms: int,
                          slot_cap: int | None, lease_ms: int, entry_id: str, consumer: str
                          ) -> tuple[Begin, Admit | None]:
        """BEGIN, and for a plainly ready job its first grant, in one round trip."""
        keys_, args = self._admit_call(
            provider, windows, job_id=job_id, token=token, margin_ms=margin_ms,
            slot_cap=slot_cap, lease_ms=lease_ms, attempts=None, entry_id=entry_id,
            consumer=consumer, dial=True)
        res = await self._begin_admit(keys=keys_, args=["", raw, max_age_ms, *args])
        b = self._begun(res[0])
        return b, (self._admitted(res[1]) if res[1] else None)

    async def set_cooldown(self, provider: str, ms: int) -> None:
        await self._cooldown(keys=[self.k.cooldown(provider)], args=["", max(1, ms)])

    async def observe(self, provider: str, window: Window, remaining: int, reset_ms: int) -> bool:
        res = await self._observe(keys=[self.k.rate_log(provider),
                                        self.k.rate_hint(provider, window.ms)],
                                  args=["", window.limit, window.ms, remaining, reset_ms])
        return bool(res)

    async def release_slot(self, provider: str, job_id: str) -> None:
        await self.r.zrem(self.k.slots(provider), job_id)

    async def renew_slot(self, provider: str, job_id: str, lease_ms: int) -> None:
        t = await self.r.time()
        now_ms = int(t[0]) * 1000 + int(t[1]) // 1000
        await self.r.zadd(self.k.slots(provider), {job_id: now_ms + lease_ms}, xx=True)

    async def shrink_slots(self, provider: str, ttl_ms: int) -> int:
        return int(await self._shrink(keys=[self.k.slots(provider), self.k.slot_cap(provider)],
                                      args=["", ttl_ms]))

    async def halt(self, provider: str, reason: str, code: str, first_probe_ms: int,
                   max_probe_ms: int) -> int:
        return int(await self._halt(keys=[self.k.halt(provider)],
                                    args=["", reason, code, first_probe_ms, max_probe_ms]))

    async def halt_info(self, provider: str) -> dict[str, str]:
        return await self._hash(self.k.halt(provider))

    # -- tracking --------------------------------------------------------------------------
    async def track(self, job_id: str, entry_id: str, call_id: str, first_visit_ms: int,
                    ttl_s: int) -> None:
        await self._track(keys=[self.k.job(job_id), self.k.jobs, self.k.tracking,
                                self.k.call(call_id)],
                          args=["", entry_id, K.GROUP, job_id, call_id, first_visit_ms, ttl_s])

    async def claim_due(self, lease_ms: int, limit: int) -> list[str]:
        res = await self._claim_due(keys=[self.k.tracking], args=["", lease_ms, limit])
        return [str(x) for x in res]

    async def reschedule(self, job_id: str, delay_ms: int) -> None:
        t = await self.r.time()
        now_ms = int(t[0]) * 1000 + int(t[1]) // 1000
        await self.r.zadd(self.k.tracking, {job_id: now_ms + delay_ms}, xx=True)

    async def call_end(self, call_id: str) -> dict[str, str]:
        return await self._hash(self.k.call_end(call_id))

    async def webhook(self, event_id: str, call_id: str, fields: dict[str, str],
                      ttl_s: int) -> int:
        args: list[Any] = ["", ttl_s]
        for key, value in fields.items():
            args += [key, value]
        return int(await self._webhook(
            keys=[self.k.event(event_id), self.k.call_end(call_id), self.k.call(call_id),
                  self.k.tracking], args=args))

    async def server_ms(self) -> int:
        t = await self.r.time()
        return int(t[0]) * 1000 + int(t[1]) // 1000
