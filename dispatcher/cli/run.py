"""``dispatcher run``: worker processes."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from typing import Any

from dispatcher.cli.common import add_redis_options, settings_from

GC_YOUNG = 10_000  # allocations between young collections (Python's default: 700)


def quiet_gc() -> None:
    """Everything built at start-up (modules, settings, scripts) lives as long as the process:
    it is frozen out of the cycle collector, and young collections are made rarer. At full
    load a worker allocates a few dozen short-lived objects per call start; with the default
    threshold every 700th allocation ran a collection that promoted the jobs in flight to
    the older generations, and a tenth of the worker's CPU went to walking them again."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 20)


def _run_one(config: str | None, index: int) -> None:
    import asyncio

    from dispatcher import logs
    from dispatcher.config.settings import ConfigError, load_settings
    from dispatcher.engine.worker import Worker
    try:
        settings = load_settings(config)
    except ConfigError as exc:  # changed between the parent's check and this process
        print(f"dispatcher: {exc}", file=sys.stderr)
        sys.exit(2)
    logs.configure(settings.log_format, settings.log_level)
    port = settings.worker.http_port
    worker = Worker(settings, http_port=port + index if port else 0)
    quiet_gc()

    lost = asyncio.Event()

    def output_lost() -> None:
        """stdout is gone (``dispatcher run | head``): a worker that cannot log stops,
        handing its work back, rather than run on unseen."""
        lost.set()
        worker.stop()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)

        def on_lost() -> None:  # a line may be logged from another thread
            loop.call_soon_threadsafe(output_lost)

        logs.on_output_lost(on_lost)
        await worker.run()

    try:
        asyncio.run(main())
    except ConfigError as exc:  # found at start: the HTTP port is taken
        print(f"dispatcher: {exc}", file=sys.stderr)
        sys.exit(2)
    if lost.is_set():
        _exit_output_gone()


def _exit_output_gone() -> None:
    from dispatcher import logs
    try:
        print("dispatcher: stdout was closed: the worker stopped and handed its jobs back",
              file=sys.stderr, flush=True)
    except OSError:  # stderr is the same closed pipe (2>&1)
        logs.silence_stdout(sys.stderr)
    sys.exit(logs.EXIT_OUTPUT_GONE)


def cmd_run(args: argparse.Namespace) -> int:
    import multiprocessing
    import multiprocessing.connection

    from dispatcher.config.settings import check_runnable, check_secrets
    settings = settings_from(args)  # fail fast, in the parent, on a bad configuration
    check_runnable(settings)
    check_secrets(settings)
    if args.processes <= 1:
        _run_one(args.config, 0)
        return 0
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_run_one, args=(args.config, i), daemon=False)
             for i in range(args.processes)]
    for proc in procs:
        proc.start()

    def forward(signum: int, _: Any) -> None:
        for proc in procs:
            if proc.pid and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    running = list(procs)
    while running:
        ended = multiprocessing.connection.wait([p.sentinel for p in running])
        for proc in [p for p in running if p.sentinel in ended]:
            proc.join()
            running.remove(proc)
            if proc.exitcode == 2:  # it could not start (its port is taken): nor do the others
                forward(signal.SIGTERM, None)
    return max((p.exitcode or 0) for p in procs)


def register(sub: Any) -> None:
    sp = sub.add_parser("run", help="run workers",
                        description="Run worker processes. SIGTERM stops claiming, lets calls "
                                    "being started finish, and exits 0.")
    add_redis_options(sp)
    sp.add_argument("--processes", type=int, default=1, metavar="N",
                    help="worker processes (HTTP port + i each; default 1)")
    sp.set_defaults(fn=cmd_run)
