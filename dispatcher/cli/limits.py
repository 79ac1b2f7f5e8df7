"""``dispatcher limits show|set|reset PROVIDER``: a provider's rate windows and call-slot cap
changed at runtime, applied by every worker's next grant without a restart."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from dispatcher.cli.common import (
    Fail,
    add_redis_options,
    audited,
    open_store,
    provider_config,
    run,
    settings_from,
)

if TYPE_CHECKING:  # --help and --version import nothing heavy
    from dispatcher.providers import CommonConfig


def cmd_limits(args: argparse.Namespace) -> int:
    from dispatcher.ops import limits as ops
    from dispatcher.ops.audit import Action
    settings = settings_from(args)
    cfg: CommonConfig = provider_config(settings, args.provider)
    if args.op == "set":  # every check before Redis is touched
        try:
            ops.parse_windows(args.limits or [])
            ops.check_slots(args.max_concurrent, settings.tracking.track_calls)
        except ops.BadLimits as exc:
            raise Fail(str(exc)) from None
    elif args.limits or args.max_concurrent is not None:
        raise Fail(f"limits {args.op}: takes no --limits or --max-concurrent")

    async def main() -> list[ops.Value]:
        store = open_store(settings)
        try:
            if args.op == "set":
                ov = await ops.set_limits(store, args.provider, cfg, ops.cli_label(),
                                          limits=args.limits or [],
                                          max_concurrent=args.max_concurrent,
                                          tracked=settings.tracking.track_calls)
                await audited(store, Action.LIMITS_SET, args.provider, " ".join(
                    [*(args.limits or []), *(["max_concurrent=" + str(args.max_concurrent)]
                                             if args.max_concurrent is not None else [])]))
            elif args.op == "reset":
                ov = await store.limits_reset(args.provider)
                await audited(store, Action.LIMITS_RESET, args.provider)
            else:
                ov = await store.limits_get(args.provider)
            return ops.in_force(cfg, ov, settings.tracking.track_calls)
        finally:
            await store.close()

    try:
        values = run(main())
    except ops.BadLimits as exc:
        raise Fail(str(exc)) from None
    if args.json:
        print(json.dumps({"provider": args.provider,
                          "values": [v.to_json() for v in values]}, indent=2))
    else:
        print(ops.render(args.provider, values))
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser("limits", help="show or change a provider's limits at runtime",
                        description="Rate windows and the call-slot cap stored in Redis: "
                                    "every worker's next grant applies them, no restart.")
    sp.add_argument("op", choices=("show", "set", "reset"))
    sp.add_argument("provider", metavar="PROVIDER")
    sp.add_argument("--limits", nargs="+", metavar="N/UNIT",
                    help='windows replacing the file\'s, e.g. "60/minute" "100/5s" (set)')
    sp.add_argument("--max-concurrent", type=int, metavar="N",
                    help="call-slot cap replacing max_concurrent_calls (set)")
    sp.add_argument("--json", action="store_true")
    add_redis_options(sp)
    sp.set_defaults(fn=cmd_limits)
