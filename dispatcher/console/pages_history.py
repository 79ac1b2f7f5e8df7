"""History charts: results by outcome, calls started, 429s and waits by reason over 1 h,
24 h or 7 d, for the whole namespace (on the overview) or one campaign (its History page).

Server-rendered SVG (the CSP allows no inline script or style): each bar carries a <title>
with its time and numbers, and each chart says its total and peak in words beside it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from dispatcher.console.tail import OUTCOMES
from dispatcher.console.views import campaign_link, esc, num
from dispatcher.ops.explain import REASONS, clock
from dispatcher.store.history import CALLS, EVERYWHERE, RATE_LIMITED, WAITS, History, Span

SPAN_WORDS = {Span.HOUR: "last hour", Span.DAY: "last 24 hours", Span.WEEK: "last 7 days"}
STEP_WORDS = {Span.HOUR: "minute", Span.DAY: "hour", Span.WEEK: "6 hours"}
BAR_W = 10  # viewBox units per bucket (a bar is 8 wide, 2 apart)
HEIGHT = 60


def span_of(value: str | None) -> Span:
    """The span asked for in ``?span=`` (1 h when absent or not one of 1h, 24h, 7d)."""
    try:
        return Span(value or Span.HOUR)
    except ValueError:
        return Span.HOUR


def _when(h: History, i: int) -> str:
    t = clock(h.start_ms + i * h.step_ms)
    return t[11:16] if h.span is Span.HOUR else t[5:16]


def _svg(h: History, cols: list[str], label: str) -> str:
    n = len(h.stacked(()))
    return (f'<svg class="chart" viewBox="0 0 {n * BAR_W} {HEIGHT}" '
            f'preserveAspectRatio="none" role="img" aria-label="{esc(label)}">'
            f'{"".join(cols)}</svg><div class="axis"><span>{esc(_when(h, 0))} UTC</span>'
            f'<span>now</span></div>')


def stacked(h: History, metrics: tuple[str, ...], css: dict[str, str], label: str) -> str:
    """One bar per bucket, its metrics stacked; heights relative to the tallest bar."""
    buckets = h.stacked(metrics)
    top = max([sum(b.values()) for b in buckets] + [1])
    cols = []
    for i, b in enumerate(buckets):
        y, rects = float(HEIGHT), []
        for m in metrics:
            if b.get(m):
                hgt = HEIGHT * b[m] / top
                y -= hgt
                rects.append(f'<rect x="{i * BAR_W}" y="{y:.2f}" width="8" '
                             f'height="{hgt:.2f}" class="{css[m]}"/>')
        if rects:
            words = ", ".join(f"{num(v)} {m.split(':')[-1]}" for m, v in b.items())
            cols.append(f'<g data-bucket="{i}"><title>{esc(_when(h, i))} UTC: {esc(words)}'
                        f'</title>{"".join(rects)}</g>')
    return _svg(h, cols, label)


def _peak(h: History, metrics: tuple[str, ...]) -> str:
    sums = [sum(b.values()) for b in h.stacked(metrics)]
    top = max([*sums, 0])
    if not top:
        return "none"
    return (f'total <b data-total>{num(sum(sums))}</b> · peak <b data-peak>{num(top)}</b> per '
            f'{STEP_WORDS[h.span]} ({esc(_when(h, sums.index(top)))} UTC)')


def _chart(h: History, title: str, key: str, metrics: tuple[str, ...],
           css: dict[str, str]) -> str:
    return (f'<div class="card" data-chart="{key}"><h3>{esc(title)} <small>'
            f'{_peak(h, metrics)}</small></h3>'
            f'{stacked(h, metrics, css, f"{title}, {SPAN_WORDS[h.span]}")}</div>')


def _waits(h: History) -> str:
    rows = []
    for m in WAITS:
        if h.total(m):
            reason = m[2:]
            rows.append(f'<tr data-reason="{esc(reason)}"><td>{esc(reason)}</td>'
                        f'<td class="muted">{esc(REASONS.get(reason, reason))}</td>'
                        f'<td class="n">{num(h.total(m))}</td></tr>')
    body = "".join(rows) or '<tr><td colspan="3" class="muted">no job had to wait</td></tr>'
    return (f'<div class="card" data-chart="waits"><h3>Waits by reason <small>jobs sent to '
            f'wait, {SPAN_WORDS[h.span]}</small></h3>'
            f'{stacked(h, WAITS, dict.fromkeys(WAITS, "h-wait"), "waits, all reasons")}'
            f'<table class="t"><tbody>{body}</tbody></table></div>')


def spans(path: str, chosen: Span, campaign: str = "") -> str:
    """Links to the same page for each span (the chosen one marked)."""
    links = []
    for s in Span:
        q = urlencode({"span": s.value, **({"campaign": campaign} if campaign else {})})
        cls = ' class="active" aria-current="true"' if s is chosen else ""
        links.append(f'<a href="{esc(path)}?{esc(q)}"{cls} data-span="{s.value}">{s.value}</a>')
    return f'<nav class="spans">{" ".join(links)}</nav>'


def section(h: History, path: str) -> str:
    """The four charts for one scope and span, with the span links."""
    outcomes = tuple(f"o:{o}" for o in OUTCOMES)
    camp = "" if h.scope == EVERYWHERE else h.scope
    parts = [_chart(h, "Results by outcome", "results", outcomes,
                    {m: f"o-{m[2:]}" for m in outcomes}),
             _chart(h, "Calls started", "calls", (CALLS,), {CALLS: "h-calls"})]
    if not camp:  # a 429 pauses the provider, whichever campaign met it
        parts.append(_chart(h, "429s answered by providers", "429", (RATE_LIMITED,),
                            {RATE_LIMITED: "h-429"}))
    parts.append(_waits(h))
    return (f'<section class="history" data-span="{h.span.value}"><h2>History '
            f'<small>{SPAN_WORDS[h.span]}, per {STEP_WORDS[h.span]}</small></h2>'
            f'{spans(path, h.span, camp)}<div class="cols">{"".join(parts)}</div></section>')


def campaign_page(h: History) -> str:
    return (f'<p>Campaign {campaign_link(h.scope)}: what its jobs did, '
            f'{SPAN_WORDS[h.span]}.</p>{section(h, "/history")}')
