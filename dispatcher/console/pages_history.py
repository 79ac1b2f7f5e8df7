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


def _when(history: History, index: int) -> str:
    stamp = clock(history.start_ms + index * history.step_ms)
    return stamp[11:16] if history.span is Span.HOUR else stamp[5:16]


def _svg(history: History, cols: list[str], label: str) -> str:
    bars = len(history.stacked(()))
    return (f'<svg class="chart" viewBox="0 0 {bars * BAR_W} {HEIGHT}" '
            f'preserveAspectRatio="none" role="img" aria-label="{esc(label)}">'
            f'{"".join(cols)}</svg><div class="axis"><span>{esc(_when(history, 0))} UTC</span>'
            f'<span>now</span></div>')


def stacked(history: History, metrics: tuple[str, ...], css: dict[str, str], label: str) -> str:
    """One bar per bucket, its metrics stacked; heights relative to the tallest bar."""
    buckets = history.stacked(metrics)
    top = max([sum(b.values()) for b in buckets] + [1])
    cols = []
    for index, bucket in enumerate(buckets):
        edge, rects = float(HEIGHT), []
        for metric in metrics:
            if bucket.get(metric):
                hgt = HEIGHT * bucket[metric] / top
                edge -= hgt
                rects.append(f'<rect x="{index * BAR_W}" y="{edge:.2f}" width="8" '
                             f'height="{hgt:.2f}" class="{css[metric]}"/>')
        if rects:
            words = ", ".join(f"{num(v)} {m.split(':')[-1]}" for m, v in bucket.items())
            cols.append(f'<g data-bucket="{index}"><title>{esc(_when(history, index))} UTC: '
                        f'{esc(words)}</title>{"".join(rects)}</g>')
    return _svg(history, cols, label)


def _peak(history: History, metrics: tuple[str, ...]) -> str:
    sums = [sum(b.values()) for b in history.stacked(metrics)]
    top = max([*sums, 0])
    if not top:
        return "none"
    return (f'total <b data-total>{num(sum(sums))}</b> · peak <b data-peak>{num(top)}</b> per '
            f'{STEP_WORDS[history.span]} ({esc(_when(history, sums.index(top)))} UTC)')


def _chart(history: History, title: str, key: str, metrics: tuple[str, ...],
           css: dict[str, str]) -> str:
    return (f'<div class="card" data-chart="{key}"><h3>{esc(title)} <small>'
            f'{_peak(history, metrics)}</small></h3>'
            f'{stacked(history, metrics, css, f"{title}, {SPAN_WORDS[history.span]}")}</div>')


def _waits(history: History) -> str:
    rows = []
    for metric in WAITS:
        if history.total(metric):
            reason = metric[2:]
            rows.append(f'<tr data-reason="{esc(reason)}"><td>{esc(reason)}</td>'
                        f'<td class="muted">{esc(REASONS.get(reason, reason))}</td>'
                        f'<td class="n">{num(history.total(metric))}</td></tr>')
    body = "".join(rows) or '<tr><td colspan="3" class="muted">no job had to wait</td></tr>'
    return (f'<div class="card" data-chart="waits"><h3>Waits by reason <small>jobs sent to '
            f'wait, {SPAN_WORDS[history.span]}</small></h3>'
            f'{stacked(history, WAITS, dict.fromkeys(WAITS, "h-wait"), "waits, all reasons")}'
            f'<table class="t"><tbody>{body}</tbody></table></div>')


def spans(path: str, chosen: Span, campaign: str = "") -> str:
    """Links to the same page for each span (the chosen one marked)."""
    links = []
    for span in Span:
        query = urlencode({"span": span.value, **({"campaign": campaign} if campaign else {})})
        cls = ' class="active" aria-current="true"' if span is chosen else ""
        links.append(f'<a href="{esc(path)}?{esc(query)}"{cls} data-span="{span.value}">'
                     f'{span.value}</a>')
    return f'<nav class="spans">{" ".join(links)}</nav>'


def section(history: History, path: str) -> str:
    """The four charts for one scope and span, with the span links."""
    outcomes = tuple(f"o:{o}" for o in OUTCOMES)
    camp = "" if history.scope == EVERYWHERE else history.scope
    parts = [_chart(history, "Results by outcome", "results", outcomes,
                    {m: f"o-{m[2:]}" for m in outcomes}),
             _chart(history, "Calls started", "calls", (CALLS,), {CALLS: "h-calls"})]
    if not camp:  # a 429 pauses the provider, whichever campaign met it
        parts.append(_chart(history, "429s answered by providers", "429", (RATE_LIMITED,),
                            {RATE_LIMITED: "h-429"}))
    parts.append(_waits(history))
    return (f'<section class="history" data-span="{history.span.value}"><h2>History '
            f'<small>{SPAN_WORDS[history.span]}, per {STEP_WORDS[history.span]}</small></h2>'
            f'{spans(path, history.span, camp)}<div class="cols">{"".join(parts)}</div></section>')


def campaign_page(history: History) -> str:
    return (f'<p>Campaign {campaign_link(history.scope)}: what its jobs did, '
            f'{SPAN_WORDS[history.span]}.</p>{section(history, "/history")}')
