"""HTML for the campaigns, job, failures and login pages."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from dispatcher.console.views import (
    Ctx,
    bar,
    button,
    campaign_link,
    campaign_url,
    esc,
    jobs_of,
    num,
    provider_url,
)
from dispatcher.logs import clean_field
from dispatcher.ops.explain import Explanation, Why, clock, span, when
from dispatcher.ops.jobfilter import REDRIVABLE as FAILED_OUTCOMES


# -- campaigns -------------------------------------------------------------------------------
def _campaign_buttons(campaign: dict[str, Any], ctx: Ctx) -> str:
    name, out = campaign["name"], []
    if campaign["state"] in ("paused", "cancelled"):
        out.append(button(ctx, campaign_url(name, "resume"), "Resume"))
    else:
        out.append(button(ctx, campaign_url(name, "pause"), "Pause"))
    if campaign["state"] != "cancelled":
        out.append(button(ctx, campaign_url(name, "cancel"), "Cancel", danger=True,
                          confirm=f"Cancel every job of campaign {name} not dialled yet?"))
    return "".join(out)


def _campaign(campaign: dict[str, Any], now: int, ctx: Ctx) -> str:
    outcomes = " · ".join(f"{esc(k)} {num(v)}" for k, v in sorted(campaign["outcomes"].items()))
    eta = (f'<span class="muted">— ({esc(campaign["no_eta"])})</span>' if campaign["no_eta"]
           else span(campaign["eta_s"] * 1000) if campaign["eta_s"] else "—")
    cap = (f'<br><small>{num(campaign["cap_live"])} of {num(campaign["cap"])} live (cap)</small>'
           if campaign["cap"] else "")
    return (f'<tr id="c-{esc(campaign["name"])}" data-campaign="{esc(campaign["name"])}" '
            f'data-state="{campaign["state"]}"><td><a href="{jobs_of(campaign["name"])}">'
            f'<b>{esc(campaign["name"])}</b>'
            f'</a> <small><a href="/history?campaign={quote(campaign["name"], safe="")}" '
            f'data-history>history</a></small>{cap}</td>'
            f'<td><span class="badge {campaign["state"]}">{campaign["state"]}</span></td>'
            f'<td>{bar(campaign["done"], campaign["total"], "progress", progress=True)}'
            f'<small>{num(campaign["done"])} of {num(campaign["total"])} done</small></td>'
            f'<td class="n">{num(campaign["queued"])}</td>'
            f'<td class="n">{num(campaign["waiting"])}</td>'
            f'<td class="n">{num(campaign["dialing"])}</td>'
            f'<td class="n">{num(campaign["live"])}</td><td><small>{outcomes or "—"}</small></td>'
            f'<td class="n">{campaign["pace_per_min"]}</td><td data-eta>{eta}</td>'
            f'<td class="actions">{_campaign_buttons(campaign, ctx)}</td></tr>')


def campaigns(summary: dict[str, Any], ctx: Ctx) -> str:
    if not summary["campaigns"]:
        return '<p class="muted">No campaign yet: jobs with a "campaign" field appear here.</p>'
    rows = "".join(_campaign(c, summary["now"], ctx) for c in summary["campaigns"])
    return ('<table class="t wide"><thead><tr><th>campaign</th><th>state</th><th>progress</th>'
            '<th>queued</th><th>waiting</th><th>dialling</th><th>live</th><th>results</th>'
            '<th title="call starts per minute, last 5 minutes">pace /min</th><th>ETA</th>'
            f'<th></th></tr></thead><tbody>{rows}</tbody></table>'
            '<p class="muted">Pace counts call starts (redials and retries included); the ETA '
            'divides the jobs without a result by it.</p>')


# -- a job -----------------------------------------------------------------------------------
def lookup_form(job_id: str) -> str:
    return ('<form method="get" action="/jobs" class="lookup"><label>Job id '
            f'<input name="id" value="{esc(job_id)}" required autocomplete="off"></label>'
            '<button class="btn" type="submit">Explain</button></form>')


def _fix(why: Why, ctx: Ctx) -> str:
    if not why.action:
        return ""
    name = why.action["name"]
    if why.action["kind"] == "provider":
        return button(ctx, provider_url(name), f"Resume provider {name}")
    return button(ctx, campaign_url(name, "resume"), f"Resume campaign {name}")


def _why(why: Why, ctx: Ctx, primary: bool) -> str:
    fix = ""
    if why.fix:
        shown = (f"<code>{esc(why.fix)}</code>" if why.fix.startswith("dispatcher ")
                 else esc(why.fix))
        fix = f'<div class="fix">Fix: {shown}</div>'
    cls = "why primary" if primary else "why"
    return (f'<div class="{cls}" data-why="{esc(why.code)}"><div class="text">{esc(why.text)}'
            f'</div>{fix}{_fix(why, ctx)}</div>')


def _payload(raw: str, show_numbers: bool) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return '<p class="muted">payload is not JSON</p>'
    shown = data if show_numbers else clean_field("job", data)
    return f'<pre class="payload">{esc(json.dumps(shown, indent=2, ensure_ascii=False))}</pre>'


def _result(res: dict[str, Any] | None) -> str:
    """What the results stream said of a failed job (the console keeps the last hour's)."""
    if not res:
        return ""
    answer = " ".join(str(x) for x in (res.get("http_status"), res.get("error_code")) if x)
    why = f" — {esc(res['why'])}" if res["why"] else ""
    return (f'<p class="result">Result <b>{esc(res["outcome"])}</b>'
            f'{": " + esc(answer) if answer else ""}{why} '
            f'({num(res.get("attempts") or 0)} attempts).</p>')


def _call_facts(explanation: Explanation) -> list[tuple[str, str]]:
    """A done job's answer status and call duration (when its call reported them)."""
    if explanation.state != "done":
        return []
    seconds = explanation.duration_s
    dur = "—" if seconds is None else (
        span(round(seconds * 1000)) if seconds >= 1 else f"{seconds:g} s")
    answer = explanation.answer_status or "—"
    return [("answer_status", f'<span data-fact="answer_status">{esc(answer)}</span>'),
            ("duration", f'<span data-fact="duration">{esc(dur)}</span>')]


def job(explanation: Explanation | None, job_id: str, raw: str, ctx: Ctx,
        result: dict[str, Any] | None = None) -> str:
    if not job_id:
        return '<p class="muted">Enter a job id to see its history and why it waits.</p>'
    if explanation is None:
        return (f'<div class="alert warn" data-why="unknown">No job with id <b>{esc(job_id)}</b>'
                ': never read from the stream, or its result is older than '
                'worker.dedupe_ttl_s.</div>')
    also = "".join(_why(w, ctx, False) for w in explanation.also)
    facts = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in (
        ("state", f'<span class="badge {esc(explanation.state)}" '
                  f'data-state="{esc(explanation.state)}">{esc(explanation.state)}</span>'),
        ("provider", esc(explanation.provider)),
        ("campaign", campaign_link(explanation.campaign)),
        ("priority", esc(explanation.priority)), ("attempts", num(explanation.attempts)),
        ("to", esc(explanation.to)),
        *_call_facts(explanation)))
    steps = "".join(f'<tr data-event="{esc(e)}"><td>{esc(clock(t))}</td><td>{esc(e)}</td>'
                    f'<td>{esc(words)}</td></tr>' for t, e, words in explanation.timeline)
    show = ctx.grant is not None and ctx.grant.numbers
    title = "Done" if explanation.state == "done" else "Why it waits now"
    return (f'<h2>{title} <small>({esc(clock(explanation.now_ms))})</small></h2>'
            f'{_why(explanation.why, ctx, True)}{_result(result)}{also}'
            f'<section class="cols"><div><h2>Job</h2>'
            f'<table class="t kv">{facts}</table></div><div><h2>Payload</h2>'
            f'{_payload(raw, show)}</div></section><h2>Timeline</h2><table class="t">'
            f'<thead><tr><th>time</th><th>event</th><th>what happened</th></tr></thead>'
            f'<tbody>{steps}</tbody></table>')


