"""HTTP routes of the simulator: auth and rate limits in one middleware, then each endpoint.

Like a real provider behind its gateway, a path or method no route serves gets a bare text
``404: Not Found`` / ``405: Method Not Allowed`` before any auth or rate limit (a wrong base URL
looks like that), while a known route whose resource does not exist answers the dialect's
enveloped 404. Every request outside ``/_sim/`` lands in the audit log.

itellicoAI's ``external_id`` is an idempotency key: once a call was created with it, any later
create with the same value on the same account answers 409 ``conflict`` and creates nothing.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dispatcher.simulator.app import (
    E164,
    SIM,
    TEL_PREFIX,
    Simulator,
    dialect_error,
    fastapi_422,
    itl_error,
    tel_error,
)
from dispatcher.simulator.config import KeySpec, SimConfig
from dispatcher.simulator.core import (
    Call,
    RateWindows,
    itellico_call_n,
    new_call_id,
    plan_call,
    telecho_call_n,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
KEY = web.RequestKey("key", str)
SPEC = web.RequestKey("spec", KeySpec)
DIALECT = web.RequestKey("dialect", str)
AUDIT = web.RequestKey("audit", dict)


def _dialect(path: str) -> str | None:
    if path.startswith(TEL_PREFIX + "/"):
        return "telecho"
    if path.startswith("/v1/accounts/"):
        return "itellico"
    return None


def _auth(sim: Simulator, req: web.Request, dialect: str) -> tuple[str | None, web.Response | None]:
    if dialect == "telecho":
        raw = req.headers.get("Authorization", "")
        key = raw[7:].strip() if raw.lower().startswith("bearer ") else None
        if not key:
            return None, tel_error(401, "missing_api_key", "No API key provided")
        spec = sim.cfg.keys.get(key)
        if spec is None or spec.dialect != "telecho":
            return key, tel_error(401, "invalid_api_key", "Invalid API key")
        if spec.status != "valid":
            return key, tel_error(401, f"{spec.status}_api_key", f"API key {spec.status}")
        return key, None
    key = req.headers.get("X-API-Key")
    spec = sim.cfg.keys.get(key or "")
    if not key or spec is None or spec.dialect != "itellico" or spec.status != "valid":
        return key, itl_error(401, "Invalid or missing API key")
    return key, None


def _presented_key(req: web.Request) -> str | None:
    raw = req.headers.get("Authorization", "")
    if raw.lower().startswith("bearer "):
        return raw[7:].strip()
    return req.headers.get("X-API-Key")


def _unrouted(sim: Simulator, req: web.Request, exc: web.HTTPException) -> web.Response:
    """A gateway's answer to a path or method no route serves: plain text, no envelope."""
    allow = exc.headers.get("Allow")
    resp = web.Response(status=exc.status, text=f"{exc.status}: {exc.reason}",
                        headers={"Allow": allow} if allow is not None else None)
    sim.record(req, time.time(), _presented_key(req), exc.status, None, False)
    return resp


@web.middleware
async def provider_middleware(req: web.Request, handler: Handler) -> web.StreamResponse:
    if req.path.startswith("/_sim/"):
        return await handler(req)
    sim = req.app[SIM]
    unmatched = req.match_info.http_exception
    if unmatched is not None:
        return _unrouted(sim, req, unmatched)
    dialect = _dialect(req.path)
    if dialect is None:
        return await handler(req)
    now = time.time()
    key, denied = _auth(sim, req, dialect)
    if denied is not None:
        sim.record(req, now, key, denied.status, _code(denied), False)
        return denied
    assert key is not None
    spec = sim.cfg.keys[key]
    rates = sim.rates.setdefault(key, RateWindows(spec.limits))
    breach = rates.check(now)
    if breach is not None:
        window, wait = breach
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        if dialect == "telecho":
            headers.update(rates.headers(now))
            code = "rate_limit_per_hour" if window.seconds >= 3600 else "rate_limit_per_minute"
            limited = tel_error(429, code, f"Rate limit exceeded ({window.label()})", headers)
        else:
            if sim.rng.random() >= sim.cfg.faults.itellico_retry_after_p:
                headers = {}
            limited = itl_error(429, "Rate limit exceeded", headers=headers)
        sim.record(req, now, key, 429, _code(limited), False)
        return limited
    rates.admit(now)
    req[KEY], req[SPEC], req[DIALECT], req[AUDIT] = key, spec, dialect, {}
    resp: web.StreamResponse
    try:
        resp = await handler(req)
    except web.HTTPException as exc:
        resp = dialect_error(dialect, exc.status, "not_found", exc.reason)
    if dialect == "telecho" and not resp.prepared:
        resp.headers.update(rates.headers(time.time()))
    sim.record(req, now, key, resp.status, _code(resp), True, **req[AUDIT])
    return resp


