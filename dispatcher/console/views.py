"""HTML for the console: the page frame, shared pieces, the overview and the providers page.

Everything a value passes through ``esc``; there is no inline script or style (the pages are
served with a Content-Security-Policy that forbids both), bars and charts are SVG shapes
whose colours come from the stylesheet.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import quote

from dispatcher.console.auth import Grant
from dispatcher.console.tail import OUTCOMES
from dispatcher.ops.explain import REASONS, clock, span, when

NAV = (("/", "Overview"), ("/providers", "Providers"), ("/campaigns", "Campaigns"),
       ("/jobs", "Jobs"), ("/failures", "Failures"), ("/workers", "Workers"),
       ("/limits", "Limits"), ("/callerids", "Caller IDs"), ("/budgets", "Budgets"),
       ("/audit", "Audit"))


@dataclass(frozen=True)
class Ctx:
    """Who is looking, and where: buttons need a grant and carry the session's CSRF value."""

    grant: Grant | None
    tokens_enabled: bool
    path: str
    namespace: str
    refresh_ms: int
    csrf: str = ""

    @property
    def can_act(self) -> bool:
        return self.grant is not None and self.grant.actions


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else esc(value)


def jobs(count: Any) -> str:
    """``1 job``, ``2 jobs``: a count of jobs in a sentence."""
    return f"{num(count)} job" if count == 1 else f"{num(count)} jobs"


def bar(used: float, limit: float | None, label: str = "", *, progress: bool = False) -> str:
    """A horizontal bar. A budget turns amber at 80 % and red when full; a progress bar is
    green when complete."""
    head = ('<svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" '
            f'aria-label="{esc(label)}"><rect width="100" height="8" class="track"/>')
    if not limit:
        return head + "</svg>"
    pct = max(0.0, min(100.0, 100 * used / limit))
    if progress:
        level = "done" if pct >= 100 else "ok"
    else:
        level = "full" if pct >= 100 else "high" if pct >= 80 else "ok"
    return head + f'<rect width="{pct:.1f}" height="8" class="fill {level}"/></svg>'


def stat(label: str, value: Any, key: str, sub: str = "") -> str:
    return (f'<div class="stat" data-metric="{esc(key)}"><div class="v">{num(value)}</div>'
            f'<div class="l">{esc(label)}</div>{sub}</div>')


def button(ctx: Ctx, url: str, label: str, *, danger: bool = False,
           confirm: str | None = None) -> str:
    """A POST form (with the CSRF value) when the viewer may act; else a disabled button."""
    cls = "btn danger" if danger else "btn"
    if not ctx.can_act:
        why = ("log in with a token to do this" if ctx.tokens_enabled
               else "read-only: set console.token_file to allow actions")
        return f'<button class="{cls}" disabled title="{esc(why)}">{esc(label)}</button>'
    data = f' data-confirm="{esc(confirm)}"' if confirm else ""
    return (f'<form method="post" action="{esc(url)}" class="inline"{data}>'
            f'<input type="hidden" name="csrf" value="{esc(ctx.csrf)}">'
            f'<input type="hidden" name="next" value="{esc(ctx.path)}">'
            f'<button class="{cls}" type="submit">{esc(label)}</button></form>')


def provider_url(name: str) -> str:
    return f"/actions/provider/{quote(name, safe='')}/resume"


def campaign_url(name: str, op: str) -> str:
    return f"/actions/campaign/{quote(name, safe='')}/{op}"


def jobs_of(campaign: str) -> str:
    """The jobs list filtered to a campaign."""
    return f"/jobs?campaign={quote(campaign, safe='')}"


def campaign_link(name: str | None) -> str:
    """A campaign's name, linking to its row on the Campaigns page ("—" for none)."""
    if not name:
        return "—"
    return f'<a href="/campaigns#c-{esc(name)}" data-campaign-link>{esc(name)}</a>'


def _template() -> Template:
    text = resources.files("dispatcher.console").joinpath("templates/layout.html").read_text()
    return Template(text)


