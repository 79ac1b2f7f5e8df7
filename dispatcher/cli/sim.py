"""``dispatcher simulate`` and ``demo``: the product on one machine."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_simulate(args: argparse.Namespace) -> int:
    from aiohttp import web

    from dispatcher.simulator import load_sim_config, make_app
    cfg = load_sim_config(args.config)
    if args.audit_file:
        cfg.audit_file = args.audit_file
    print(f"provider simulator on http://{args.host}:{args.port} "
          f"(TelEcho under /api/v1/public, itellicoAI under /v1/accounts, admin under /_sim)",
          flush=True)
    web.run_app(make_app(cfg), host=args.host, port=args.port, print=None, access_log=None)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dispatcher.dev.demo import run_demo
    return run_demo(jobs=args.jobs, processes=args.processes, keep=args.keep)


def register(sub: Any) -> None:
    sp = sub.add_parser("simulate", help="run the provider simulator (both dialects)",
                        description="Serve a local stand-in for the providers' APIs (TelEcho "
                                    "and itellicoAI) with their keys, rate limits, errors and "
                                    "call lifecycles, for trying the dispatcher without an "
                                    "account.")
    sp.add_argument("--config", metavar="FILE", help="simulator TOML (keys, limits, faults)")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8099)
    sp.add_argument("--audit-file", metavar="PATH", help="append every request as a JSON line")
    sp.set_defaults(fn=cmd_simulate)

    sp = sub.add_parser("demo", help="everything, locally: Redis, simulator, workers, jobs",
                        description="Start a private Redis, the simulator and worker processes, "
                                    "push sample jobs and show them being dialled until every "
                                    "job has its result.")
    sp.add_argument("--jobs", type=int, default=300, help="sample jobs (default 300)")
    sp.add_argument("--processes", type=int, default=3, help="worker processes (default 3)")
    sp.add_argument("--keep", action="store_true",
                    help="after the summary, keep Redis, the simulator and the workers up "
                         "until Ctrl-C, and print the commands to look around")
    sp.set_defaults(fn=cmd_demo)
