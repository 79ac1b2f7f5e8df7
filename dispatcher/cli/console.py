"""``dispatcher console`` (the operator web console) and ``explain`` (why a job waits)."""

from __future__ import annotations

import argparse
import json
import signal
from typing import TYPE_CHECKING, Any

from dispatcher.cli.common import add_redis_options, open_store, run, settings_from

if TYPE_CHECKING:
    import asyncio

    from dispatcher.config.settings import Settings

UNKNOWN = ("never read from the stream, or its result is older than worker.dedupe_ttl_s "
           "(the time a finished job is remembered)")


def console_config(settings: Settings, args: argparse.Namespace) -> Any:
    """``[console]`` from the settings (defaults when absent), with the flags on top."""
    from dispatcher.config.console import ConsoleConfig
    base = getattr(settings, "console", None) or ConsoleConfig()
    flags = {k: v for k in ("host", "port", "token_file")
             if (v := getattr(args, k, None)) is not None}
    return ConsoleConfig(**{**base.model_dump(), **flags})


async def serve_console(settings: Settings, cfg: Any, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop``)."""
    import asyncio

    from dispatcher.console.app import build_app
    from dispatcher.engine.http import serve
    store = open_store(settings)
    try:
        app = build_app(settings, cfg, store)
        # replicas of the console are alike (state is in Redis): they may share a port
        runner, port = await serve(app, cfg.host, cfg.port, share=True)
        mode = "actions need a token" if cfg.token_file else "read-only (no console.token_file)"
        print(f"console on http://{cfg.host}:{port}/ — {mode}", flush=True)
        done = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        await done.wait()
        await runner.cleanup()
    finally:
        await store.close()


def cmd_console(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    run(serve_console(settings, console_config(settings, args)))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from dispatcher.ops.explain import explain, gather, render
    settings = settings_from(args)

    async def main() -> Any:
        store = open_store(settings)
        try:
            return await gather(store, settings, args.id)
        finally:
            await store.close()

    facts = run(main())
    if facts is None:
        if args.json:
            print(json.dumps({"id": args.id, "found": False, "why": UNKNOWN}, indent=2))
        else:
            print(f"job {args.id}: unknown id — {UNKNOWN}")
        return 1
    explanation = explain(facts)
    print(json.dumps({"found": True, **explanation.to_json()}, indent=2) if args.json
          else render(explanation))
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser("console", help="the operator web console",
                        description="Serve the operator console: overview, providers, "
                                    "campaigns, job lookup, recent failures. Reads Redis; "
                                    "actions need a token from console.token_file.")
    add_redis_options(sp)
    sp.add_argument("--host", help="address to listen on (default: console.host, 127.0.0.1)")
    sp.add_argument("--port", type=int, help="port (default: console.port, 8090)")
    sp.add_argument("--token-file", dest="token_file", metavar="FILE",
                    help="tokens that may act (default: console.token_file)")
    sp.set_defaults(fn=cmd_console)

    sp = sub.add_parser("explain", help="a job's history and why it waits now",
                        description="Print a job's timeline in words and why it has not been "
                                    "called yet. Exit 1 when the id is unknown.")
    add_redis_options(sp)
    sp.add_argument("id", help="the job's id")
    sp.add_argument("--json", action="store_true", help="machine-readable")
    sp.set_defaults(fn=cmd_explain)
