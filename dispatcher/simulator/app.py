"""The provider simulator: both dialects over real HTTP, with limits, faults and an audit log.

Admin endpoints under ``/_sim/`` let checks read the audit log and ground truth, and change
faults or key states while it runs; ``/_sim/predial`` plays a pre-dial hook.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import heapq
import hmac
import json
import random
import re
import time
from collections import deque
from typing import Any

import aiohttp
from aiohttp import web

from dispatcher.simulator.config import SimConfig
from dispatcher.simulator.core import Call, RateWindows, counted_fault

E164 = re.compile(r"^\+[1-9]\d{2,18}$")
TEL_PREFIX = "/api/v1/public"


FREEZE_EVERY = 500


class Simulator:
    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.rates: dict[str, RateWindows] = {}
        self.calls: dict[str, Call] = {}
        self.order: list[str] = []
        self.live_ends: dict[str, list[float]] = {}  # account -> heap of ended_at
        self.audit: list[dict[str, Any]] = []
        self.next_faults: deque[dict[str, Any]] = deque()
        self.number_hits: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.webhook_log: list[dict[str, Any]] = []
        # itellicoAI idempotency: (account, external_id) -> the call it created
        self.external_ids: dict[tuple[str, str], str] = {}
        self.predial_log: list[dict[str, Any]] = []
        self.predial_hits: dict[str, int] = {}
        self._audit_fh = open(cfg.audit_file, "a", encoding="utf-8") if cfg.audit_file else None
        self._http: aiohttp.ClientSession | None = None
        self._event_seq = 0

    # -- bookkeeping ------------------------------------------------------------------------
    def record(self, req: web.Request, when: float, key: str | None, status: int,
               code: str | None, admitted: bool, **extra: Any) -> None:
        entry = {"t": when, "key": (key or "")[:12], "method": req.method, "path": req.path,
                 "status": status, "code": code, "admitted": admitted, **extra}
        self.audit.append(entry)
        if self._audit_fh:
            self._audit_fh.write(json.dumps(entry) + "\n")
            self._audit_fh.flush()

    def live_calls(self, account: str, now: float) -> int:
        """Calls of the account not yet ended (each call's end is fixed when it is created,
        so a heap of end times answers without scanning every call ever made)."""
        ends = self.live_ends.get(account, [])
        while ends and not now < ends[0]:
            heapq.heappop(ends)
        return len(ends)

    def add_call(self, call: Call) -> None:
        """Keep a new call; an itellicoAI external_id is spent on its account from now on."""
        self.calls[call.id] = call
        self.order.append(call.id)
        heapq.heappush(self.live_ends.setdefault(call.account, []), call.ended_at)
        if len(self.order) % FREEZE_EVERY == 0:
            # every call and audit entry is kept for good: out of the collector's sight, a
            # full collection no longer walks them all (40 ms at 3,000 calls), a pause that
            # would stamp the requests waiting meanwhile as arriving late
            gc.freeze()
        if call.dialect == "itellico" and call.correlation is not None:
            self.external_ids[(call.account, call.correlation)] = call.id

    def reset(self) -> None:
        """Forget every request, call, fault in progress and hook answer (config stays)."""
        self.audit.clear()
        self.calls.clear()
        self.order.clear()
        self.live_ends.clear()
        self.external_ids.clear()
        self.rates.clear()
        self.next_faults.clear()
        self.number_hits.clear()
        self.webhook_log.clear()
        self.predial_log.clear()
        self.predial_hits.clear()

    def pick_fault(self, to: str | None) -> dict[str, Any] | None:
        if self.next_faults:
            fault = self.next_faults[0]
            fault["count"] = fault.get("count", 1) - 1
            if fault["count"] <= 0:
                self.next_faults.popleft()
            return fault
        if to and to in self.cfg.faults.by_number:
            hits = self.number_hits.get(to, 0)
            self.number_hits[to] = hits + 1
            kind = counted_fault(self.cfg.faults.by_number[to], hits)
            if kind is not None:
                return {"fault": kind}
        for kind, chance in self.cfg.faults.probability.items():
            if self.rng.random() < chance:
                return {"fault": kind}
        return None

    # -- outbound webhooks (itellicoAI) ------------------------------------------------------
    def schedule_webhook(self, call: Call) -> None:
        acct = self.cfg.account(call.account)
        if not acct.webhook_url or self.rng.random() < self.cfg.faults.webhook_drop_p:
            return
        task = asyncio.get_running_loop().create_task(self._deliver(call, acct.webhook_url,
                                                                    acct.webhook_secret))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, call: Call, url: str, secret: str) -> None:
        await asyncio.sleep(max(0.0, call.ended_at - time.time()))
        now = time.time()
        data = call.render(now)
        event = {"event_id": f"evt_{self.rng.getrandbits(64):016x}",
                 "event_type": "conversation.ended", "created": now,
                 "organization_uuid": self.cfg.account(call.account).uuid,
                 "data": {"conversation_uuid": call.id, **data}}
        body = json.dumps(event).encode()
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        for _ in range(1 + self.cfg.faults.webhook_duplicates):
            for attempt in range(4):
                ts = str(int(time.time()))
                sig = hmac.new(secret.encode(), body + b"." + ts.encode(),
                               hashlib.sha256).hexdigest()
                try:
                    async with self._http.post(url, data=body, headers={
                            "Content-Type": "application/json", "X-Itellico-Signature": sig,
                            "X-Itellico-Timestamp": ts}) as resp:
                        ok = resp.status < 300
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                self.webhook_log.append({"t": time.time(), "call_id": call.id,
                                         "event_id": event["event_id"], "ok": ok})
                if ok:
                    break
                await asyncio.sleep(0.5 * 2**attempt)
        call.webhooks_sent += 1

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self._http:
            await self._http.close()
        if self._audit_fh:
            self._audit_fh.close()


SIM: web.AppKey[Simulator] = web.AppKey("sim", Simulator)


# -- envelopes ----------------------------------------------------------------------------
TEL_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
             404: "not_found_error", 429: "rate_limit_error"}
ITL_CODES = {400: "bad_request", 401: "unauthorized", 402: "payment_required", 403: "forbidden",
             404: "not_found", 405: "method_not_allowed", 409: "conflict", 410: "gone",
             422: "validation_error", 429: "rate_limit_exceeded", 500: "internal_error",
             502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout"}


def tel_error(status: int, code: str, message: str,
              headers: dict[str, str] | None = None) -> web.Response:
    etype = TEL_TYPES.get(status, "api_error")
    return web.json_response({"error": {"type": etype, "code": code, "message": message}},
                             status=status, headers=headers)


def itl_error(status: int, message: str, code: str | None = None,
              errors: list[dict[str, str]] | None = None,
              headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code or ITL_CODES.get(status, "error"), "message": message}
    if errors:
        body["errors"] = errors
    return web.json_response(body, status=status, headers=headers)


def fastapi_422(field: str, msg: str) -> web.Response:
    return web.json_response({"detail": [{"loc": ["body", field], "msg": msg,
                                          "type": "value_error"}]}, status=422)


def dialect_error(dialect: str, status: int, code: str, message: str,
                  headers: dict[str, str] | None = None) -> web.Response:
    if dialect == "telecho":
        return tel_error(status, code, message, headers)
    return itl_error(status, message, ITL_CODES.get(status, code), headers=headers)

