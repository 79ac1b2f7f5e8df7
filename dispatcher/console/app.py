"""The console's web app: pages read Redis; the few actions are token-guarded POSTs.

One process serves any number of viewers and any number of console processes can run side
by side (they share nothing but Redis). Pages refresh their live part every
``console.refresh_s`` by fetching themselves with ``X-Console-Fragment: 1``.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dispatcher.config.console import ConsoleConfig
from dispatcher.config.settings import Settings
from dispatcher.console import data, pages, pages_audit, pages_history, pages_workers, views
from dispatcher.console.auth import COOKIE, Grant, Tokens, csrf_of
from dispatcher.console.edge import Handler, forwarded, host_check, same_origin
from dispatcher.console.jobs_handlers import JobsPages, add_routes
from dispatcher.console.notices import Notice, notice_text, with_notice
from dispatcher.console.routes_limits import LimitPages
from dispatcher.console.tail import ResultsTail
from dispatcher.engine.http import metrics_handler
from dispatcher.logs import get_logger
from dispatcher.ops import audit, explain
from dispatcher.store import Store
from dispatcher.store.protocol import CampaignOp

STATIC = Path(__file__).parent / "static"
FRAGMENT = "X-Console-Fragment"
CAMPAIGN_OPS: dict[str, CampaignOp] = {"pause": "pause", "resume": "resume", "cancel": "cancel"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make browsers send Origin: null
}


@dataclass(frozen=True)
class Who:
    """Who sent a request: their token's grant, whether it came as a bearer header, and
    the session id of a logged-in browser."""

    grant: Grant | None
    bearer: bool = False
    session: str = ""

    @property
    def label(self) -> str:
        return self.grant.label if self.grant else "-"


WHO = web.RequestKey("who", Who)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    resp.headers.update(HEADERS)
    if not request.path.startswith("/static/"):
        resp.headers["Cache-Control"] = "no-store"
    return resp


@web.middleware
async def redis_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Redis out of reach is an answer (503, said in words on the console's own page), not a
    stack trace. Any other Redis error is a bug to see in full (500, logged)."""
    try:
        return await handler(request)
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        get_logger(component="console").warning("console.redis_unreachable", error=str(exc))
        return web.Response(status=503, text=unreachable_page(request.path_qs, exc),
                            content_type="text/html")


def unreachable_page(path: str, exc: BaseException) -> str:
    """The console's own page (its stylesheet, its nav), saying Redis is out of reach; it
    goes on refreshing, so it recovers by itself when Redis answers again."""
    ctx = views.Ctx(None, False, path, "", 2000)
    body = ('<div class="alert bad" data-alert="redis-unreachable"><b>Redis is unreachable</b>: '
            f'the console cannot read Redis ({views.esc(exc)}). Nothing on these pages can be '
            'shown until it answers; this page retries by itself. Workers wait for Redis too '
            '(their <code>/readyz</code> fails meanwhile).</div>')
    return views.page(ctx, "Redis unreachable", body)


def safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme)."""
    path = (target or "/").strip()
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def redirect(target: str) -> web.Response:
    return web.Response(status=303, headers={"Location": target})


class Console:
    def __init__(self, settings: Settings, cfg: ConsoleConfig, store: Store):
        self.settings = settings
        self.cfg = cfg
        self.store = store
        self.tokens = Tokens(cfg.token_file)
        self.sessions = store.console_sessions(cfg.session_ttl_s)
        self.tail = ResultsTail(store)
        self.log = get_logger(component="console")

    # -- who -----------------------------------------------------------------------------------
    async def who(self, req: web.Request) -> Who:
        """Who sent the request, looked up once per request."""
        if WHO not in req:
            req[WHO] = await self._who(req)
        return req[WHO]

    async def _who(self, req: web.Request) -> Who:
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return Who(self.tokens.by_token(auth[7:].strip()), bearer=True)
        session = req.cookies.get(COOKIE, "")
        ident = await self.sessions.ident(session) if session and self.tokens.enabled else None
        grant = self.tokens.by_ident(ident) if ident else None
        return Who(grant, session=session if grant else "")

    async def ctx(self, req: web.Request) -> views.Ctx:
        who = await self.who(req)
        return views.Ctx(who.grant, self.tokens.enabled, req.path_qs,
                         self.settings.redis.namespace, round(self.cfg.refresh_s * 1000),
                         csrf_of(who.session) if who.session else "")

    async def actor(self, req: web.Request, *, act: bool = True) -> tuple[Who, Any]:
        """Who is behind a POST, after the CSRF checks; 403 otherwise. ``act``: the grant
        must allow actions (logging out needs only a session)."""
        form = await req.post()
        who = await self.who(req)
        grant = who.grant
        if grant is None or (act and not grant.actions):
            raise web.HTTPForbidden(text="this action needs a console token (log in first)")
        if not who.bearer and not (same_origin(req) and hmac.compare_digest(
                str(form.get("csrf", "")), csrf_of(who.session))):
            raise web.HTTPForbidden(text="refused: the request did not come from this console")
        return who, form

    async def record_action(self, who: Who, action: audit.Action, target: str, detail: str = ""
                    ) -> None:
        """Record an action taken through the console, as the token's label."""
        await audit.record(self.store, action, target, who.label, via="console", detail=detail)

    # -- pages ---------------------------------------------------------------------------------
    async def known(self, about: str, name: str) -> bool:
        """Whether a notice's name is a configured provider or a known campaign."""
        if about == "provider":
            return name in self.settings.providers
        return await data.known_campaign(self.store, self.settings, name)

    async def render(self, req: web.Request, title: str, body: str, head: str = ""
                     ) -> web.Response:
        body = pages_workers.alarm(await pages_workers.fleet(self.store, self.settings)) + body
        if req.headers.get(FRAGMENT) == "1":
            return web.Response(text=body, content_type="text/html")
        html = views.page(await self.ctx(req), title, body, head=head,
                          flash=await notice_text(dict(req.query), self.known))
        return web.Response(text=html, content_type="text/html")

    async def overview(self, req: web.Request) -> web.Response:
        summary = await data.overview(self.store, self.settings, self.tail)
        span = pages_history.span_of(req.query.get("span"))
        history = await self.store.history(span, summary["now"])
        return await self.render(req, "Overview", views.overview(summary, await self.ctx(req))
                                 + pages_history.section(history, "/"))

    async def history(self, req: web.Request) -> web.Response:
        """A campaign's history (the namespace's is on the overview)."""
        name = req.query.get("campaign", "")
        if not name:
            raise web.HTTPFound("/")
        if not await data.known_campaign(self.store, self.settings, name):
            raise web.HTTPNotFound(text=f"no campaign named {name!r}")
        history = await self.store.history(pages_history.span_of(req.query.get("span")),
                                           await self.store.server_ms(), scope=name)
        return await self.render(req, f"History of {name}", pages_history.campaign_page(history))

    async def providers(self, req: web.Request) -> web.Response:
        summary = await data.providers(self.store, self.settings)
        return await self.render(req, "Providers", views.providers(summary, await self.ctx(req)))

    async def campaigns(self, req: web.Request) -> web.Response:
        summary = await data.campaigns(self.store, self.settings)
        return await self.render(req, "Campaigns", pages.campaigns(summary, await self.ctx(req)))

    async def jobs(self, req: web.Request) -> web.Response:
        job_id = req.query.get("id", "").strip()[:200]
        ctx = await self.ctx(req)
        facts = await explain.gather(self.store, self.settings, job_id) if job_id else None
        explanation = explain.explain(facts, show_numbers=bool(ctx.grant and ctx.grant.numbers)) \
            if facts else None
        raw = facts.job.get("raw", "") if facts else ""
        failed = next((f for f in self.tail.failures if f["job_id"] == job_id), None)
        return await self.render(req, f"Job {job_id}" if job_id else "Jobs",
                           pages.job(explanation, job_id, raw, ctx, failed),
                           head=pages.lookup_form(job_id))

    async def workers(self, req: web.Request) -> web.Response:
        fleet = await pages_workers.fleet(self.store, self.settings, reaped=50)
        return await self.render(req, "Workers", pages_workers.workers(fleet))

    async def audit_page(self, req: web.Request) -> web.Response:
        limit = pages_audit.limit_of(req.query.get("limit"))
        entries = await audit.latest(self.store, limit)
        return await self.render(req, "Audit", pages_audit.audit(
            entries, await self.store.server_ms(), limit))

    async def failures(self, req: web.Request) -> web.Response:
        now = await self.store.server_ms()
        await self.tail.refresh(now)
        items = [f for f in self.tail.failures if f["ms"] >= now - 3_600_000]
        return await self.render(req, "Failures and blocks", pages.failures(items, now))

    # -- sign-in -------------------------------------------------------------------------------
    async def login_page(self, req: web.Request) -> web.Response:
        if not self.tokens.enabled:
            return await self.render(req, "Log in", '<p class="muted">This console is '
                                     'read-only: no console.token_file is configured.</p>')
        return await self.render(req, "Log in", pages.login(safe_next(req.query.get("next"))))

    async def login(self, req: web.Request) -> web.Response:
        form = await req.post()
        target = safe_next(str(form.get("next", "/")))
        grant = self.tokens.by_token(str(form.get("token", ""))) if same_origin(req) else None
        if grant is None:
            await asyncio.sleep(0.5)
            resp = await self.render(req, "Log in", pages.login(target, "Unknown token."))
            resp.set_status(403)
            return resp
        self.log.info("console.login", token=grant.label)
        resp = redirect(target)
        resp.set_cookie(COOKIE, await self.sessions.open(grant.ident), httponly=True,
                        samesite="Strict", path="/", secure=req.secure,
                        max_age=round(self.cfg.session_ttl_s))
        return resp

    async def logout(self, req: web.Request) -> web.Response:
        who, _ = await self.actor(req, act=False)
        if who.session:
            await self.sessions.close(who.session)
        resp = redirect("/")
        resp.del_cookie(COOKIE, path="/")
        return resp

    # -- actions -------------------------------------------------------------------------------
    async def resume_provider(self, req: web.Request) -> web.Response:
        who, form = await self.actor(req)
        name = req.match_info["name"]
        if name not in self.settings.providers:
            raise web.HTTPNotFound(text=f"no provider named {name!r} is configured")
        was = bool(await self.store.halt_info(name))
        moved = await self.store.unpark(name, round(self.settings.retry.max_defer_s * 1000))
        self.log.info("console.provider_resumed", provider=name, was_halted=was, moved=moved,
                      token=who.label)
        await self.record_action(who, audit.Action.PROVIDER_RESUME, name,
                         f"{moved} parked jobs back" + ("" if was else "; was not halted"))
        notice = Notice.PROVIDER_RESUMED if was else Notice.PROVIDER_NOT_HALTED
        return redirect(with_notice(safe_next(str(form.get("next", "/providers"))), notice,
                                    name, moved))

    async def campaign_action(self, req: web.Request) -> web.Response:
        who, form = await self.actor(req)
        name, op = req.match_info["name"], req.match_info["op"]
        if op not in CAMPAIGN_OPS:
            raise web.HTTPNotFound(text=f"unknown campaign action {op!r}")
        if not await data.known_campaign(self.store, self.settings, name):
            raise web.HTTPNotFound(text=f"no campaign named {name!r}")
        cancelled = await self.store.campaign(CAMPAIGN_OPS[op], name, list(self.settings.providers))
        self.log.info("console.campaign", op=op, campaign=name, cancelled=cancelled,
                      token=who.label)
        await self.record_action(who, audit.Action(f"campaign.{op}"), name,
                         f"{cancelled} jobs cancelled" if op == "cancel" else "")
        notice = {"pause": Notice.CAMPAIGN_PAUSED, "resume": Notice.CAMPAIGN_RESUMED,
                  "cancel": Notice.CAMPAIGN_CANCELLED}[op]
        return redirect(with_notice(safe_next(str(form.get("next", "/campaigns"))), notice,
                                    name, cancelled))


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def build_app(settings: Settings, cfg: ConsoleConfig, store: Store) -> web.Application:
    console = Console(settings, cfg, store)
    jp = JobsPages(console)
    app = web.Application(middlewares=[security_headers, redis_errors, forwarded(cfg.proxies()),
                                       host_check(cfg.hosts())],
                          client_max_size=64 * 1024)
    router = app.router
    for path, fn in (("/", console.overview), ("/providers", console.providers),
                     ("/campaigns", console.campaigns), ("/jobs", jp.jobs),
                     ("/failures", console.failures),
                     ("/workers", console.workers), ("/audit", console.audit_page),
                     ("/history", console.history),
                     ("/login", console.login_page), ("/healthz", healthz),
                     ("/metrics", metrics_handler(settings, store))):
        router.add_get(path, fn)
    router.add_post("/login", console.login)
    router.add_post("/logout", console.logout)
    router.add_post("/actions/provider/{name}/resume", console.resume_provider)
    router.add_post("/actions/campaign/{name}/{op}", console.campaign_action)
    LimitPages(console).add_routes(router)
    add_routes(app, jp)
    router.add_static("/static", STATIC)
    return app
