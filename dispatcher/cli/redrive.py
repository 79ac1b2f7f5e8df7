"""``dispatcher redrive``: put finished jobs back as new work after a fix."""

from __future__ import annotations

import argparse
import collections
from datetime import datetime
from typing import Any

from dispatcher.cli.common import (
    Fail,
    add_redis_options,
    audited,
    open_store,
    run,
    settings_from,
)

REDRIVABLE = ("exhausted", "rejected", "invalid", "expired", "cancelled", "blocked")
BATCH = 500


def _since_ms(text: str | None) -> int:
    if not text:
        return 0
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Fail(f"--since: expected an RFC 3339 time, got {text!r}") from None
    if dt.tzinfo is None:
        raise Fail(f"--since: {text!r} has no time zone offset")
    return int(dt.timestamp() * 1000)


async def _matching(store: Any, args: argparse.Namespace) -> list[str]:
    """Ids of finished jobs whose results match the filters, oldest first."""
    if args.id:
        return list(dict.fromkeys(args.id))
    ids: dict[str, None] = {}
    after = f"{max(_since_ms(args.since) - 1, 0)}-18446744073709551615"
    while True:
        batch = await store.read_results(after, 1000, None)
        if not batch:
            return list(ids)
        for eid, res in batch:
            after = eid
            if res.get("outcome") in args.outcome and res.get("job_id") and (
                    not args.provider or res.get("provider") == args.provider):
                ids[str(res["job_id"])] = None


def cmd_redrive(args: argparse.Namespace) -> int:
    from dispatcher.ops.audit import Action
    settings = settings_from(args)
    args.outcome = args.outcome or ["exhausted"]

    async def main() -> int:
        store = open_store(settings)
        try:
            ids = await _matching(store, args)
            done: list[tuple[str, str]] = []
            for i in range(0, len(ids), BATCH):
                done += await store.redrive(ids[i:i + BATCH], args.outcome, dry=not args.apply)
            if args.apply:
                n = sum(1 for _, r in done if r == "redriven")
                await audited(store, Action.REDRIVE, ",".join(args.outcome),
                              f"{n} of {len(ids)} jobs redriven")
        finally:
            await store.close()
        tally = collections.Counter(r for _, r in done)
        moved = [i for i, r in done if r in ("redriven", "would")]
        verb = "redriven" if args.apply else "would be redriven (dry run: add --apply)"
        print(f"{len(moved)} jobs {verb}" + "".join(
            f"; {n} {why.replace('_', ' ')}" for why, n in sorted(tally.items())
            if why not in ("redriven", "would")))
        for job_id in moved[:20]:
            print(f"  {job_id}")
        if len(moved) > 20:
            print(f"  … and {len(moved) - 20} more")
        return 0

    return run(main())


def register(sub: Any) -> None:
    sp = sub.add_parser("redrive", help="put finished jobs back as new work after a fix",
                        description="Find finished jobs by outcome (and time, provider or id) "
                                    "and put them back in the queue: each gets a new result. "
                                    "Prints what it would do unless --apply is given.")
    add_redis_options(sp)
    sp.add_argument("--outcome", action="append", choices=REDRIVABLE,
                    help="outcome to redrive (repeatable; default: exhausted)")
    sp.add_argument("--since", metavar="TIME", help="results written at or after this time")
    sp.add_argument("--provider", help="only jobs of this provider")
    sp.add_argument("--id", action="append", metavar="ID", help="these jobs (repeatable)")
    sp.add_argument("--apply", action="store_true", help="do it (default: dry run)")
    sp.set_defaults(fn=cmd_redrive)