LAYOUT = _template()


def page(ctx: Ctx, title: str, body: str, *, head: str = "", flash: str = "") -> str:
    nav = "".join(f'<a href="{u}"{" class=active" if ctx.path.split("?")[0] == u else ""}>'
                  f'{t}</a>' for u, t in NAV)
    if ctx.grant is not None:
        who = (f'token {esc(ctx.grant.label)} '
               f'<form method="post" action="/logout" class="inline">'
               f'<input type="hidden" name="csrf" value="{esc(ctx.csrf)}">'
               f'<button class="link" type="submit">log out</button></form>')
    elif ctx.tokens_enabled:
        who = f'read-only · <a href="/login?next={quote(ctx.path)}">log in to act</a>'
    else:
        who = "read-only"
    note = f'<p class="flash" role="status">{esc(flash)}</p>' if flash else ""
    # the default namespace is the product's name: "dispatcher dispatcher" says nothing
    ns = "" if ctx.namespace in ("", "dispatcher") else \
        f' <small title="Redis namespace">{esc(ctx.namespace)}</small>'
    return LAYOUT.substitute(title=esc(title), namespace=ns, nav=nav, who=who,
                             flash=note, head=head, body=body, refresh_ms=ctx.refresh_ms)


# -- overview --------------------------------------------------------------------------------
def _alerts(summary: dict[str, Any], ctx: Ctx) -> str:
    status, out = summary["status"], []
    for name in summary["halted"]:
        halt = status["providers"][name]["halt"] or {}
        out.append(f'<div class="alert bad" data-alert="halted">Provider <b>{esc(name)}</b> '
                   f'is <b>halted</b> ({esc(halt.get("code"))}: {esc(halt.get("reason"))}); '
                   f'{jobs(summary["parked"].get(name, 0))} parked. '
                   f'<a href="/providers#p-{esc(name)}">details</a> '
                   f'{button(ctx, provider_url(name), "Resume " + name)}</div>')
    for name, count in summary["parked"].items():
        if name not in summary["halted"]:
            out.append(f'<div class="alert warn">{jobs(count)} parked for provider '
                       f'<b>{esc(name)}</b>. {button(ctx, provider_url(name), "Send them")}</div>')
    for name, count in status.get("unconfigured", {}).items():
        out.append(f'<div class="alert bad" data-alert="unconfigured">{jobs(count)} parked for '
                   f'provider <b>{esc(name)}</b>, which is <b>not configured</b>: add it to '
                   f'the configuration, then resume it (<code>dispatcher resume '
                   f'{esc(name)}</code>).</div>')
    if summary["paused"]:
        names = ", ".join(campaign_link(c) for c in summary["paused"][:10])
        out.append(f'<div class="alert warn" data-alert="paused">Paused campaigns: {names}. '
                   f'<a href="/campaigns">Campaigns</a></div>')
    for words in summary.get("stale_registries", ()):
        out.append(f'<div class="alert bad" data-alert="registry">{esc(words)}: the jobs it '
                   f'covers wait (registry_stale) until a fresh copy is imported '
                   f'(<code>dispatcher dnc import FILE --registry NAME --as-of DATE</code>).'
                   f'</div>')
    if status["orphans"]:
        out.append(f'<div class="alert bad">{num(status["orphans"])} jobs lost their payload and '
                   f'cannot be sent; enqueue them again.</div>')
    return "".join(out)


