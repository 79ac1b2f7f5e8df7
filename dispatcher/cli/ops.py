"""``dispatcher status`` and ``resume``: what operators look at and fix."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dispatcher.cli.common import (
    Fail,
    add_redis_options,
    audited,
    config_in_use,
    open_store,
    run,
    settings_from,
)


def cmd_status(args: argparse.Namespace) -> int:
    from dispatcher.ops.status import collect, render
    settings = settings_from(args)

    async def main() -> dict[str, Any]:
        store = open_store(settings)
        try:
            return await collect(store, settings)
        finally:
            await store.close()

    status = run(main())
    status["config"] = config_in_use(args)
    if status["config"] is None and not args.json:
        from dispatcher.config.settings import DEFAULT_CONFIG_PATH
        print("no configuration loaded: pass --config FILE (or set DISPATCHER_CONFIG); there "
              f"is no {DEFAULT_CONFIG_PATH} in {Path.cwd()}\n"
              "  queues, consumers, halts and parked jobs are read from Redis alone; the "
              "providers, rate windows and call slots below are the built-in defaults, not "
              "your workers'")
    print(json.dumps(status, indent=2) if args.json else render(status))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.provider not in settings.providers:
        raise Fail(f"resume: no provider named {args.provider!r} is configured "
                   f"({', '.join(settings.providers) or 'none'}); configure it first, then "
                   f"resume it to send its parked jobs")

    from dispatcher.ops.audit import Action

    async def main() -> int:
        store = open_store(settings)
        try:
            halted = bool(await store.halt_info(args.provider))
            moved = await store.unpark(args.provider,
                                       round(settings.retry.max_defer_s * 1000))
            await audited(store, Action.PROVIDER_RESUME, args.provider,
                          f"{moved} parked jobs back" + ("" if halted else "; was not halted"))
        finally:
            await store.close()
        print(f"provider {args.provider}: {'resumed' if halted else 'was not halted'}; "
              f"{moved} parked jobs back in the queue")
        return 0

    return run(main())


def register(sub: Any) -> None:
    sp = sub.add_parser("status", help="queues, waits, windows, cooldowns, slots, halts",
                        description="What the deployment is doing now, read from Redis: jobs "
                                    "queued and waiting (by reason), each provider's rate "
                                    "windows, cooldown, call slots and halt, workers alive.")
    add_redis_options(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable")
    sp.set_defaults(fn=cmd_status)

    sp = sub.add_parser("resume", help="resume a halted provider and send its parked jobs",
                        description="Lift a provider's halt (after fixing its account or key) "
                                    "and put the jobs parked meanwhile back in the queue.")
    add_redis_options(sp)
    sp.add_argument("provider")
    sp.set_defaults(fn=cmd_resume)
