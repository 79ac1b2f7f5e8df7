"""The built-in provider simulator (both dialects), used by the demo, the tests and rehearsals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from dispatcher.simulator.app import SIM, Simulator
from dispatcher.simulator.config import AccountSpec, KeySpec, SimConfig, load_sim_config
from dispatcher.simulator.core import RateWindows
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
    d: dict[str, Any] = await req.json()
    for f in d.get("next", []):
        sim.next_faults.append(dict(f))
    if "probability" in d:
        sim.cfg.faults.probability = dict(d["probability"])
    if "by_number" in d:
        sim.cfg.faults.by_number.update(d["by_number"])
        sim.number_hits.clear()
    for name in ("webhook_duplicates", "webhook_drop_p", "retry_after_s"):
        if name in d:
            setattr(sim.cfg.faults, name, d[name])
    return web.json_response({"ok": True})


async def _keys(req: web.Request) -> web.Response:
    sim = req.app[SIM]
    d: dict[str, Any] = await req.json()
    key = str(d.pop("key"))
    current = sim.cfg.keys.get(key)
    merged = {**(current.model_dump() if current else {}), **d}
    sim.cfg.keys[key] = KeySpec.model_validate(merged)
    if "limits" in d:
        sim.rates[key] = RateWindows(sim.cfg.keys[key].limits)
    return web.json_response({"ok": True})


async def _accounts(req: web.Request) -> web.Response:
    sim = req.app[SIM]
    d: dict[str, Any] = await req.json()
    name = str(d.pop("account", "acme"))
    merged = {**sim.cfg.account(name).model_dump(), **d}
    sim.cfg.accounts[name] = AccountSpec.model_validate(merged)
    return web.json_response({"ok": True})


async def _reset(req: web.Request) -> web.Response:
    sim = req.app[SIM]
    sim.audit.clear()
    sim.calls.clear()
    sim.order.clear()
    sim.rates.clear()
    sim.next_faults.clear()
    sim.number_hits.clear()
    sim.webhook_log.clear()
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


__all__ = ["SimConfig", "Simulator", "load_sim_config", "make_app", "start_simulator"]