def _code(resp: web.StreamResponse) -> str | None:
    body = getattr(resp, "body", None)
    if resp.status < 300 or not isinstance(body, bytes | bytearray):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if isinstance(parsed.get("error"), dict):
        return str(parsed["error"].get("code"))
    return str(parsed.get("code")) if parsed.get("code") else None


def _account(req: web.Request) -> str:
    spec: KeySpec = req[SPEC]
    return spec.account


# -- create ---------------------------------------------------------------------------------
async def _body(req: web.Request) -> dict[str, Any] | None:
    try:
        parsed = await req.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _resource_error(cfg: SimConfig, rid: str, kind: str, prefix: str) -> web.Response | None:
    if not rid.startswith(prefix):
        return tel_error(400, "invalid_id", f"{kind}_id has an invalid format")
    state = cfg.resources.get(rid, "missing")
    if state in ("missing", "other_org"):
        return tel_error(404, f"{kind}_not_found", f"{kind} {rid} not found")
    if state == "inactive":
        return tel_error(400, f"{kind}_inactive", f"{kind} {rid} is inactive")
    if state == "no_trunk":
        return tel_error(400, "no_outbound_trunk", f"{rid} has no outbound trunk")
    return None


async def tel_create(req: web.Request) -> web.StreamResponse:
    sim = req.app[SIM]
    body = await _body(req)
    if body is None:
        return tel_error(400, "invalid_request", "Body must be a JSON object")
    to, pn = body.get("destination_number"), body.get("phone_number_id")
    meta: dict[str, Any] = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
    correlation = meta.get("dispatcher_job_id")
    req[AUDIT].update(to=to, caller=pn,
                      correlation=None if correlation is None else str(correlation),
                      call_n=telecho_call_n(meta))
    if not isinstance(to, str) or not 3 <= len(to) <= 20 or not E164.match(to):
        return fastapi_422("destination_number", "must be an E.164 number")
    if not isinstance(pn, str):
        return fastapi_422("phone_number_id", "field required")
    agent, wf = body.get("agent_id"), body.get("workflow_id")
    if agent and wf:
        return tel_error(400, "invalid_target", "agent_id and workflow_id are exclusive")
    owned = sim.cfg.account(_account(req)).caller_ids  # owned and not in resources: active
    if pn.startswith("tel_pn_") and pn not in owned:
        return tel_error(404, "phone_number_not_found", f"phone_number {pn} not found")
    for rid, kind, prefix in ((pn, "phone_number", "tel_pn_"), (agent, "agent", "tel_agt_"),
                              (wf, "workflow", "tel_wf_")):
        if rid and not (rid == pn and pn in owned and pn not in sim.cfg.resources):
            err = _resource_error(sim.cfg, str(rid), kind, prefix)
            if err is not None:
                return err
    if sim.cfg.resources.get(pn) == "no_target" and not agent and not wf:
        return tel_error(400, "no_routing_target", "No agent or workflow attached")
    return await _create(req, "telecho", to, pn, agent, meta, req[AUDIT]["correlation"])


async def itl_create(req: web.Request) -> web.StreamResponse:
    sim = req.app[SIM]
    if not _own_account(req):
        return itl_error(403, "Not your account")
    body = await _body(req)
    if body is None:
        return itl_error(400, "Body must be a JSON object")
    ext = body.get("external_id")
    req[AUDIT].update(to=body.get("to_number"), caller=body.get("from_number"),
                      correlation=None if ext is None else str(ext),
                      call_n=itellico_call_n(None if ext is None else str(ext)))
    errors = []
    if ext is not None and not isinstance(ext, str):
        errors.append({"field": "external_id", "message": "must be a string",
                       "type": "type_error"})
    if body.get("type") != "phone":
        errors.append({"field": "type", "message": "must be 'phone'", "type": "value_error"})
    for field in ("from_number", "to_number"):
        if not isinstance(body.get(field), str) or not E164.match(body[field]):
            errors.append({"field": field, "message": "must be an E.164 number",
                           "type": "value_error"})
    if not isinstance(body.get("agent_id"), str):
        errors.append({"field": "agent_id", "message": "field required", "type": "missing"})
    if not errors and body["from_number"] not in sim.cfg.account(_account(req)).caller_ids:
        errors.append({"field": "from_number", "message": "not a number of this account",
                       "type": "value_error"})
    if errors:
        return itl_error(422, "Validation failed", errors=errors)
    if sim.cfg.resources.get(body["agent_id"]) not in ("active",):
        return itl_error(404, f"Agent {body['agent_id']} not found")
    return await _create(req, "itellico", body["to_number"], body["from_number"],
                         body["agent_id"], {}, req[AUDIT]["correlation"])


