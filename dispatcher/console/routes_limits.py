"""The console's limits, caller-ID and budget pages and their actions (set or reset a
provider's runtime limits, rest or restore a caller ID), on the console's token, CSRF and
origin checks like every other action.

What the pages show is read by the operator modules the command line uses
(``ops.limits``, ``ops.callerids``, ``ops.campaigns``); a change goes through the same
validation as ``dispatcher limits set``: a refused one stores nothing and says why.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from dispatcher.console import pages_limits as html
from dispatcher.console import views
from dispatcher.console.notices import Notice, with_notice
from dispatcher.ops import audit, callerids, campaigns
from dispatcher.ops import limits as ops_limits

if TYPE_CHECKING:
    from dispatcher.console.app import Console
    from dispatcher.providers import ProviderConfig


def by_label(label: str) -> str:
    """Who a change is recorded as: the console token's label."""
    return f"console:{label}"


def _slots(text: str) -> int | None:
    """The max-concurrent field: empty keeps the file's, else a whole number."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise ops_limits.BadLimits(
            f"max concurrent calls: expected a whole number >= 1, got {text!r}")
    return ops_limits.check_slots(int(text))


def _console_words(exc: ops_limits.BadLimits) -> str:
    """The command line's message with the form's field names."""
    return (str(exc).replace("--limits", "rate windows")
            .replace("--max-concurrent", "max concurrent calls"))


class LimitPages:
    def __init__(self, console: Console):
        self.c = console

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/limits", self.limits)
        router.add_get("/callerids", self.caller_ids)
        router.add_get("/budgets", self.budgets)
        router.add_post("/actions/limits/{name}/{op}", self.limits_action)
        router.add_post("/actions/callerid/{name}/{caller_id}/{op}", self.caller_id_action)

    # -- pages ---------------------------------------------------------------------------------
    async def _provider_limits(self, refused: html.ProviderLimits | None = None
                               ) -> list[html.ProviderLimits]:
        out = []
        for name, cfg in self.c.settings.providers.items():
            values = ops_limits.in_force(cfg, await self.c.store.limits_get(name),
                                         self.c.settings.tracking.track_calls)
            if refused is not None and refused.name == name:
                out.append(html.ProviderLimits(name, values, refused.error,
                                               refused.limits_text, refused.slots_text))
            else:
                out.append(html.ProviderLimits(name, values))
        return out

    async def limits(self, req: web.Request) -> web.Response:
        provs = await self._provider_limits()
        body = html.limits(provs, await self.c.store.server_ms(), await self.c.ctx(req))
        return await self.c.render(req, "Limits", body)

    async def caller_ids(self, req: web.Request) -> web.Response:
        pools: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        for name, cfg in self.c.settings.providers.items():
            if cfg.caller_ids is not None:
                items = await callerids.health(self.c.store, name, cfg.caller_ids)
                pools[name] = (callerids.setup_words(cfg.caller_ids),
                               callerids.to_json(cfg.caller_ids, items))
        body = html.caller_ids(pools, await self.c.store.server_ms(), await self.c.ctx(req))
        return await self.c.render(req, "Caller IDs", body)

    async def budgets(self, req: web.Request) -> web.Response:
        spends = {name: await campaigns.spend(self.c.store, name, camp.budget,
                                              camp.budget_timezone)
                  for name, camp in self.c.settings.campaigns.items()
                  if camp.budget is not None}
        return await self.c.render(req, "Budgets", html.budgets(spends))

    # -- actions -------------------------------------------------------------------------------
    def _provider(self, name: str) -> ProviderConfig:
        cfg = self.c.settings.providers.get(name)
        if cfg is None:
            raise web.HTTPNotFound(text=f"no provider named {name!r} is configured")
        return cfg

    async def limits_action(self, req: web.Request) -> web.Response:
        who, form = await self.c.actor(req)
        name, op = req.match_info["name"], req.match_info["op"]
        if op not in ("set", "reset"):
            raise web.HTTPNotFound(text=f"unknown limits action {op!r}")
        cfg = self._provider(name)
        if op == "reset":
            await self.c.store.limits_reset(name)
            await self.c.record_action(who, audit.Action.LIMITS_RESET, name)
            self.c.log.info("console.limits_reset", provider=name, token=who.label)
            return _back(form, "/limits", Notice.PROVIDER_LIMITS_RESET, name)
        text, slots_text = str(form.get("limits", "")), str(form.get("max_concurrent", ""))
        wins = [t.strip() for t in text.split(",") if t.strip()]
        try:
            await ops_limits.set_limits(self.c.store, name, cfg, by_label(who.label),
                                        limits=wins, max_concurrent=_slots(slots_text),
                                        tracked=self.c.settings.tracking.track_calls)
        except ops_limits.BadLimits as exc:
            refused = html.ProviderLimits(name, [], _console_words(exc), text[:200],
                                          slots_text[:20])
            return await self._refused(req, refused)
        await self.c.record_action(who, audit.Action.LIMITS_SET, name, " ".join(
            [*wins, *([f"max_concurrent={slots_text.strip()}"] if slots_text.strip() else [])]))
        self.c.log.info("console.limits_set", provider=name, limits=wins,
                        max_concurrent=slots_text.strip() or None, token=who.label)
        return _back(form, "/limits", Notice.PROVIDER_LIMITS_SET, name)

    async def _refused(self, req: web.Request, refused: html.ProviderLimits) -> web.Response:
        """The limits page with the refusal beside the form, as a 400 that does not refresh
        itself (its address is the action's, which only answers POST)."""
        ctx = replace(await self.c.ctx(req), refresh_ms=0)
        body = html.limits(await self._provider_limits(refused),
                           await self.c.store.server_ms(), ctx)
        return web.Response(status=400, content_type="text/html",
                            text=views.page(ctx, "Limits", body))

    async def caller_id_action(self, req: web.Request) -> web.Response:
        who, form = await self.c.actor(req)
        name, caller, op = (req.match_info["name"], req.match_info["caller_id"],
                            req.match_info["op"])
        if op not in ("rest", "restore"):
            raise web.HTTPNotFound(text=f"unknown caller-ID action {op!r}")
        pool = self._provider(name).caller_ids
        if pool is None or caller not in pool.keys():
            raise web.HTTPNotFound(text=f"caller ID {caller!r} is not in the pool of {name!r}")
        changed = await self.c.store.caller_id_rest(name, caller, rest=op == "rest")
        if changed:
            await self.c.record_action(who, audit.Action.CALLERID_REST if op == "rest"
                                       else audit.Action.CALLERID_RESTORE, f"{name} {caller}")
        self.c.log.info("console.caller_id", op=op, provider=name, caller_id=caller,
                        changed=changed, token=who.label)
        notice = Notice.PROVIDER_CALLER_ID_RESTED if op == "rest" \
            else Notice.PROVIDER_CALLER_ID_RESTORED
        return _back(form, "/callerids", notice, name)


def _back(form: Any, default: str, notice: Notice, name: str) -> web.Response:
    from dispatcher.console.app import redirect, safe_next  # app imports this module
    return redirect(with_notice(safe_next(str(form.get("next", default))), notice, name))
