"""The ``dispatcher`` command: run, enqueue, results, status, resume, cancel, simulate, demo."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import multiprocessing
import os
import signal
import sys
from pathlib import Path
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dispatcher.config import ConfigError, Settings, load_settings

_redis_url = ["redis://localhost:6379/0"]


def _settings(args: argparse.Namespace) -> Settings:
    if getattr(args, "redis_url", None):
        os.environ["DISPATCHER_REDIS__URL"] = args.redis_url
    settings = load_settings(args.config)
    _redis_url[0] = settings.redis.url
    return settings


def _client_store(settings: Settings) -> Any:
    from dispatcher.store import Store, connect
    return Store(connect(settings.redis.url, settings.redis.socket_timeout_s),
                 settings.redis.namespace)


# -- run ------------------------------------------------------------------------------------
def _run_one(config: str | None, index: int) -> None:
    from dispatcher import logs
    from dispatcher.worker import Worker
    settings = load_settings(config)
    logs.configure(settings.log_format, settings.log_level)
    port = settings.worker.http_port
    worker = Worker(settings, http_port=port + index if port else 0)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        await worker.run()

    asyncio.run(main())


def cmd_run(args: argparse.Namespace) -> int:
    _settings(args)  # fail fast, in the parent, on a bad configuration
    if args.processes <= 1:
        _run_one(args.config, 0)
        return 0
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_run_one, args=(args.config, i), daemon=False)
             for i in range(args.processes)]
    for p in procs:
        p.start()

    def forward(signum: int, _: Any) -> None:
        for p in procs:
            if p.pid and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()
    return max((p.exitcode or 0) for p in procs)


# -- enqueue --------------------------------------------------------------------------------
def _jobs_from(args: argparse.Namespace) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    if args.file:
        path = Path(args.file)
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    job: dict[str, Any] = {k: v for k, v in row.items() if k and v not in ("",
                                                                                         None)}
                    if "metadata" in job:
                        job["metadata"] = json.loads(job["metadata"])
                    if "max_attempts" in job:
                        job["max_attempts"] = int(job["max_attempts"])
                    jobs.append(job)
        else:
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        jobs.append(json.loads(line))
                    except ValueError as exc:
                        raise SystemExit(f"{path}:{n}: not valid JSON ({exc})") from None
    if args.to:
        if not args.id:
            raise SystemExit("enqueue: --id is required with --to")
        job = {"id": args.id, "to": args.to}
        for name in ("from_", "agent_id", "workflow_id", "provider", "not_before",
                     "expires_at"):
            value = getattr(args, name)
            if value:
                job[name.rstrip("_")] = value
        if args.metadata:
            job["metadata"] = json.loads(args.metadata)
        if args.max_attempts:
            job["max_attempts"] = args.max_attempts
        jobs.append(job)
    return jobs


def cmd_enqueue(args: argparse.Namespace) -> int:
    from dispatcher.client import Client, JobRejected
    settings = _settings(args)
    jobs = _jobs_from(args)
    if not jobs:
        print("enqueue: nothing to enqueue (give --id/--to or --file)", file=sys.stderr)
        return 2

    async def main() -> int:
        client = Client(settings.redis.url, settings.redis.namespace)
        try:
            ids = await client.enqueue(jobs, validate=not args.no_validate)
        except JobRejected as exc:
            print(f"enqueue: {exc}", file=sys.stderr)
            return 2
        finally:
            await client.close()
        print(f"enqueued {len(ids)} jobs into {{{settings.redis.namespace}}}:jobs")
        return 0

    return asyncio.run(main())


# -- results / status / resume / cancel -----------------------------------------------------
def cmd_results(args: argparse.Namespace) -> int:
    from dispatcher.client import Client
    settings = _settings(args)

    async def main() -> None:
        client = Client(settings.redis.url, settings.redis.namespace)
        try:
            async for _, res in client.results(args.start, follow=args.follow):
                print(json.dumps(res), flush=True)
        finally:
            await client.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from dispatcher.status import collect, render
    settings = _settings(args)

    async def main() -> dict[str, Any]:
        store = _client_store(settings)
        try:
            return await collect(store, settings)
        finally:
            await store.close()

    s = asyncio.run(main())
    print(json.dumps(s, indent=2) if args.json else render(s))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.provider not in settings.providers:
        print(f"resume: no provider named {args.provider!r} "
              f"(configured: {', '.join(settings.providers) or 'none'})", file=sys.stderr)
        return 2

    async def main() -> int:
        store = _client_store(settings)
        try:
            halted = bool(await store.halt_info(args.provider))
            moved = await store.unpark(args.provider)
        finally:
            await store.close()
        print(f"provider {args.provider}: {'resumed' if halted else 'was not halted'}; "
              f"{moved} parked jobs back in the queue")
        return 0

    return asyncio.run(main())


def cmd_cancel(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def main() -> bool:
        store = _client_store(settings)
        try:
            return bool(await store.cancel(args.id, settings.worker.dedupe_ttl_s))
        finally:
            await store.close()

    ok = asyncio.run(main())
    print(f"job {args.id}: " + ("cancel requested" if ok else "already finished"))
    return 0 if ok else 1


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
    from dispatcher.demo import run_demo
    return run_demo(jobs=args.jobs, processes=args.processes)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dispatcher", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", help="TOML file (default: $DISPATCHER_CONFIG or "
                        "config/dispatcher.toml)")
        sp.add_argument("--redis-url", help="overrides redis.url")

    sp = sub.add_parser("run", help="run workers")
    common(sp)
    sp.add_argument("--processes", type=int, default=1)
    sp.set_defaults(fn=cmd_run)

    sp = sub.add_parser("enqueue", help="push jobs (arguments, JSON lines or CSV)")
    common(sp)
    sp.add_argument("--file", help="a .jsonl file (one job per line) or a .csv with a header")
    sp.add_argument("--id")
    sp.add_argument("--to")
    sp.add_argument("--from", dest="from_")
    sp.add_argument("--agent-id", dest="agent_id")
    sp.add_argument("--workflow-id", dest="workflow_id")
    sp.add_argument("--provider")
    sp.add_argument("--metadata", help="a JSON object")
    sp.add_argument("--not-before", dest="not_before")
    sp.add_argument("--expires-at", dest="expires_at")
    sp.add_argument("--max-attempts", dest="max_attempts", type=int)
    sp.add_argument("--no-validate", action="store_true",
                    help="push as given; workers turn bad jobs into 'invalid' results")
    sp.set_defaults(fn=cmd_enqueue)

    sp = sub.add_parser("results", help="print the results stream")
    common(sp)
    sp.add_argument("--follow", "-f", action="store_true")
    sp.add_argument("--start", default="0", help="stream id to read after (default: all)")
    sp.set_defaults(fn=cmd_results)

    sp = sub.add_parser("status", help="queues, windows, cooldowns, slots, halts")
    common(sp)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(fn=cmd_status)

    sp = sub.add_parser("resume", help="resume a halted provider")
    common(sp)
    sp.add_argument("provider")
    sp.set_defaults(fn=cmd_resume)

    sp = sub.add_parser("cancel", help="cancel a job that has not been dialled")
    common(sp)
    sp.add_argument("id")
    sp.set_defaults(fn=cmd_cancel)

    sp = sub.add_parser("simulate", help="run the provider simulator")
    sp.add_argument("--config", help="simulator TOML")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8099)
    sp.add_argument("--audit-file", help="append every request as a JSON line")
    sp.set_defaults(fn=cmd_simulate)

    sp = sub.add_parser("demo", help="everything, locally: Redis, simulator, workers, jobs")
    sp.add_argument("--jobs", type=int, default=300)
    sp.add_argument("--processes", type=int, default=3)
    sp.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.fn(args)
    except ConfigError as exc:
        print(f"dispatcher: {exc}", file=sys.stderr)
        code = 2
    except (RedisConnectionError, RedisTimeoutError) as exc:
        from dispatcher.logs import safe_url
        print(f"dispatcher: cannot reach Redis at {safe_url(_redis_url[0])}: {exc}",
              file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
