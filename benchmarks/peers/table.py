"""The Markdown table of benchmarks/README.md, made from results/peers.json: min to max over the
rounds of each measure, and each system's ratio to the raw loop of the same round."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DASH = "\u2013"  # en dash, as in the README
ORDER = ("raw loop", "dispatcher", "SAQ", "BullMQ", "arq")


def _span(xs: list[float], fmt: Callable[[float], str]) -> str:
    if not xs:
        return DASH
    lo, hi = min(xs), max(xs)
    return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo)}{DASH}{fmt(hi)}"


def _int(x: float) -> str:
    return f"{x:,.0f}"


def _f2(x: float) -> str:
    return f"{x:.2f}"


def _f1(x: float) -> str:
    return f"{x:.1f}"


def _ms(x: float) -> str:
    return f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def rows(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per system, its result of every round, each with ``ratio`` to that round's raw loop."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rnd in report["rounds"]:
        by_name = {r["system"]: r for r in rnd["results"] if "error" not in r}
        raw = by_name.get("raw loop")
        for name, r in by_name.items():
            ratio = r["per_s"] / raw["per_s"] if raw else None
            out.setdefault(name, []).append({**r, "ratio": ratio})
    return out


def markdown(report: dict[str, Any]) -> str:
    per = rows(report)
    jobs = report["setup"]["jobs"]
    head = ("| system | starts/s | ratio to raw loop, same round | worker CPU s / 1k jobs "
            "| Redis CPU s / 1k jobs | worker peak RSS MiB | bytes / queued job "
            "| bytes / finished job | enqueue → dial p50 ms | p99 ms | POSTs beyond one per job |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for name in [n for n in ORDER if n in per] + [n for n in per if n not in ORDER]:
        rs = per[name]
        lat = [r["latency"] for r in rs]
        lines.append("| " + " | ".join([
            f"**{name}**" if name == "dispatcher" else name,
            _span([r["per_s"] for r in rs], _int),
            _span([r["ratio"] for r in rs if r["ratio"] is not None], _f2),
            _span([r["worker_cpu_s_per_1k"] for r in rs], _f2),
            _span([r["redis_cpu_s_per_1k"] for r in rs], _f2),
            _span([r["peak_rss_mib"] for r in rs], _f1),
            _span([r["queued_bytes_per_job"] for r in rs], _int),
            _span([r["finished_bytes_per_job"] for r in rs], _int),
            _span([x["p50_ms"] for x in lat], _ms),
            _span([x["p99_ms"] for x in lat], _ms),
            _span([r["starts"] - jobs for r in rs], _int)]) + " |")
    errors = [f"- round {i + 1}, {r['system']}: {r['error']}"
              for i, rnd in enumerate(report["rounds"]) for r in rnd["results"] if "error" in r]
    return head + "\n".join(lines) + ("\n\nFailed runs:\n" + "\n".join(errors) if errors else "")
