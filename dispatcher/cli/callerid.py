"""``dispatcher callerid list|rest|restore PROVIDER [CALLER_ID]``: a provider's caller-ID
pool, each caller ID's calls and answer rate; taking one out of the pool and back."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dispatcher.cli.common import (
    Fail,
    add_redis_options,
    audited,
    open_store,
    provider_config,
    run,
    settings_from,
)


def cmd_callerid(args: argparse.Namespace) -> int:
    from dispatcher.ops import callerids as ops
    from dispatcher.ops.audit import Action
    settings = settings_from(args)
    pool = provider_config(settings, args.provider).caller_ids
    if pool is None:
        raise Fail(f"provider {args.provider!r} has no caller_ids pool configured")
    if args.op == "list":
        if args.caller_id:
            raise Fail("callerid list: takes no CALLER_ID")
    elif args.caller_id not in pool.keys():
        raise Fail(f"caller ID {args.caller_id!r} is not in the pool of {args.provider!r} "
                   f"(its ids: {', '.join(pool.keys())})")

    async def main() -> tuple[bool, Any]:
        store = open_store(settings)
        try:
            changed = False
            if args.op != "list":
                changed = await store.caller_id_rest(args.provider, args.caller_id,
                                                     rest=args.op == "rest")
                await audited(store, Action(f"callerid.{args.op}"),
                              f"{args.provider}/{args.caller_id}",
                              "" if changed else "no change")
            return changed, await ops.health(store, args.provider, pool)
        finally:
            await store.close()

    changed, items = run(main())
    if args.op == "rest":
        print(f"{args.caller_id}: rested, no new call goes out from it until "
              f"'dispatcher callerid restore {args.provider} {args.caller_id}'"
              + ("" if changed else " (it was rested already)"))
    elif args.op == "restore":
        print(f"{args.caller_id}: back in the pool" + ("" if changed else " (it was not rested)"))
    elif args.json:
        print(json.dumps(ops.to_json(pool, items), indent=2))
    else:
        print(ops.render(args.provider, pool, items))
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser("callerid", help="a provider's caller-ID pool: health, rest, restore",
                        description="Calls and answer rate per caller ID; rest takes one out "
                                    "of the pool at every worker's next grant, restore puts "
                                    "it back.")
    sp.add_argument("op", choices=("list", "rest", "restore"))
    sp.add_argument("provider", metavar="PROVIDER")
    sp.add_argument("caller_id", metavar="CALLER_ID", nargs="?",
                    help="the caller ID as configured (TelEcho id, itellicoAI number)")
    sp.add_argument("--json", action="store_true")
    add_redis_options(sp)
    sp.set_defaults(fn=cmd_callerid)
