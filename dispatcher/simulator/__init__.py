"""The built-in provider simulator (both dialects), used by the demo, the tests and rehearsals.

Admin endpoints (never audited, no auth):

- ``GET /_sim/audit?since=T`` -> ``{"entries": [...]}``: every provider request, each
  ``{t, key, method, path, status, code, admitted}`` plus, on creates, ``to``, ``correlation``
  (``metadata.dispatcher_job_id`` / ``external_id``), ``call_n`` and ``call_id``.
- ``GET /_sim/calls`` -> ``{"calls": [Call.truth()...], "webhooks": [...]}``: ground truth.
- ``POST /_sim/faults``, ``/_sim/keys``, ``/_sim/accounts``: change faults, keys, accounts.
- ``POST /_sim/predial`` (the hook), ``GET /_sim/predial`` (its log), ``POST
  /_sim/predial/config`` (see ``dispatcher.simulator.predial``).
- ``POST /_sim/reset``: forget requests, calls, spent external_ids, fault counters, hook log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from dispatcher.simulator.app import SIM, Simulator
from dispatcher.simulator.config import (
    FAULTS,
    AccountSpec,
    KeySpec,
    PredialSpec,
    SimConfig,
    check_counted,
    load_sim_config,
)
from dispatcher.simulator.core import RateWindows
from dispatcher.simulator.predial import add_predial_routes
from dispatcher.simulator.routes import add_provider_routes, provider_middleware


async def _audit(req: web.Request) -> web.Response:
    sim = req.app[SIM]
    since = float(req.query.get("since", "0"))
    return web.json_response({"entries": [e for e in sim.audit if e["t"] >= since]})


async def _calls(req: web.Request) -> web.Response:
    sim = req.app[SIM]
    return web.json_response({"calls": [sim.calls[c].truth() for c in sim.order],
                              "webhooks": sim.webhook_log})


async def _faults(req: web.Request) -> web.Response:
    sim = req.app[SIM]
    body: dict[str, Any] = await req.json()
    for fault in body.get("next", []):
        sim.next_faults.append(dict(fault))
    if "probability" in body:
        sim.cfg.faults.probability = dict(body["probability"])
    if "by_number" in body:
        try:
            rules = check_counted({str(k): str(v) for k, v in body["by_number"].items()}, FAULTS)
        except ValueError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        sim.cfg.faults.by_number.update(rules)
        sim.number_hits.clear()
    for name in ("webhook_duplicates", "webhook_drop_p", "retry_after_s"):
        if name in body:
            setattr(sim.cfg.faults, name, body[name])
    return web.json_response({"ok": True})


async def _keys(req: web.Request) -> web.Response:
    sim = req.app[SIM]
    body: dict[str, Any] = await req.json()
    key = str(body.pop("key"))
    current = sim.cfg.keys.get(key)
    merged = {**(current.model_dump() if current else {}), **body}
    sim.cfg.keys[key] = KeySpec.model_validate(merged)
    if "limits" in body:
        sim.rates[key] = RateWindows(sim.cfg.keys[key].limits)
    return web.json_response({"ok": True})


async def _accounts(req: web.Request) -> web.Response:
    sim = req.app[SIM]
    body: dict[str, Any] = await req.json()
    name = str(body.pop("account", "acme"))
    merged = {**sim.cfg.account(name).model_dump(), **body}
    sim.cfg.accounts[name] = AccountSpec.model_validate(merged)
    return web.json_response({"ok": True})


async def _reset(req: web.Request) -> web.Response:
    req.app[SIM].reset()
    return web.json_response({"ok": True})


def make_app(cfg: SimConfig | None = None) -> web.Application:
    app = web.Application(middlewares=[cast(Any, provider_middleware)])
    sim = Simulator(cfg or SimConfig())
    app[SIM] = sim
    add_provider_routes(app)
    app.router.add_get("/_sim/audit", _audit)
    app.router.add_get("/_sim/calls", _calls)
    app.router.add_post("/_sim/faults", _faults)
    app.router.add_post("/_sim/keys", _keys)
    app.router.add_post("/_sim/accounts", _accounts)
    app.router.add_post("/_sim/reset", _reset)
    add_predial_routes(app)

    async def _close(app: web.Application) -> None:
        await app[SIM].close()

    app.on_cleanup.append(_close)
    return app


@dataclass
class RunningSimulator:
    runner: web.AppRunner
    sim: Simulator
    url: str

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_simulator(cfg: SimConfig | None = None, host: str = "127.0.0.1",
                          port: int = 0) -> RunningSimulator:
    app = make_app(cfg)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server: Any = site._server
    actual = server.sockets[0].getsockname()[1]
    return RunningSimulator(runner, app[SIM], f"http://{host}:{actual}")


__all__ = ["PredialSpec", "RunningSimulator", "SimConfig", "Simulator", "load_sim_config",
           "make_app", "start_simulator"]
