"""``dispatcher enqueue``, ``results`` and ``cancel``: what producers do from a shell."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from dispatcher.cli.common import Fail, add_redis_options, open_store, run, settings_from
from dispatcher.config import Settings


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Fail(f"{what}: not valid JSON ({exc})") from None


def _csv_jobs(path: Path) -> list[dict[str, Any]]:
    jobs = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for n, row in enumerate(csv.DictReader(fh), 2):
            job: dict[str, Any] = {k: v for k, v in row.items() if k and v not in ("", None)}
            if "metadata" in job:
                job["metadata"] = _json_arg(job["metadata"], f"{path}:{n}: metadata")
            if "max_attempts" in job:
                try:
                    job["max_attempts"] = int(job["max_attempts"])
                except ValueError:
                    raise Fail(f"{path}:{n}: max_attempts: expected an integer, got "
                               f"{job['max_attempts'][:20]!r}") from None
            jobs.append(job)
    return jobs


def _file_jobs(name: str) -> list[dict[str, Any]]:
    path = Path(name)
    if not path.exists():
        raise Fail(f"--file: no such file: {name}")
    if not path.is_file():
        raise Fail(f"--file: not a file: {name}")
    try:
        if path.suffix.lower() == ".csv":
            return _csv_jobs(path)
        jobs = []
        for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            if line.strip():
                jobs.append(_json_arg(line, f"{path}:{n}"))
        return jobs
    except UnicodeDecodeError:
        raise Fail(f"--file: {name} is not UTF-8 text") from None
    except OSError as exc:
        raise Fail(f"--file: cannot read {name}: {exc.strerror}") from None


def _arg_job(args: argparse.Namespace) -> dict[str, Any]:
    if not args.id:
        raise Fail("enqueue: --id is required with --to")
    job: dict[str, Any] = {"id": args.id, "to": args.to}
    for name in ("from_", "agent_id", "workflow_id", "provider", "not_before", "expires_at",
                 "campaign", "priority", "timezone"):
        value = getattr(args, name)
        if value:
            job[name.rstrip("_")] = value
    if args.metadata:
        job["metadata"] = _json_arg(args.metadata, "--metadata")
    if args.max_attempts:
        job["max_attempts"] = args.max_attempts
    return job


def _check_providers(jobs: list[dict[str, Any]], settings: Settings) -> None:
    if not settings.providers:
        return  # a producer may not see the workers' configuration
    for i, job in enumerate(jobs):
        name = job.get("provider", "default")
        if isinstance(name, str) and name not in settings.providers:
            raise Fail(f"job {i} ({job.get('id')!r}): provider: no provider named {name!r} is "
                       f"configured ({', '.join(settings.providers)})")


def cmd_enqueue(args: argparse.Namespace) -> int:
    from dispatcher.client import Client, JobRejected
    settings = settings_from(args)
    jobs = _file_jobs(args.file) if args.file else []
    if args.to:
        jobs.append(_arg_job(args))
    if not jobs:
        raise Fail("enqueue: nothing to enqueue (give --id and --to, or --file)")
    if not args.no_validate:
        _check_providers(jobs, settings)

    async def main() -> int:
        client = Client(settings.redis.url, settings.redis.namespace)
        try:
            ids = await client.enqueue(jobs, validate=not args.no_validate)
        except JobRejected as exc:
            raise Fail(f"enqueue: {exc}") from None
        finally:
            await client.close()
        print(f"enqueued {len(ids)} jobs into {{{settings.redis.namespace}}}:jobs")
        return 0

    return run(main())


def cmd_results(args: argparse.Namespace) -> int:
    from dispatcher.client import Client
    settings = settings_from(args)

    async def main() -> None:
        client = Client(settings.redis.url, settings.redis.namespace)
        try:
            async for _, res in client.results(args.start, follow=args.follow):
                print(json.dumps(res), flush=True)
        finally:
            await client.close()

    try:
        run(main())
    except KeyboardInterrupt:
        pass
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from dispatcher.scripts import CancelResult
    settings = settings_from(args)

    async def main() -> CancelResult:
        store = open_store(settings)
        try:
            res: CancelResult = await store.cancel_job(args.id, settings.worker.dedupe_ttl_s,
                                                       ahead=args.ahead)
            return res
        finally:
            await store.close()

    res = run(main())
    text = {
        CancelResult.CANCELLED: "cancelled; its result follows",
        CancelResult.AHEAD: "not pushed yet; it will be cancelled when it is",
        CancelResult.UNKNOWN: "never seen (use --ahead to cancel it before it is pushed)",
        CancelResult.DONE: "already finished",
        CancelResult.TOO_LATE: "already dialled; its call is followed to its end",
    }[res]
    print(f"job {args.id}: {text}")
    return 0 if res in (CancelResult.CANCELLED, CancelResult.AHEAD) else 1


def register(sub: Any) -> None:
    sp = sub.add_parser("enqueue", help="push jobs (arguments, JSON lines or CSV)",
                        description="Push jobs into the jobs stream. Every job is validated "
                                    "first; nothing is pushed when one is bad.")
    add_redis_options(sp)
    sp.add_argument("--file", metavar="PATH",
                    help="a .jsonl file (one job per line) or a .csv with a header row")
    sp.add_argument("--id", help="the job's id (with --to)")
    sp.add_argument("--to", help="number to dial, E.164")
    sp.add_argument("--from", dest="from_", metavar="FROM", help="caller (number or its id)")
    sp.add_argument("--agent-id", dest="agent_id", help="agent that speaks")
    sp.add_argument("--workflow-id", dest="workflow_id", help="TelEcho workflow instead")
    sp.add_argument("--provider", help="configured provider name (default: default)")
    sp.add_argument("--campaign", help="campaign name")
    sp.add_argument("--priority", choices=("high", "normal", "low"))
    sp.add_argument("--timezone", help="the recipient's IANA time zone")
    sp.add_argument("--metadata", metavar="JSON", help="a JSON object, echoed in the result")
    sp.add_argument("--not-before", dest="not_before", metavar="TIME", help="RFC 3339")
    sp.add_argument("--expires-at", dest="expires_at", metavar="TIME", help="RFC 3339")
    sp.add_argument("--max-attempts", dest="max_attempts", type=int, metavar="N")
    sp.add_argument("--no-validate", action="store_true",
                    help="push as given; workers turn bad jobs into 'invalid' results")
    sp.set_defaults(fn=cmd_enqueue)

    sp = sub.add_parser("results", help="print the results stream as JSON lines")
    add_redis_options(sp)
    sp.add_argument("--follow", "-f", action="store_true", help="keep waiting for more")
    sp.add_argument("--start", default="0", metavar="ID",
                    help="stream id to read after (default: from the beginning)")
    sp.set_defaults(fn=cmd_results)

    sp = sub.add_parser("cancel", help="cancel a job that has not been dialled",
                        description="Cancel a job before it is dialled: it gets the result "
                                    "'cancelled'. Exit 1 when it could not be cancelled.")
    add_redis_options(sp)
    sp.add_argument("id")
    sp.add_argument("--ahead", action="store_true",
                    help="the job has not been pushed yet: cancel it when it is")
    sp.set_defaults(fn=cmd_cancel)
