"""The Workers page and the fleet alarm every page carries while no worker lives.

Alive or dead is ``core.workers.is_alive``: the rule the heartbeat's takeover applies, so a
worker the console calls dead is one whose work the next live worker takes over.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.config.settings import Settings
from dispatcher.console.views import esc, num
from dispatcher.core.workers import is_alive
from dispatcher.ops.explain import clock, span, when
from dispatcher.store import Store
from dispatcher.store.fleet import Reaped, WorkerView


@dataclass(frozen=True)
class FleetView:
    now: int
    dead_after_ms: float
    workers: list[WorkerView]
    reaped: list[Reaped]

    def alive(self, worker: WorkerView) -> bool:
        return is_alive(self.now, worker.beat_ms, self.dead_after_ms)

    @property
    def live(self) -> int:
        return sum(1 for w in self.workers if self.alive(w))


async def fleet(store: Store, settings: Settings, reaped: int = 0) -> FleetView:
    return FleetView(await store.server_ms(), settings.worker.dead_after_s * 1000,
                 await store.workers(), await store.reaped(reaped) if reaped else [])


def alarm(fleet: FleetView) -> str:
    """The banner at the top of every page while no worker is alive ("" otherwise)."""
    if fleet.live:
        return ""
    if not fleet.workers:
        why = "no worker has sent a heartbeat"
    else:
        newest = max(w.beat_ms for w in fleet.workers)
        why = (f"the last heartbeat of any worker was {span(fleet.now - newest)} ago "
               f"(a worker is dead after {span(round(fleet.dead_after_ms))} without one)")
    return (f'<div class="alert bad" data-alert="no-live-worker"><b>No live worker</b>: '
            f'{esc(why)}. Nothing is dialled and no live call is followed until a worker '
            f'starts. <a href="/workers">Workers</a></div>')


def _opt(value: object) -> str:
    return '<span class="muted">—</span>' if value is None else num(value)


def _row(worker: WorkerView, fleet: FleetView) -> str:
    alive = fleet.alive(worker)
    state = "alive" if alive else "dead"
    started = (esc(clock(worker.started_ms)) if worker.started_ms
               else '<span class="muted">—</span>')
    beat = f'{span(max(0, fleet.now - worker.beat_ms))} ago'
    return (f'<tr data-worker="{esc(worker.name)}" data-state="{state}">'
            f'<td><b>{esc(worker.name)}</b></td>'
            f'<td><span class="badge {"running" if alive else "dead"}">{state}</span></td>'
            f'<td>{esc(worker.host or "—")}</td><td class="n">{esc(worker.pid or "—")}</td>'
            f'<td>{esc(worker.version or "—")}</td><td>{started}</td>'
            f'<td class="{"" if alive else "bad"}">{esc(beat)}</td>'
            f'<td class="n" data-n="inflight">{_opt(worker.inflight)}</td>'
            f'<td class="n" data-n="polling">{_opt(worker.polling)}</td>'
            f'<td class="n">{_opt(worker.concurrency)}</td></tr>')


def _reaped(reaped: Reaped, now: int) -> str:
    pid = f"pid {reaped.pid}" if reaped.pid else ""
    who = " ".join(x for x in (reaped.host, pid, reaped.version) if x)
    return (f'<tr data-reaped="{esc(reaped.consumer)}"><td>{esc(when(reaped.at_ms, now))}</td>'
            f'<td><b>{esc(reaped.consumer)}</b><br><small>{esc(who or "—")}</small></td>'
            f'<td>{esc(reaped.by)}</td><td class="n">{num(reaped.dials)}</td>'
            f'<td class="n">{num(reaped.polls)}</td><td class="n">{num(reaped.entries)}</td></tr>')


def workers(fleet: FleetView) -> str:
    rows = "".join(_row(w, fleet) for w in fleet.workers) or \
        '<tr><td colspan="10" class="muted">no worker has sent a heartbeat</td></tr>'
    taken = "".join(_reaped(r, fleet.now) for r in fleet.reaped) or \
        '<tr><td colspan="6" class="muted">no worker has been taken over</td></tr>'
    return (f'<p>{num(fleet.live)} of {num(len(fleet.workers))} workers alive (dead after '
            f'{span(round(fleet.dead_after_ms))} without a heartbeat).</p>'
            '<table class="t wide"><thead><tr><th>worker</th><th>state</th><th>host</th>'
            '<th>pid</th><th>version</th><th>started</th><th>last heartbeat</th>'
            '<th title="requests to a provider not answered yet">dials in flight</th>'
            '<th>calls it polls</th><th>concurrency</th></tr></thead>'
            f'<tbody>{rows}</tbody></table>'
            '<p class="muted">Dials and polls are as of each worker\'s last heartbeat.</p>'
            '<h2>Taken over</h2><table class="t wide"><thead><tr><th>when</th>'
            '<th>dead worker</th><th>taken over by</th><th>dials reconciled</th>'
            '<th>calls polled again</th><th>stream entries claimed</th></tr></thead>'
            f'<tbody>{taken}</tbody></table>')
