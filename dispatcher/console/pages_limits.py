"""HTML for the limits, caller-ID and budget pages: what is in force and where it comes from,
each caller ID's health, and what each campaign with a budget has spent today.

The rows come from the operator readers in ``dispatcher.ops`` (the same the command line
prints); this module only lays them out, every value through ``esc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from dispatcher.console.views import Ctx, bar, button, esc, num
from dispatcher.ops.explain import when
from dispatcher.ops.limits import Value


@dataclass(frozen=True)
class ProviderLimits:
    name: str
    values: list[Value]
    error: str = ""         # a refused change, said beside the provider's form
    limits_text: str = ""   # what was typed, shown again with the error
    slots_text: str = ""


def limits_url(provider: str, op: str) -> str:
    return f"/actions/limits/{quote(provider, safe='')}/{op}"


def callerid_url(provider: str, caller_id: str, op: str) -> str:
    return f"/actions/callerid/{quote(provider, safe='')}/{quote(caller_id, safe='')}/{op}"


# -- limits ----------------------------------------------------------------------------------
def _value_row(value: Value, now: int) -> str:
    if value.source == "override" and value.since_ms is not None:
        where = (f'since {esc(when(value.since_ms, now))} by <b>{esc(value.by)}</b>'
                 f'<br><small>the file says {esc(value.file_value)}</small>')
    else:
        where = '<span class="muted">from the configuration file</span>'
    if value.not_applied:
        where += f'<div class="alert warn" data-not-applied="1">{esc(value.not_applied)}</div>'
    return (f'<tr data-limit="{esc(value.name)}" data-source="{esc(value.source)}">'
            f'<td>{esc(value.name)}</td><td><b>{esc(value.value)}</b></td>'
            f'<td><span class="badge {esc(value.source)}">{esc(value.source)}</span></td>'
            f'<td>{where}</td></tr>')


def _set_form(provider: ProviderLimits, ctx: Ctx) -> str:
    if not ctx.can_act:
        return button(ctx, limits_url(provider.name, "set"), "Set limits")
    return (f'<form method="post" action="{esc(limits_url(provider.name, "set"))}" class="limits">'
            f'<input type="hidden" name="csrf" value="{esc(ctx.csrf)}">'
            f'<input type="hidden" name="next" value="/limits">'
            f'<label>rate windows <input name="limits" value="{esc(provider.limits_text)}" '
            'placeholder="60/minute, 1000/hour" autocomplete="off"></label> '
            f'<label>max concurrent calls <input name="max_concurrent" '
            f'value="{esc(provider.slots_text)}" inputmode="numeric" size="6" autocomplete="off">'
            '</label> <button class="btn" type="submit">Set</button></form>')


def _provider_limits(provider: ProviderLimits, now: int, ctx: Ctx) -> str:
    rows = "".join(_value_row(v, now) for v in provider.values)
    error = (f'<div class="alert bad" data-error="limits">Nothing changed: '
             f'{esc(provider.error)}</div>' if provider.error else "")
    reset = ""
    if any(v.source == "override" for v in provider.values):
        reset = button(ctx, limits_url(provider.name, "reset"), "Back to the file's limits",
                       confirm=f"Drop every runtime limit of {provider.name}?")
    return (f'<section class="card" id="l-{esc(provider.name)}" '
            f'data-provider="{esc(provider.name)}">'
            f'<h2>{esc(provider.name)}</h2>{error}<table class="t"><thead><tr><th>limit</th>'
            '<th>in force</th><th>source</th><th>where it comes from</th></tr></thead>'
            f'<tbody>{rows}</tbody></table><h3>Change</h3>{_set_form(provider, ctx)} {reset}'
            '</section>')


def limits(provs: Sequence[ProviderLimits], now: int, ctx: Ctx) -> str:
    if not provs:
        return '<p class="muted">No provider is configured.</p>'
    return ("".join(_provider_limits(p, now, ctx) for p in provs)
            + '<p class="muted">A change is stored in Redis and applied by every worker\'s '
            'next grant, without a restart; what is already in flight is never sent over a '
            'lowered limit. Rate windows are comma-separated (<code>10/second, 500/hour'
            '</code>) and replace all of the file\'s; leave a field empty to keep it.</p>')


# -- caller IDs ------------------------------------------------------------------------------
def _caller_row(provider: str, caller: dict[str, Any], now: int, ctx: Ctx) -> str:
    rate = ("—" if caller["answer_rate"] is None
            else f'{caller["answer_rate"]:.0%} <small>of the last '
                 f'{num(caller["recent_calls"])}</small>')
    state, badge = "in use", "running"
    if caller["flagged_since_ms"] is not None:
        state, badge = f'flagged since {when(caller["flagged_since_ms"], now)}', "flagged"
    if caller["rested"]:
        state, badge = state + ", rested", "rested"
        act = button(ctx, callerid_url(provider, caller["caller_id"], "restore"), "Restore")
    else:
        act = button(ctx, callerid_url(provider, caller["caller_id"], "rest"), "Rest",
                     confirm=f"Take {caller['caller_id']} out of the pool?")
    return (f'<tr data-caller-id="{esc(caller["caller_id"])}" data-state="{badge}">'
            f'<td>{esc(caller["caller_id"])}</td><td>{esc(caller["number"])}</td>'
            f'<td class="n">{num(caller["calls"])}</td><td class="n">{num(caller["answered"])}</td>'
            f'<td class="n">{rate}</td><td><span class="badge {badge}">{esc(state)}</span></td>'
            f'<td class="actions">{act}</td></tr>')


def caller_ids(pools: dict[str, tuple[str, list[dict[str, Any]]]], now: int, ctx: Ctx) -> str:
    """``pools``: provider -> (how its pool is set up, in words; its caller IDs' rows)."""
    if not pools:
        return '<p class="muted">No provider has a caller-ID pool configured.</p>'
    out = []
    for name, (setup, rows) in pools.items():
        body = "".join(_caller_row(name, c, now, ctx) for c in rows)
        out.append(f'<section class="card" data-provider="{esc(name)}"><h2>{esc(name)} '
                   f'<small>{esc(setup)}</small></h2><table class="t wide"><thead><tr>'
                   '<th>caller ID</th><th>number</th><th>calls</th><th>answered</th>'
                   '<th>answer rate (recent)</th><th>state</th><th></th></tr></thead>'
                   f'<tbody>{body}</tbody></table></section>')
    return "".join(out) + ('<p class="muted">A rested caller ID makes no new call until it '
                           'is restored; calls already started from it go on.</p>')


# -- budgets ---------------------------------------------------------------------------------
def _spend_row(name: str, sp: dict[str, Any]) -> str:
    used = sp["billed"] + sp["live_worst_case"]
    return (f'<tr data-campaign="{esc(name)}"><td><b>{esc(name)}</b></td>'
            f'<td>{esc(sp["day"])}</td>'
            f'<td>{bar(used, sp["budget"], "budget used")}'
            f'<small>{sp["billed"]:g} billed + {sp["live_worst_case"]:g} live (worst case) '
            f'of {sp["budget"]:g}</small></td>'
            f'<td class="n" data-left="{sp["left"]:g}"><b>{sp["left"]:g}</b></td></tr>')


def budgets(spends: dict[str, dict[str, Any]]) -> str:
    if not spends:
        return ('<p class="muted">No campaign has a budget (<code>[campaigns.NAME] budget = '
                '"N/day"</code>).</p>')
    rows = "".join(_spend_row(n, sp) for n, sp in spends.items())
    return ('<table class="t wide"><thead><tr><th>campaign</th><th>day</th><th>spent today'
            '</th><th>left today</th></tr></thead>'
            f'<tbody>{rows}</tbody></table><p class="muted">Live calls count as long as a call '
            'can last until they end; at its budget a campaign waits (reason budget) until the '
            'next day in its budget_timezone.</p>')