def chart(per_minute: list[dict[str, int]], now: int) -> str:
    """Results per minute over the last hour, stacked by outcome."""
    top = max([sum(m.values()) for m in per_minute] + [1])
    cols = []
    start = now - len(per_minute) * 60_000
    for minute, counts in enumerate(per_minute):
        edge, rects = 60.0, []
        for outcome in OUTCOMES:
            if counts.get(outcome):
                hgt = 60 * counts[outcome] / top
                edge -= hgt
                rects.append(f'<rect x="{minute * 10}" y="{edge:.2f}" width="8" height="{hgt:.2f}" '
                             f'class="o-{outcome}"/>')
        if rects:
            words = ", ".join(f"{v} {k}" for k, v in counts.items())
            label = clock(start + minute * 60_000)[11:16]
            cols.append(f'<g><title>{label} UTC: {esc(words)}</title>{"".join(rects)}</g>')
    return (f'<svg class="chart" viewBox="0 0 600 60" preserveAspectRatio="none" role="img" '
            f'aria-label="results per minute, last hour">{"".join(cols)}</svg>'
            f'<div class="axis"><span>60 min ago</span><span>now</span></div>')


def overview(summary: dict[str, Any], ctx: Ctx) -> str:
    status = summary["status"]
    stats = "".join([
        stat("unread in the stream", status["unread"], "unread"),
        stat("queued (ready)", status["queued"], "queued"),
        stat("waiting", status["waiting"], "waiting"),
        stat("dialling", status["dialing"], "dialing"),
        stat("live calls", status["tracking"], "live"),
        stat("results written, last hour", sum(summary["results_hour"].values()), "results_hour"),
        stat("call starts / min", summary["starts_per_min"], "starts_per_min"),
        stat("results / min (5 min)", summary["results_per_min"], "results_per_min"),
    ])
    waits = "".join(f'<tr data-reason="{esc(r)}"><td>{esc(r)}</td><td>waits for '
                    f'{esc(REASONS.get(r, r))}</td><td class="n">{num(v)}</td></tr>'
                    for r, v in status["waiting_by_reason"].items()) or \
        '<tr><td colspan="3" class="muted">nothing waits</td></tr>'
    legend = "".join(f'<span class="key"><i class="o-{o}"></i>{o} '
                     f'<b data-outcome="{o}">{num(summary["results_hour"].get(o, 0))}</b></span>'
                     for o in OUTCOMES if summary["results_hour"].get(o))
    workers = "".join(
        f'<tr><td>{esc(c["name"])}</td><td>{_beat(c["last_heartbeat_s"])}</td>'
        f'<td class="n">{num(c["pending"])}</td></tr>' for c in status["consumers"]) or \
        '<tr><td colspan="3" class="muted">no worker has started</td></tr>'
    failures = summary["failures_hour"]
    what = "failure or block" if failures == 1 else "failures and blocks"
    fails = (f'<a href="/failures">{num(failures)} {what} in the last hour</a>' if failures
             else "no failures or blocks in the last hour")
    return (f'{_alerts(summary, ctx)}<section class="stats">{stats}</section>'
            f'<section class="cols"><div><h2>Results, last hour</h2>'
            f'{chart(summary["per_minute"], summary["now"])}'
            f'<p class="legend">{legend or "none yet"}</p>'
            f'<p>{fails}</p></div>'
            f'<div><h2>Waiting, by reason</h2><table class="t"><tbody>{waits}</tbody></table>'
            f'</div></section><h2>Providers</h2>{_provider_rows(status["providers"])}'
            f'<h2>Workers</h2><table class="t"><thead><tr><th>consumer</th>'
            f'<th>last heartbeat</th><th>read, not ingested</th></tr></thead>'
            f'<tbody>{workers}</tbody></table>')


def _provider_rows(provs: dict[str, Any]) -> str:
    rows = []
    for name, provider in provs.items():
        state = provider["state"]
        wins = " ".join(f'<span class="wl">{esc(w["window"])}</span> '
                        f'{bar(w["used"], w["limit"], w["window"])}<small data-window='
                        f'"{esc(w["window"])}">{num(w["used"])} of {num(w["limit"])} used'
                        f'</small>' for w in provider["windows"])
        cap = num(provider["slot_cap"]) if provider["slot_cap"] else "no cap"
        rows.append(f'<tr data-provider="{esc(name)}"><td><a href="/providers#p-{esc(name)}">'
                    f'{esc(name)}</a></td><td><span class="badge {state.replace(" ", "-")}">'
                    f'{state}</span></td><td>{wins}</td><td class="n">'
                    f'{num(provider["slots_in_use"])} / {cap}</td>'
                    f'<td class="n">{num(provider["parked"])}</td></tr>')
    body = "".join(rows) or '<tr><td colspan="5" class="muted">none configured</td></tr>'
    return ('<table class="t"><thead><tr><th>provider</th><th>state</th><th>rate windows</th>'
            '<th>live calls / slots</th><th>parked</th></tr></thead>'
            f'<tbody>{body}</tbody></table>')


