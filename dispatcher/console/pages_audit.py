"""The Audit page: every operator action, console or CLI, newest first."""

from __future__ import annotations

from dispatcher.console.views import esc, num
from dispatcher.ops.audit import Entry
from dispatcher.ops.explain import when

LIMIT = 200


def limit_of(text: str | None) -> int:
    """``?limit=N`` (1..1000); anything else: the default."""
    return min(int(text), 1000) if text and text.isdigit() and int(text) > 0 else LIMIT


def audit(entries: list[Entry], now: int, limit: int) -> str:
    if not entries:
        return '<p class="muted">No operator action recorded yet.</p>'
    rows = "".join(
        f'<tr data-action="{esc(e.action)}"><td>{esc(when(e.at_ms, now))}</td>'
        f'<td><code>{esc(e.action)}</code></td><td>{esc(e.target or "—")}</td>'
        f'<td>{esc(e.by)}</td><td>{esc(e.via)}</td><td>{esc(e.detail)}</td></tr>'
        for e in entries)
    more = f" (more: ?limit={min(limit * 5, 1000)})" if len(entries) >= limit else ""
    what = "action" if len(entries) == 1 else "actions"
    return (f'<p class="muted">The latest {num(len(entries))} {what}{more}'
            '; the CLI shows them too: <code>dispatcher audit --limit N</code>.</p>'
            '<table class="t wide"><thead><tr><th>when</th><th>action</th><th>target</th>'
            '<th>who</th><th>from</th><th>what changed</th></tr></thead>'
            f'<tbody>{rows}</tbody></table>')