def _own_account(req: web.Request) -> bool:
    acct = req.match_info["account"]
    sim = req.app[SIM]
    return acct == "me" or acct == sim.cfg.account(_account(req)).uuid


async def _create(req: web.Request, dialect: str, to: str, from_: str, agent: Any,
                  meta: dict[str, Any], correlation: str | None) -> web.StreamResponse:
    sim = req.app[SIM]
    refused, kind = await _gate(req, dialect, to, correlation)
    if refused is not None:
        return refused
    account = _account(req)
    now = time.time()
    over = sim.live_calls(account, now) >= sim.cfg.account(account).max_concurrent_calls
    if over and dialect == "telecho":
        return tel_error(429, "concurrency_limit", "Concurrent call limit reached",
                         {"Retry-After": "1"})
    answer, reason, answered, ended = plan_call(sim.cfg.calls, sim.rng, now, to, over)
    acct = sim.cfg.account(account)
    call = Call(new_call_id(dialect, sim.rng), dialect, account, req[KEY], to, from_,
                None if agent is None else str(agent), correlation, meta, now, answer, reason,
                answered, ended, call_n=req[AUDIT]["call_n"],
                billing_increment_s=acct.billing_increment_s, report_billed=acct.report_billed)
    sim.add_call(call)
    req[AUDIT]["call_id"] = call.id
    if dialect == "itellico":
        sim.schedule_webhook(call)
    return await _created(req, call, kind, now)


async def _gate(req: web.Request, dialect: str, to: str,
                correlation: str | None) -> tuple[web.Response | None, str | None]:
    """What may refuse a create before any call exists: billing, idempotency, early faults.

    Returns the refusal (or None) and the fault kind drawn for this request.
    """
    sim = req.app[SIM]
    account = _account(req)
    if sim.cfg.account(account).blocked:
        return dialect_error(dialect, 402, "call_blocked", "Subscription expired"), None
    duplicate = _duplicate(sim, dialect, account, correlation)
    if duplicate is not None:  # checked before faults: a repeat never spends a counted fault
        return duplicate, None
    fault = sim.pick_fault(to)
    kind = fault["fault"] if fault else None
    early = await _early_fault(sim, dialect, kind, fault or {})
    if early is None:  # a slow fault waited: a concurrent create may have taken the id
        early = _duplicate(sim, dialect, account, correlation)
    return early, kind


def _duplicate(sim: Simulator, dialect: str, account: str,
               external_id: str | None) -> web.Response | None:
    """itellicoAI's 409 for an external_id that already created a call on this account."""
    if dialect != "itellico" or external_id is None:
        return None
    if (account, external_id) not in sim.external_ids:
        return None
    return itl_error(409, "A call with this external_id already exists")


async def _created(req: web.Request, call: Call, kind: str | None,
                   now: float) -> web.StreamResponse:
    """The answer to a create whose call exists, unless a fault garbles or withholds it."""
    sim = req.app[SIM]
    body = call.render(now)
    if call.dialect == "itellico":
        body["success"] = True
    else:
        body = {k: body[k] for k in ("call_id", "status", "destination_number")}
        body.update(room_name="room_" + call.id[9:],
                    phone_number=sim.cfg.account(call.account).caller_ids.get(call.from_))
    if kind == "timeout_after_create":
        await asyncio.sleep(sim.cfg.faults.hang_s)
    elif kind == "reset_after_create":
        if req.transport is not None:
            req.transport.abort()
        return web.Response(status=201)
    elif kind == "malformed_json":
        return web.Response(status=201, text='{"id": "tr', content_type="application/json")
    elif kind == "conflict":
        return dialect_error(call.dialect, 409, "conflict",
                             "A call with this external_id exists")
    return web.json_response(body, status=201)


