"""A provider's limits changed at runtime (``dispatcher limits show|set|reset``): what to
store for the grant script, and where each value in force comes from.

Windows are stored with their pace and margin floor, worked out here from the provider's
configuration exactly as a worker works them out from its file (core/limits.py), so the grant
script only substitutes them.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from dispatcher.core.limits import Window, margin_ms, pace_windows, parse_limit
from dispatcher.providers import CommonConfig
from dispatcher.store import Store
from dispatcher.store.limits import LimitsOverride, Overridden


class BadLimits(ValueError):
    """Input refused before anything is stored (the message names the option)."""


def cli_label() -> str:
    return f"cli@{socket.gethostname()}"


def parse_windows(texts: Sequence[str]) -> list[Window]:
    out = []
    for text in texts:
        try:
            out.append(parse_limit(text))
        except ValueError as exc:
            raise BadLimits(f"--limits: {exc}") from None
    if len({w.ms for w in out}) != len(out):
        raise BadLimits("--limits: two limits for the same window length")
    return out


UNTRACKED = ("not applied: calls are not followed (tracking.track_calls = false), so no "
             "worker sees a call end to free its slot")


def check_slots(slots: int | None, tracked: bool = True) -> int | None:
    if slots is not None and slots < 1:
        raise BadLimits(f"--max-concurrent: expected a whole number >= 1, got {slots}")
    if slots is not None and not tracked:
        raise BadLimits(f"--max-concurrent: {UNTRACKED}; nothing stored")
    return slots


async def set_limits(store: Store, provider: str, cfg: CommonConfig, by: str, *,
                     limits: Sequence[str] = (), max_concurrent: int | None = None,
                     tracked: bool = True) -> LimitsOverride:
    """Validate everything first, then store it in one step. ``tracked``: the workers follow
    calls to their end (a call-slot cap can only hold then)."""
    windows = parse_windows(limits)
    slots = check_slots(max_concurrent, tracked)
    if not windows and slots is None:
        raise BadLimits("nothing to set: give --limits and/or --max-concurrent")
    pace = tuple(pace_windows(windows)) if cfg.pace_short_windows else ()
    return await store.limits_set(
        provider, by, windows=tuple((w.limit, w.ms) for w in windows), pace=pace,
        margin_ms=margin_ms(cfg.send_margin_s, windows), slots=slots)


@dataclass(frozen=True)
class Value:
    """One limit in force and where it comes from."""

    name: str
    value: str
    source: str                      # file | override
    since_ms: int | None = None
    by: str | None = None
    file_value: str | None = None    # what the file says, shown beside an override
    not_applied: str | None = None   # why the workers ignore it, when they do

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "source": self.source,
                "since_ms": self.since_ms, "by": self.by, "file_value": self.file_value,
                "not_applied": self.not_applied}


def _labels(windows: Sequence[tuple[int, int]]) -> str:
    return ", ".join(Window(seconds=ms / 1000, limit=n).label() for n, ms in windows) or "none"


def _value(name: str, file_value: str, ov_value: str | None, ov: Overridden | None) -> Value:
    if ov_value is None or ov is None:
        return Value(name, file_value, "file")
    return Value(name, ov_value, "override", ov.since_ms, ov.by, file_value)


def in_force(cfg: CommonConfig, ov: LimitsOverride, tracked: bool = True) -> list[Value]:
    file_wins = _labels([(w.limit, w.ms) for w in cfg.windows])
    file_slots = str(cfg.max_concurrent_calls or "none")
    slots = _value("max_concurrent", file_slots,
                   str(ov.slots) if ov.slots is not None else None, ov.slots_set)
    if not tracked and slots.value != "none":
        slots = replace(slots, not_applied=UNTRACKED)
    return [_value("limits", file_wins, _labels(ov.windows) if ov.windows else None,
                   ov.windows_set), slots]


def render(provider: str, values: Sequence[Value], now_s: float | None = None) -> str:
    now = time.time() if now_s is None else now_s
    lines = [f"provider {provider}"]
    for item in values:
        line = f"  {item.name:<15} {item.value:<28} {item.source}"
        if item.source == "override" and item.since_ms is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(item.since_ms / 1000))
            ago = max(0, round(now - item.since_ms / 1000))
            line += f" since {stamp} ({ago} s ago) by {item.by}; file: {item.file_value}"
        if item.not_applied:
            line += f" ({item.not_applied})"
        lines.append(line)
    return "\n".join(lines)