# -- failures --------------------------------------------------------------------------------
def failures(items: list[dict[str, Any]], now: int) -> str:
    older = " · ".join(f'<a href="/jobs?state=done&amp;outcome={o}">{o}</a>'
                       for o in FAILED_OUTCOMES)
    links = (f'<p class="muted" data-older>Older, by outcome (filter by campaign, provider or '
             f'time in the jobs list): {older}</p>')
    if not items:
        return f'<p class="muted">No failure or block in the last hour.</p>{links}'
    rows = "".join(
        f'<tr data-outcome="{esc(f["outcome"])}"><td>{esc(when(f["ms"], now))}</td>'
        f'<td><a href="/jobs?id={quote(str(f["job_id"] or ""))}">{esc(f["job_id"])}</a></td>'
        f'<td><span class="badge {esc(f["outcome"])}">{esc(f["outcome"])}</span></td>'
        f'<td>{esc(f["provider"])}</td><td>{campaign_link(f["campaign"])}</td>'
        f'<td>{esc(f["http_status"] or "")} {esc(f["error_code"] or "")}</td>'
        f'<td>{esc(f["why"])}</td></tr>' for f in items)
    return ('<table class="t wide"><thead><tr><th>when</th><th>job</th><th>outcome</th>'
            '<th>provider</th><th>campaign</th><th>answer</th><th>why</th></tr></thead>'
            f'<tbody>{rows}</tbody></table>{links}')


# -- login -----------------------------------------------------------------------------------
def login(next_path: str, error: str = "") -> str:
    err = f'<p class="alert bad">{esc(error)}</p>' if error else ""
    return (f'{err}<form method="post" action="/login" class="login">'
            f'<input type="hidden" name="next" value="{esc(next_path)}">'
            '<label>Console token <input type="password" name="token" required '
            'autocomplete="current-password"></label>'
            '<button class="btn" type="submit">Log in</button></form>'
            '<p class="muted">A token from console.token_file lets you resume providers, '
            'pause, resume or cancel campaigns and change limits and caller IDs.</p>')
