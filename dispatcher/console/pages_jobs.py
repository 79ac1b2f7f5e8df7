"""HTML for the jobs list: the filter form, one page of jobs, the pager, and the pages that
show how many jobs an action would change before it is done."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from dispatcher.console.views import Ctx, button, esc, num
from dispatcher.core.model import Outcome, WaitReason
from dispatcher.logs import mask_number
from dispatcher.ops.explain import clock
from dispatcher.ops.jobactions import Tally
from dispatcher.ops.jobfilter import CANCELLABLE, LISTED, REDRIVABLE, JobFilter, iso
from dispatcher.store.joblist import JobPage
from dispatcher.store.keys import PRIORITIES

ACTIONS = {"cancel": "Cancel", "redrive": "Redrive"}


def list_url(flt: JobFilter, **more: str) -> str:
    return "/jobs?" + urlencode({**flt.query(), **more}) if flt.query() or more else "/jobs"


def job_url(job_id: str, op: str) -> str:
    return f"/actions/job/{quote(job_id, safe='')}/{op}"


def _select(name: str, value: str, options: tuple[str, ...], blank: str = "any") -> str:
    opts = "".join(f'<option value="{esc(o)}"{" selected" if o == value else ""}>{esc(o)}'
                   '</option>' for o in options)
    return (f'<label>{esc(name.replace("_", " "))} <select name="{name}">'
            f'<option value="">{esc(blank)}</option>{opts}</select></label>')


def _text(name: str, value: str, kind: str = "text", options: list[str] | None = None) -> str:
    dl = ""
    if options:
        dl = (f'<datalist id="dl-{name}">' + "".join(f'<option value="{esc(o)}">'
                                                      for o in options) + "</datalist>")
    return (f'<label>{esc(name)} <input type="{kind}" name="{name}" value="{esc(value)}"'
            f'{f" list=dl-{name}" if options else ""} autocomplete="off"></label>{dl}')


def filter_form(flt: JobFilter, campaigns: list[str], providers: list[str]) -> str:
    """The filters (outside the live part, so a refresh never resets what is being typed)."""
    states = tuple(str(s) for s in LISTED)
    return ('<form method="get" action="/jobs" class="lookup filters">'
            + _select("state", flt.state, states, blank="queued")
            + _text("campaign", flt.campaign, options=campaigns)
            + _select("provider", flt.provider, tuple(providers))
            + _select("priority", flt.priority, PRIORITIES)
            + _select("wait_reason", flt.wait_reason, tuple(w.value for w in WaitReason))
            + _select("outcome", flt.outcome, tuple(o.value for o in Outcome))
            + _text("since", iso(flt.since_ms), "datetime-local")
            + _text("until", iso(flt.until_ms), "datetime-local")
            + _select("order", "oldest" if flt.oldest_first else "", ("oldest",),
                      blank="newest")
            + '<button class="btn" type="submit">Show</button></form>'
            '<form method="get" action="/jobs" class="lookup"><label>Job id '
            '<input name="id" required autocomplete="off"></label>'
            '<button class="btn" type="submit">Explain</button></form>')


def _waiting(row: dict[str, Any]) -> str:
    if not row.get("wr"):
        return ""
    return f'{esc(row["wr"])}<br><small>{esc(row.get("wd") or "")}</small>'


def _row_action(row: dict[str, Any], ctx: Ctx) -> str:
    if row.get("state") in CANCELLABLE:
        return button(ctx, job_url(str(row["id"]), "cancel"), "Cancel", danger=True,
                      confirm=f"Cancel job {row['id']}?")
    if row.get("state") == "done" and row.get("outcome") in REDRIVABLE:
        return button(ctx, job_url(str(row["id"]), "redrive"), "Redrive",
                      confirm=f"Redrive job {row['id']}? It will be dialled again.")
    return ""


def _row(row: dict[str, Any], ctx: Ctx) -> str:
    show = ctx.grant is not None and ctx.grant.numbers
    to = str(row.get("to") or "")
    jid = str(row["id"])
    outcome = row.get("outcome") or ""
    badge = f'<span class="badge {esc(outcome)}">{esc(outcome)}</span>' if outcome else ""
    return (f'<tr data-job="{esc(jid)}" data-state="{esc(row.get("state"))}">'
            f'<td><a href="/jobs?id={quote(jid, safe="")}">{esc(jid)}</a></td>'
            f'<td><span class="badge {esc(row.get("state"))}">{esc(row.get("state"))}</span></td>'
            f'<td>{esc(row.get("camp") or "—")}</td><td>{esc(row.get("prov"))}</td>'
            f'<td>{esc(row.get("prio") or "normal")}</td>'
            f'<td>{esc(clock(int(row["since"])))}</td><td>{_waiting(row)}</td>'
            f'<td>{badge}</td>'
            f'<td class="n">{num(int(row.get("attempts") or 0))}</td>'
            f'<td class="to">{esc(to if show else mask_number(to))}</td>'
            f'<td class="actions">{_row_action(row, ctx)}</td></tr>')


def _bulk(flt: JobFilter, page: JobPage) -> str:
    if not page.rows:
        return ""
    query = flt.query()
    if flt.state in CANCELLABLE:
        return (f'<p><a class="btn danger" href="/jobs/confirm?'
                f'{esc(urlencode({**query, "action": "cancel"}))}">Cancel all matching…</a></p>')
    if flt.state == "done" and (not flt.outcome or flt.outcome in REDRIVABLE):
        return (f'<p><a class="btn" href="/jobs/confirm?'
                f'{esc(urlencode({**query, "action": "redrive"}))}">Redrive all matching…</a></p>')
    return ""


def _summary(flt: JobFilter, page: JobPage) -> str:
    what = esc(flt.describe())
    if page.exact:
        return f'<p class="summary" data-total="{page.total}">{num(page.total)} {what}</p>'
    return (f'<p class="summary">{what}: {num(len(page.rows))} on this page '
            f'<small class="muted">(of {num(page.total)} {esc(flt.state)} jobs in the index '
            f'read, {num(page.seen)} looked at for this page)</small></p>')


# Shown until the index is known to hold every job (store/keys.py ``index_built``).
UNINDEXED = ('<p class="alert warn" role="note" data-unindexed="1">Jobs stored before this '
             'version are not listed until <code>dispatcher reindex --apply</code>.</p>')


def jobs_list(flt: JobFilter, page: JobPage, ctx: Ctx, did: str = "", *,
              whole: bool = True) -> str:
    rows = "".join(_row(r, ctx) for r in page.rows)
    nxt = (f'<a class="next" href="{esc(list_url(flt, after=f"{page.cursor[0]}.{page.cursor[1]}"))}'
           f'">Next page →</a>' if page.cursor else "")
    first = f'<a href="{esc(list_url(flt))}">First page</a>'
    table = ('<div class="scroll"><table class="t wide jobs"><thead><tr><th>job</th>'
             '<th>state</th><th>campaign</th><th>provider</th><th>priority</th><th>since</th>'
             '<th>waiting for</th>'
             '<th>outcome</th><th>attempts</th><th>to</th><th></th></tr></thead>'
             f'<tbody>{rows}</tbody></table></div>' if rows else
             '<p class="muted">No job matches these filters.</p>')
    return (f'{did}{"" if whole else UNINDEXED}{_summary(flt, page)}{_bulk(flt, page)}{table}'
            f'<p class="pager">{first} {nxt}</p>')


def did_text(action: str, count: str) -> str:
    """The line after a bulk action: a fixed text, a count (never words from the address)."""
    if action not in ("cancelled", "redriven") or not count.isdigit() or len(count) > 9:
        return ""
    return f'<p class="flash" role="status" data-did="{action}">{num(int(count))} jobs {action}</p>'


def confirm(action: str, flt: JobFilter, tally: Tally, ctx: Ctx) -> str:
    """The dry run's count and the button that does it."""
    others = "; ".join(f"{n} {esc(why.replace('_', ' '))}" for why, n in
                       sorted(tally.other.items()))
    verb = "cancelled" if action == "cancel" else "redriven (dialled again, a new result each)"
    head = (f'<p class="dry" data-would="{tally.n}"><b>{num(tally.n)}</b> '
            f'{esc(flt.describe())} would be {verb}.'
            f'{f" <small>({others})</small>" if others else ""}</p>')
    if not tally.n:
        return head + f'<p><a href="{esc(list_url(flt))}">Back to the list</a></p>'
    if not ctx.can_act:
        return head + button(ctx, "/", ACTIONS[action])
    fields = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
                     for k, v in flt.query().items())
    return (f'{head}<form method="post" action="/actions/jobs/{action}" class="inline">'
            f'<input type="hidden" name="csrf" value="{esc(ctx.csrf)}">{fields}'
            f'<input type="hidden" name="expect" value="{tally.n}">'
            f'<button class="btn{" danger" if action == "cancel" else ""}" type="submit">'
            f'{ACTIONS[action]} {num(tally.n)} jobs</button></form> '
            f'<a href="{esc(list_url(flt))}">Back to the list</a>')
