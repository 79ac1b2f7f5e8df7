"""``dispatcher reindex``: after an upgrade, put the jobs stored by a version that kept no
jobs list's index into it (a dry run counts them first)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, Any

from dispatcher.cli.common import add_redis_options, audited, open_store, run, settings_from


class Progress:
    """One line on a terminal, redrawn at most ten times a second, cleared at the end."""

    def __init__(self, out: IO[str]):
        self.out, self.shown = out, 0.0

    def __call__(self, done: Any) -> None:
        now = time.monotonic()
        if now - self.shown < 0.1:
            return
        self.shown = now
        self.out.write(f"\rreindex: {done.seen:,} jobs read, {done.added:,} not in the index")
        self.out.flush()

    def clear(self) -> None:
        if self.shown:
            self.out.write("\r\x1b[K")
            self.out.flush()


def cmd_reindex(args: argparse.Namespace) -> int:
    from dispatcher.ops.audit import Action
    settings = settings_from(args)
    bar = Progress(sys.stderr) if sys.stderr.isatty() else None

    async def main() -> Any:
        store = open_store(settings)
        try:
            done = await store.reindex(dry=not args.apply, progress=bar)
            if args.apply:
                await audited(store, Action.REINDEX, settings.redis.namespace,
                              f"{done.added} of {done.seen} jobs added to the jobs list")
            return done
        finally:
            await store.close()

    try:
        done = run(main())
    finally:
        if bar:
            bar.clear()
    if args.apply:
        print(f"{done.added:,} jobs added to the jobs list's index ({done.seen:,} jobs read); "
              "the index is whole")
    else:
        print(f"{done.added:,} jobs would be added to the jobs list's index ({done.seen:,} jobs "
              "read; dry run: add --apply)")
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser("reindex", help="list the jobs stored before an upgrade (after one)",
                        description="Read every job of the namespace and add the ones missing "
                                    "from the jobs list's index (jobs a version without the "
                                    "index stored). Prints how many it would add unless "
                                    "--apply is given; safe to run again.")
    add_redis_options(sp)
    sp.add_argument("--apply", action="store_true", help="do it (default: dry run)")
    sp.set_defaults(fn=cmd_reindex)