async def _early_fault(sim: Simulator, dialect: str, kind: str | None,
                       fault: dict[str, Any]) -> web.Response | None:
    if kind is None:
        return None
    if kind.startswith("http_"):
        status = int(kind[5:])
        code = {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable",
                504: "gateway_timeout"}[status]
        return dialect_error(dialect, status, code, "Simulated upstream failure")
    if kind == "outbound_call_failed":
        if dialect == "telecho":
            return tel_error(502, "outbound_call_failed", "The dial did not connect")
        return itl_error(502, "The dial did not connect")
    if kind == "call_blocked":
        return dialect_error(dialect, 402, "call_blocked", "Out of minutes")
    if kind == "rate_limit":
        ra = str(fault.get("retry_after", sim.cfg.faults.retry_after_s))
        if dialect == "telecho":
            return tel_error(429, "rate_limit_per_minute", "Rate limit exceeded",
                             {"Retry-After": ra})
        return itl_error(429, "Rate limit exceeded", headers={"Retry-After": ra})
    if kind == "validation":
        if dialect == "telecho":
            return fastapi_422("destination_number", "value is not a valid phone number")
        return itl_error(422, "Validation failed", errors=[
            {"field": "to_number", "message": "not a valid number", "type": "value_error"}])
    if kind == "slow":
        await asyncio.sleep(sim.cfg.faults.slow_s)
    elif kind == "hang":
        await asyncio.sleep(sim.cfg.faults.hang_s)
        return dialect_error(dialect, 504, "gateway_timeout", "Timed out")
    return None


# -- reads ----------------------------------------------------------------------------------
def _visible(req: web.Request, call: Call | None) -> bool:
    return call is not None and call.account == _account(req) and call.dialect == req[DIALECT]


async def tel_get(req: web.Request) -> web.StreamResponse:
    call = req.app[SIM].calls.get(req.match_info["call_id"])
    if call is None or not _visible(req, call):
        return tel_error(404, "call_not_found", "Call not found")
    return web.json_response(call.render(time.time()))


async def tel_list(req: web.Request) -> web.StreamResponse:
    sim = req.app[SIM]
    query = req.query
    try:
        limit = max(1, min(100, int(query.get("limit", "20"))))
        offset = int(query.get("cursor") or 0)
    except ValueError:
        return tel_error(400, "invalid_cursor", "Invalid cursor or limit")
    after = None
    if query.get("created_after"):
        from datetime import datetime
        try:
            created = query["created_after"].replace("Z", "+00:00")
            after = datetime.fromisoformat(created).timestamp()
        except ValueError:
            return tel_error(400, "invalid_date", "created_after is not a valid date")
    calls = [c for cid in reversed(sim.order) if _visible(req, c := sim.calls[cid])
             and (after is None or c.created >= after)]
    page = calls[offset:offset + limit]
    nxt = str(offset + limit) if offset + limit < len(calls) else None
    now = time.time()
    return web.json_response({"data": [c.render(now) for c in page], "next_cursor": nxt})


async def itl_get(req: web.Request) -> web.StreamResponse:
    if not _own_account(req):
        return itl_error(403, "Not your account")
    call = req.app[SIM].calls.get(req.match_info["call_id"])
    if call is None or not _visible(req, call):
        return itl_error(404, "Call not found")
    return web.json_response(call.render(time.time()))


async def itl_list(req: web.Request) -> web.StreamResponse:
    if not _own_account(req):
        return itl_error(403, "Not your account")
    sim = req.app[SIM]
    query = req.query
    try:
        limit = max(1, min(100, int(query.get("limit", "20"))))
        offset = max(0, int(query.get("offset", "0")))
    except ValueError:
        return itl_error(400, "limit and offset must be integers")
    ext = query.get("external_id")
    calls = [c for cid in reversed(sim.order) if _visible(req, c := sim.calls[cid])
             and (ext is None or c.correlation == ext)]
    now = time.time()
    return web.json_response({"count": len(calls),
                              "items": [c.render(now) for c in calls[offset:offset + limit]]})


def add_provider_routes(app: web.Application) -> None:
    app.router.add_post(TEL_PREFIX + "/calls/outbound", tel_create)
    app.router.add_get(TEL_PREFIX + "/calls", tel_list)
    app.router.add_get(TEL_PREFIX + "/calls/{call_id}", tel_get)
    app.router.add_post("/v1/accounts/{account}/calls", itl_create)
    app.router.add_get("/v1/accounts/{account}/calls", itl_list)
    app.router.add_get("/v1/accounts/{account}/calls/{call_id}", itl_get)
