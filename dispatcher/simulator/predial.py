"""A pre-dial hook to point the dispatcher's ``policy.predial_url`` at: ``POST /_sim/predial``.

The dispatcher asks ``{"job_id", "to", "campaign", "metadata"}`` and expects
``{"allow": bool, "reason": str}``. The answer comes from ``SimConfig.predial``: a deny list, a
default, and counted faults per number that a fail-closed caller must survive without dialling
(a slow answer, a 5xx whose body still says ``allow: true``, a body that is not JSON, JSON
without ``allow`` or with a string in it). Every request is kept in ``Simulator.predial_log``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from dispatcher.simulator.app import E164, SIM, Simulator
from dispatcher.simulator.config import PredialSpec
from dispatcher.simulator.core import counted_fault

ASKED = ("job_id", "to", "campaign", "metadata")


def check_ask(body: Any) -> str | None:
    """Why a hook request is malformed, or None: all four keys, each of the right type."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    missing = [k for k in ASKED if k not in body]
    if missing:
        return f"missing fields {missing}"
    if not isinstance(body["job_id"], str) or not body["job_id"]:
        return "job_id must be a non-empty string"
    if not isinstance(body["to"], str) or not E164.match(body["to"]):
        return "to must be an E.164 number"
    if body["campaign"] is not None and not isinstance(body["campaign"], str):
        return "campaign must be a string or null"
    if body["metadata"] is not None and not isinstance(body["metadata"], dict):
        return "metadata must be an object or null"
    return None


def decide(spec: PredialSpec, to: str) -> dict[str, Any]:
    """The hook's verdict for a number when nothing goes wrong."""
    if to in spec.deny:
        return {"allow": False, "reason": spec.deny[to]}
    if spec.default_allow:
        return {"allow": True, "reason": "ok"}
    return {"allow": False, "reason": "not allowed by default"}


def faulty_answer(kind: str) -> web.Response:
    """What the hook sends instead of a verdict; none of these may lead to a dial."""
    if kind in ("http_500", "http_503"):
        return web.json_response({"allow": True, "reason": "simulated failure"},
                                 status=int(kind[5:]))
    if kind == "garbage":
        return web.Response(status=200, text="<html><body>upstream error</body></html>",
                            content_type="application/json")
    if kind == "wrong_shape":
        return web.json_response({"allowed": True, "reason": "ok"})
    return web.json_response({"allow": "true", "reason": "ok"})  # wrong_type


def _pick(sim: Simulator, to: str) -> str | None:
    rule = sim.cfg.predial.by_number.get(to)
    if rule is None:
        return None
    hits = sim.predial_hits.get(to, 0)
    sim.predial_hits[to] = hits + 1
    return counted_fault(rule, hits)


async def predial(req: web.Request) -> web.Response:
    sim = req.app[SIM]
    entry: dict[str, Any] = {"t": time.time(), "job_id": None, "to": None, "campaign": None,
                             "fault": None, "status": None, "answer": None}
    sim.predial_log.append(entry)  # logged on arrival: a caller that gives up is still seen
    try:
        body: Any = await req.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    problem = check_ask(body)
    if problem is not None:
        entry.update(status=422, error=problem)
        return web.json_response({"error": problem}, status=422)
    entry.update(job_id=body["job_id"], to=body["to"], campaign=body["campaign"])
    spec = sim.cfg.predial
    kind = _pick(sim, body["to"])
    entry["fault"] = kind
    await asyncio.sleep(spec.latency_s + (spec.slow_s if kind == "slow" else 0.0))
    if kind is not None and kind != "slow":
        resp = faulty_answer(kind)
        entry["status"] = resp.status
        return resp
    verdict = decide(sim.cfg.predial, body["to"])
    entry.update(status=200, answer=verdict)
    return web.json_response(verdict)


async def predial_log(req: web.Request) -> web.Response:
    since = float(req.query.get("since", "0"))
    return web.json_response({"entries": [e for e in req.app[SIM].predial_log
                                          if e["t"] >= since]})


async def predial_config(req: web.Request) -> web.Response:
    """Replace the given top-level keys of the hook's spec; counting restarts on by_number."""
    sim = req.app[SIM]
    try:
        body: Any = await req.json()
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        sim.cfg.predial = PredialSpec.model_validate({**sim.cfg.predial.model_dump(), **body})
    except (ValueError, ValidationError) as exc:
        return web.json_response({"ok": False, "error": str(exc)}, status=400)
    if "by_number" in body:
        sim.predial_hits.clear()
    return web.json_response({"ok": True, "predial": sim.cfg.predial.model_dump()})


def add_predial_routes(app: web.Application) -> None:
    app.router.add_post("/_sim/predial", predial)
    app.router.add_get("/_sim/predial", predial_log)
    app.router.add_post("/_sim/predial/config", predial_config)