def _beat(seconds: float | None) -> str:
    if seconds is None:
        return '<span class="muted">none</span>'
    cls = "bad" if seconds > 10 else ""
    return f'<span class="{cls}">{seconds:.1f} s ago</span>'


# -- providers -------------------------------------------------------------------------------
def _windows(provider: dict[str, Any], now: int) -> str:
    rows = []
    for window in provider["windows"]:
        hint = (f' · provider says {num(window["provider_remaining"])} left'
                if window["provider_remaining"] is not None else "")
        reset = (f'resets {when(now + round(window["resets_in_s"] * 1000), now)}'
                 if window["used"] else "empty")
        rows.append(f'<div class="win" data-window="{esc(window["window"])}">'
                    f'<span class="wl">{esc(window["window"])}</span>'
                    f'{bar(window["used"], window["limit"], window["window"])}'
                    f'<span class="wn">{num(window["used"])} of {num(window["limit"])} used'
                    f' · {reset}{hint}</span></div>')
    return "".join(rows)


def _provider(name: str, provider: dict[str, Any], now: int, ctx: Ctx) -> str:
    cap = provider["slot_cap"]
    shrunk = provider["slot_cap_shrunk_to"]
    eff = min(cap, shrunk) if cap and shrunk else cap
    state = provider["state"]
    shrunk_note = f" (shrunk from {cap} after a refusal)" if shrunk else ""
    slots = (f'<span class="wl">live calls</span>{bar(provider["slots_in_use"], eff, "call slots")}'
             f'<span class="wn">{num(provider["slots_in_use"])} of {num(eff)} slots in use'
             f'{shrunk_note}</span>' if eff
             else f'<span class="wl">live calls</span><span class="wn">'
                  f'{num(provider["slots_in_use"])} · no cap</span>')
    cool = (f'cooling down after a 429 until '
            f'{when(now + round(provider["cooldown_s"] * 1000), now)}'
            if provider["cooldown_s"] else "no cooldown")
    banner = ""
    if provider["halt"]:
        halt = provider["halt"]
        banner = (f'<div class="alert bad">Halted since {esc(when(halt["since_ms"], now))}: '
                  f'<b>{esc(halt["code"])}</b> — {esc(halt["reason"])}. Next probe in '
                  f'{span(round(halt["next_probe_s"] * 1000))}; '
                  f'{num(provider["parked"])} jobs parked. '
                  f'Fix the account, then {button(ctx, provider_url(name), "Resume " + name)}'
                  f'</div>')
    elif provider["parked"]:
        banner = (f'<div class="alert warn">{num(provider["parked"])} jobs parked. '
                  f'{button(ctx, provider_url(name), "Resume " + name)}</div>')
    return (f'<section class="card" id="p-{esc(name)}" data-provider="{esc(name)}" '
            f'data-state="{state}"><h2>{esc(name)} <small>{esc(provider["kind"])}</small> '
            f'<span class="badge {state.replace(" ", "-")}">{state}</span></h2>{banner}'
            f'<h3>Rate windows</h3>{_windows(provider, now)}<h3>Call slots</h3>'
            f'<div class="win">{slots}</div><p class="muted">{cool}</p></section>')


def providers(summary: dict[str, Any], ctx: Ctx) -> str:
    cards = [_provider(n, p, summary["now"], ctx) for n, p in summary["providers"].items()]
    return "".join(cards) or '<p class="muted">No provider is configured.</p>'
