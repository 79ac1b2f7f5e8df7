"""``dispatcher audit``: the operator actions recorded, console and CLI, newest first."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dispatcher.cli.common import Fail, add_redis_options, open_store, run, settings_from

MAX_LIMIT = 10_000


def cmd_audit(args: argparse.Namespace) -> int:
    from dispatcher.ops.audit import Entry, latest, render
    if not 1 <= args.limit <= MAX_LIMIT:
        raise Fail(f"audit: --limit must be 1..{MAX_LIMIT}, got {args.limit}")
    settings = settings_from(args)

    async def main() -> list[Entry]:
        store = open_store(settings)
        try:
            return await latest(store, args.limit)
        finally:
            await store.close()

    entries = run(main())
    print(json.dumps([e.to_json() for e in entries], indent=2) if args.json
          else render(entries))
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser("audit", help="operator actions: who did what, when",
                        description="Every operator action (console or CLI: pause, resume, "
                                    "cancel, redrive, limits, caller IDs, do-not-call, consent, "
                                    "forget) with its time, target and who: the console "
                                    "token's label or cli@HOST. Newest first.")
    sp.add_argument("--limit", type=int, default=50, metavar="N",
                    help="how many of the latest actions (default 50)")
    sp.add_argument("--json", action="store_true")
    add_redis_options(sp)
    sp.set_defaults(fn=cmd_audit)
