"""Following started calls to their end: polls (paced like any request) and webhooks.

A tracked job sits in the ``tracking`` sorted set, scored by its next visit; a worker leases
due entries by pushing their score ahead, so a dead worker's calls come back after the lease.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from aiohttp import web

from dispatcher import results
from dispatcher.classify import Action, ProviderError, classify
from dispatcher.config import ProviderConfig, read_secret
from dispatcher.dialer import Dialer, Flight
from dispatcher.jobs import Job, parse_job
from dispatcher.logs import get_logger
from dispatcher.metrics import CALL_ERRORS, REQUESTS
from dispatcher.providers.base import CallState, ProviderFailure
from dispatcher.providers.itellico import normalise as itellico_normalise
from dispatcher.store import Begin

RETRY_BEFORE_ANSWER = {"network_error", "provider_error"}
ERROR_REASONS = {"agent_error", "unknown"}
WEBHOOK_MAX_AGE_S = 300


class Tracker:
    def __init__(self, dialer: Dialer):
        self.d = dialer
        self.store = dialer.store
        self.cfg = dialer.cfg

    async def due(self, limit: int) -> list[str]:
        return await self.store.claim_due(round(self.cfg.tracking.visit_lease_s * 1000), limit)

    async def visit(self, job_id: str) -> None:
        info = await self.store.job_info(job_id)
        if info.get("state") != "tracking" or not info.get("raw"):
            return
        parsed = parse_job(info["raw"])
        if not isinstance(parsed, Job) or parsed.provider not in self.d.rt.adapters:
            return
        job = parsed
        call_id = info.get("call_id", "")
        attempts = int(info.get("attempts") or 1)
        b = Begin("ok", attempts, int(info.get("first_seen") or 0), "tracking",
                  info.get("cancelled") == "1", call_id,
                  tuple(x for x in info.get("prior_calls", "").split(",") if x))
        log = get_logger(job_id=job_id, provider=job.provider, attempt=attempts, call_id=call_id)
        hooked = await self.store.call_end(call_id)
        if hooked:
            await self.conclude(job, b, itellico_normalise(hooked))
            return
        tracked_s = time.time() - int(info.get("track_ms") or 0) / 1000
        if tracked_s > self.cfg.tracking.max_track_s:
            log.error("call.tracking_gave_up", tracked_s=round(tracked_s))
            unknown = CallState(call_id, "unknown", True, "unknown", None, None, job.id, None)
            await self.d.finish(job, "", "ended", attempts, b.first_seen_ms,
                                **results.ended_fields(unknown), error_message=(
                                    "call end not learned within max_track_s"))
            return
        visits = await self.store.bump(job_id, "visits")
        adapter = self.d.rt.adapters[job.provider]
        adm = await self.d.rt.pacer.acquire(job.provider, job_id=job_id,
                                            deadline=time.time() + 60)
        if not adm.granted:
            await self.store.reschedule(job_id, max(adm.wait_ms, 1000))
            return
        try:
            call = await adapter.get_call(call_id)
            REQUESTS.labels(job.provider, "poll", "200").inc()
        except ProviderFailure as f:
            REQUESTS.labels(job.provider, "poll", str(f.error.status or f.error.code)).inc()
            await self._poll_failed(job, f.error, visits)
            return
        if call.terminal:
            await self.conclude(job, b, call)
            return
        await self.store.renew_slot(job.provider, job_id,
                                    round(self.cfg.tracking.slot_lease_s * 1000))
        await self.store.reschedule(job_id, round(self.next_poll(job.provider, visits) * 1000))

    def next_poll(self, provider: str, visits: int) -> float:
        pcfg = self.cfg.providers[provider]
        if pcfg.kind == "itellico" and (pcfg.webhook_secret_env or pcfg.webhook_secret_file):
            return self.cfg.tracking.webhook_poll_s
        sched = self.cfg.tracking.poll_schedule_s
        return sched[min(visits, len(sched) - 1)]

    async def _poll_failed(self, job: Job, err: ProviderError, visits: int) -> None:
        action = classify(self.cfg.providers[job.provider].kind, err, on_create=False)
        get_logger(job_id=job.id, provider=job.provider).warning(
            "call.poll_failed", http_status=err.status, error_code=err.code, action=action.value)
        delay = self.next_poll(job.provider, visits)
        if action is Action.RATE_LIMITED:
            delay = max(delay, await self.d.cooldown(job.provider, err, 1))
        elif action is Action.HALT:
            await self.d.halt(job.provider, err)
        await self.store.reschedule(job.id, round(delay * 1000))

    async def conclude(self, job: Job, b: Begin, call: CallState) -> None:
        """A terminal call: a result, or back to the queue for the reasons that ask for it."""
        fl = Flight(entry_id="", job_id=job.id, provider=job.provider, attempts=b.attempts)
        reason = call.disconnection_reason
        answered = call.answer_status in ("human", "machine")
        if reason == "concurrency_limit":
            await self.store.remember_prior_call(job.id, call.call_id)
            await self.store.shrink_slots(job.provider, 60_000)
            await self.d.defer(fl, job, 2.0, b.attempts - 1, "concurrency_limit",
                               ProviderError(None, "concurrency_limit"))
            return
        if reason in RETRY_BEFORE_ANSWER and not answered:
            await self.store.remember_prior_call(job.id, call.call_id)
            await self.d.retry_or_exhaust(fl, job, b, b.attempts,
                                          ProviderError(None, reason, "call failed before answer"))
            return
        if reason in ERROR_REASONS or reason in RETRY_BEFORE_ANSWER:
            CALL_ERRORS.labels(job.provider, reason or "none").inc()
            get_logger(job_id=job.id, provider=job.provider, call_id=call.call_id).error(
                "call.system_error", disconnection_reason=reason)
        await self.d.finish(job, "", "ended", b.attempts, b.first_seen_ms,
                            **results.ended_fields(call))


def verify_signature(secret: str, body: bytes, timestamp: str, signature: str,
                     now: float, max_age_s: float = WEBHOOK_MAX_AGE_S) -> str | None:
    """None when valid, else why not. HMAC-SHA256 over ``body + "." + timestamp``, hex."""
    try:
        ts = float(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs(now - ts) > max_age_s:
        return "stale timestamp"
    expected = hmac.new(secret.encode(), body + b"." + timestamp.encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.strip().lower()):
        return "bad signature"
    return None


def webhook_handler(dialer: Dialer) -> Any:
    """aiohttp handler for ``POST /webhooks/{provider}`` (itellicoAI conversation events)."""
    secrets: dict[str, str] = {}

    def secret_for(name: str, pcfg: ProviderConfig) -> str | None:
        if name not in secrets:
            value = read_secret(pcfg.webhook_secret_env, pcfg.webhook_secret_file,
                                f"providers.{name}.webhook_secret")
            if value:
                secrets[name] = value
        return secrets.get(name)

    async def handle(req: web.Request) -> web.Response:
        name = req.match_info["provider"]
        pcfg = dialer.cfg.providers.get(name)
        if pcfg is None or pcfg.kind != "itellico":
            return web.json_response({"error": "unknown provider"}, status=404)
        secret = secret_for(name, pcfg)
        if not secret:
            return web.json_response({"error": "no webhook secret configured"}, status=404)
        body = await req.read()
        why = verify_signature(secret, body, req.headers.get(pcfg.timestamp_header, ""),
                               req.headers.get(pcfg.signature_header, ""), time.time())
        log = get_logger(provider=name)
        if why:
            log.warning("webhook.rejected", reason=why)
            return web.json_response({"error": why}, status=401)
        try:
            event = json.loads(body)
            data = event["data"]
            event_id, etype = str(event["event_id"]), str(event["event_type"])
            call_id = str(data["conversation_uuid"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "malformed event"}, status=400)
        if etype != "conversation.ended":
            return web.json_response({"ok": True, "ignored": etype})
        fields = {"id": call_id}
        for k in ("status", "answer_status", "disconnection_reason", "end_reason",
                  "ended_reason", "duration_seconds", "ended_at", "external_id"):
            if data.get(k) is not None:
                fields[k] = str(data[k])
        res = await dialer.store.webhook(event_id, call_id, fields,
                                         int(dialer.cfg.tracking.max_track_s) + 86400)
        log.info("webhook.received", event_id=event_id, call_id=call_id,
                 duplicate=res == -1)
        return web.json_response({"ok": True})

    return handle

