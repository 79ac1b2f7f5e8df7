"""The job filters ``dispatcher cancel`` and ``dispatcher redrive`` share with the console's
jobs list (ops/jobfilter.py): the same fields, the same checks, the same index."""

from __future__ import annotations

import argparse
from typing import Any

from dispatcher.cli.common import Fail


def add_filter_options(sp: Any, *, state: bool) -> None:
    group = sp.add_argument_group("which jobs (the console's jobs list filters)")
    if state:
        group.add_argument("--state", help="queued (default), delayed or parked")
    group.add_argument("--campaign", help="jobs of this campaign")
    group.add_argument("--provider", help="jobs of this provider")
    group.add_argument("--priority", help="high, normal or low")
    if state:
        group.add_argument("--wait-reason", help="jobs waiting for this reason (retry, window, …)")
    group.add_argument("--since", metavar="TIME",
                   help="entered their state (for done jobs: got their result) at or after "
                        "this RFC 3339 time")
    group.add_argument("--until", metavar="TIME", help="… at or before this time")


def filter_from(args: argparse.Namespace, **over: str) -> Any:
    """The JobFilter the options describe; Fail naming the option when one is wrong."""
    from dispatcher.ops.jobfilter import FilterError, JobFilter
    raw = {"state": getattr(args, "state", None), "campaign": args.campaign,
         "provider": args.provider, "priority": args.priority,
         "wait_reason": getattr(args, "wait_reason", None), "since": args.since,
         "until": args.until, **over}
    try:
        return JobFilter.parse(raw)
    except FilterError as exc:
        raise Fail(f"--{str(exc).replace('_', '-')}") from None


def print_tally(tally: Any, verb: str, dry: bool) -> None:
    what = verb if not dry else f"would be {verb} (dry run: add --apply)"
    print(f"{tally.n} jobs {what}" + "".join(
        f"; {n} {why.replace('_', ' ')}" for why, n in sorted(tally.other.items())
        if why not in ("redriven", "would", "cancelled")))
    for job_id in tally.changed[:20]:
        print(f"  {job_id}")
    if tally.n > 20:
        print(f"  … and {tally.n - 20} more")


async def cancel_matching(store: Any, args: argparse.Namespace, ttl_s: int) -> Any:
    from dispatcher.ops import jobactions
    from dispatcher.ops.jobfilter import FilterError
    flt = filter_from(args)
    try:
        return await jobactions.cancel_matching(store, flt, ttl_s, dry=not args.apply)
    except FilterError as exc:
        raise Fail(f"--{exc}") from None
