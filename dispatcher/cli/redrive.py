"""``dispatcher redrive``: put finished jobs back as new work after a fix."""

from __future__ import annotations

import argparse
from typing import Any

from dispatcher.cli.common import (
    Fail,
    add_redis_options,
    audited,
    open_store,
    run,
    settings_from,
)
from dispatcher.cli.jobfilters import add_filter_options, filter_from, print_tally


def _filter(args: argparse.Namespace, outcome: str) -> Any:
    from dispatcher.ops.jobactions import redrive_outcomes
    from dispatcher.ops.jobfilter import FilterError
    flt = filter_from(args, state="done", outcome=outcome)
    try:
        redrive_outcomes(flt)
    except FilterError as exc:
        raise Fail(f"--{exc}") from None
    return flt


async def _matching(store: Any, args: argparse.Namespace) -> list[str]:
    """Ids of finished jobs the filters match, from the jobs list's index (done jobs by
    outcome, kept as long as their results)."""
    from dispatcher.ops.jobactions import matching_ids
    if args.id:
        return list(dict.fromkeys(args.id))
    ids: dict[str, None] = {}
    for outcome in args.outcome:
        ids.update((i, None) for i in await matching_ids(store, _filter(args, outcome)))
    return list(ids)


def cmd_redrive(args: argparse.Namespace) -> int:
    from dispatcher.ops.audit import Action
    from dispatcher.ops.jobactions import redrive_ids
    settings = settings_from(args)
    args.outcome = args.outcome or ["exhausted"]
    for outcome in args.outcome:
        _filter(args, outcome)  # a wrong value is refused before anything is read

    async def main() -> Any:
        store = open_store(settings)
        try:
            ids = await _matching(store, args)
            tally = await redrive_ids(store, ids, args.outcome, dry=not args.apply)
            if args.apply:
                await audited(store, Action.REDRIVE, ",".join(args.outcome),
                              f"{len(tally.changed)} of {len(ids)} jobs redriven")
            return tally
        finally:
            await store.close()

    print_tally(run(main()), "redriven", not args.apply)
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser("redrive", help="put finished jobs back as new work after a fix",
                        description="Find finished jobs by outcome (and time, campaign, provider, "
                                    "priority or id) "
                                    "and put them back in the queue: each gets a new result. "
                                    "Prints what it would do unless --apply is given.")
    add_redis_options(sp)
    sp.add_argument("--outcome", action="append",
                    help="outcome to redrive: exhausted (default), rejected, invalid, expired, "
                         "cancelled or blocked (repeatable)")
    add_filter_options(sp, state=False)
    sp.add_argument("--id", action="append", metavar="ID", help="these jobs (repeatable)")
    sp.add_argument("--apply", action="store_true", help="do it (default: dry run)")
    sp.set_defaults(fn=cmd_redrive)
