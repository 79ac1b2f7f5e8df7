"""The jobs list's requests: the list itself, the dry-run count before a bulk action, and the
actions (cancel or redrive one job or every job a filter matches), each a token-guarded POST
with the same CSRF checks as the console's other actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from dispatcher.console import pages_jobs
from dispatcher.ops import audit, jobactions
from dispatcher.ops.jobfilter import REDRIVABLE, FilterError, JobFilter

if TYPE_CHECKING:
    from dispatcher.console.app import Console

PAGE_ROWS = 50


def _filter(query: Any) -> JobFilter:
    try:
        return JobFilter.parse(query, naive_utc=True)
    except FilterError as exc:
        raise web.HTTPBadRequest(text=f"bad filter: {exc}") from None


def _cursor(text: str) -> tuple[int, int] | None:
    score, _, count = text.partition(".")
    if not text:
        return None
    if not (score.lstrip("-").isdigit() and count.isdigit() and len(text) <= 40):
        raise web.HTTPBadRequest(text="bad filter: after: expected <score>.<count>, as the "
                                      "Next page link gives")
    return int(score), int(count)


def _redirect(target: str) -> web.Response:
    return web.Response(status=303, headers={"Location": target})


class JobsPages:
    def __init__(self, console: Console):
        self.c = console

    async def _head(self, flt: JobFilter) -> str:
        campaigns = sorted({*self.c.settings.campaigns, *await self.c.store.campaign_names()})
        return pages_jobs.filter_form(flt, campaigns[:500], sorted(self.c.settings.providers))

    async def jobs(self, req: web.Request) -> web.Response:
        """/jobs: one job's page when an id is given, else the list."""
        if req.query.get("id", "").strip():
            return await self.c.jobs(req)
        return await self.listing(req)

    async def listing(self, req: web.Request) -> web.Response:
        flt = _filter(req.query)
        page = await jobactions.page(self.c.store, flt, PAGE_ROWS,
                                     _cursor(req.query.get("after", "")))
        did = pages_jobs.did_text(req.query.get("did", ""), req.query.get("n", ""))
        ctx = await self.c.ctx(req)
        whole = await self.c.store.index_built()
        return await self.c.render(req, "Jobs", pages_jobs.jobs_list(flt, page, ctx, did,
                                                                     whole=whole),
                                   head=await self._head(flt))

    async def confirm(self, req: web.Request) -> web.Response:
        """How many jobs the action would change (a dry run), and the button that does it."""
        flt, action = _filter(req.query), req.query.get("action", "")
        tally = await self._run(action, flt, dry=True)
        title = f"{pages_jobs.ACTIONS[action]} {flt.describe()}"
        return await self.c.render(req, title, pages_jobs.confirm(action, flt, tally,
                                                                  await self.c.ctx(req)))

    async def _run(self, action: str, flt: JobFilter, *, dry: bool) -> jobactions.Tally:
        store, ttl = self.c.store, self.c.settings.worker.dedupe_ttl_s
        try:
            if action == "cancel":
                return await jobactions.cancel_matching(store, flt, ttl, dry=dry)
            if action == "redrive":
                return await jobactions.redrive_matching(store, flt, dry=dry)
        except FilterError as exc:
            raise web.HTTPBadRequest(text=f"bad filter: {exc}") from None
        raise web.HTTPNotFound(text=f"unknown jobs action {action!r}")

    async def bulk(self, req: web.Request) -> web.Response:
        who, form = await self.c.actor(req)
        action = req.match_info["op"]
        flt = _filter(form)
        tally = await self._run(action, flt, dry=False)
        done = "cancelled" if action == "cancel" else "redriven"
        await self.c.record_action(who, _AUDITED[action], flt.describe(), f"{tally.n} jobs {done}")
        self.c.log.info("console.jobs", op=action, filter=flt.query(), changed=tally.n,
                        other=dict(tally.other), token=who.label)
        return _redirect("/jobs?" + urlencode({**flt.query(), "did": done, "n": tally.n}))

    async def one(self, req: web.Request) -> web.Response:
        who, _ = await self.c.actor(req)
        job_id, op = req.match_info["id"], req.match_info["op"]
        store = self.c.store
        if op == "cancel":
            tally = await jobactions.cancel_ids(store, [job_id], self.c.settings.worker
                                                .dedupe_ttl_s, dry=False)
        elif op == "redrive":
            tally = await jobactions.redrive_ids(store, [job_id], list(
                REDRIVABLE), dry=False)
        else:
            raise web.HTTPNotFound(text=f"unknown job action {op!r}")
        if tally.n:
            await self.c.record_action(who, _AUDITED[op], job_id)
        self.c.log.info("console.job", op=op, job=job_id, changed=tally.n,
                        other=dict(tally.other), token=who.label)
        if not tally.n:
            why = ", ".join(tally.other) or "unknown"
            raise web.HTTPConflict(text=f"job {job_id} was not changed: {why}")
        return _redirect("/jobs?" + urlencode({"id": job_id}))


_AUDITED = {"cancel": audit.Action.JOB_CANCEL, "redrive": audit.Action.REDRIVE}


def add_routes(app: web.Application, pages: JobsPages) -> None:
    app.router.add_get("/jobs/confirm", pages.confirm)
    app.router.add_post("/actions/jobs/{op}", pages.bulk)
    app.router.add_post("/actions/job/{id}/{op}", pages.one)
