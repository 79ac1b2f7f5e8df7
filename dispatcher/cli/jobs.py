"""``dispatcher enqueue``, ``results`` and ``cancel``: what producers do from a shell."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dispatcher.cli.common import (
    Fail,
    add_redis_options,
    audited,
    open_store,
    run,
    settings_from,
)
from dispatcher.cli.jobfilters import add_filter_options

if TYPE_CHECKING:
    from dispatcher.config.settings import Settings

DEFAULT_FIELDS = ("from_", "agent_id", "workflow_id", "provider", "not_before", "expires_at",
                  "campaign", "priority", "timezone", "region_", "subject", "max_attempts")
RESULT_COLUMNS = ("job_id", "campaign", "outcome", "attempts", "provider", "enqueued_at",
                  "finished_at", "call_id", "call_status", "answer_status",
                  "disconnection_reason", "duration_seconds", "reason", "http_status",
                  "error_code", "error_message", "calls", "metadata")


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Fail(f"{what}: not valid JSON ({exc})") from None


def _defaults(args: argparse.Namespace) -> dict[str, Any]:
    """The job fields given as options: the whole job with --to, defaults with --file."""
    out = {name.rstrip("_"): getattr(args, name) for name in DEFAULT_FIELDS
           if getattr(args, name) not in (None, "")}
    if args.metadata:
        out["metadata"] = _json_arg(args.metadata, "--metadata")
    return out


def _check_options(defaults: dict[str, Any], settings: Settings) -> None:
    """Option values must be valid on their own: a bad one would spoil every row."""
    from dispatcher.core.jobs import InvalidJob, parse_job
    from dispatcher.core.numbers import EXAMPLE
    probe = parse_job(json.dumps({"id": "x", "to": EXAMPLE, **defaults}),
                      settings.job_rules())
    if isinstance(probe, InvalidJob):
        name = probe.error.partition(":")[0].replace("_", "-")
        raise Fail(f"--{name}: {probe.error.partition(':')[2].strip()}")


class ProgressBar:
    """One line on a terminal, redrawn at most ten times a second; cleared before any other
    line is printed, so nothing is written over it."""

    def __init__(self, out: IO[str], label: str):
        self.out, self.label, self.shown = out, label, 0.0
        self.drawn = False  # a bar is on the current line, not ended by a newline

    def clear(self) -> None:
        if self.drawn:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self.drawn = False

    def __call__(self, stage: str, fraction: float, rows: int, bad: int) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self.shown < 0.1:
            return
        self.shown = now
        filled = round(fraction * 30)
        extra = f", {bad:,} bad" if bad else ""
        self.out.write(f"\r{stage:<8} {self.label} [{'#' * filled}{'.' * (30 - filled)}] "
                       f"{fraction:6.1%} {rows:,} rows{extra}")
        self.drawn = fraction < 1.0
        if fraction >= 1.0:
            self.out.write("\n")
        self.out.flush()


def _on_bad(path: Path, problems: Any, every: bool, bar: ProgressBar | None) -> Any:
    """Each bad row into the summary; with ``every`` (--all-errors), also printed at once."""
    def show(bad: Any) -> None:
        problems.add(bad)
        if every:
            if bar:
                bar.clear()
            print(f"{path}:{bad.line}: {bad.error}", file=sys.stderr)
    return show


def _print_problems(path: Path, problems: Any, every: bool) -> None:
    if not every:
        for line in problems.lines(path):
            print(line, file=sys.stderr)
    if problems.starts_with("to: national number"):
        print("hint: numbers without a country code can be read as one country's with "
              "--region (e.g. --region US)", file=sys.stderr)


def _columns(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or ():
        column, sep, name = pair.rpartition("=")
        if not sep or not column.strip() or not name.strip():
            raise Fail(f'--map: expected COLUMN=FIELD (like "Phone Number=to"), got {pair!r}')
        out[column.strip()] = name.strip()
    return out


def _region(text: str | None) -> str | None:
    import phonenumbers
    if text is None:
        return None
    if text.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise Fail(f"--region: unknown region {text!r} (a two-letter country code like US, "
                   "GB or DE)")
    return text.upper()


def _file_options(args: argparse.Namespace, settings: Settings) -> Any:
    from dispatcher.ops.imports import Options
    return Options(defaults=_defaults(args),
                   rules=settings.job_rules(),
                   providers=frozenset(settings.providers), skip_invalid=args.skip_invalid,
                   reject_path=Path(args.reject_file) if args.reject_file else None,
                   columns=_columns(args.map), region=_region(args.region))


def _pushed_line(pushed: Any, checked: Any, ns: str) -> str:
    known = " (not dialled again)" if pushed.known else ""
    out = (f"pushed {pushed.rows:,} rows into {{{ns}}}:jobs: {pushed.new:,} new, "
           f"{pushed.known:,} already known{known}")
    if checked.blank:
        out += f"; skipped {checked.blank:,} empty row{'s' if checked.blank > 1 else ''}"
    if checked.rejects:
        out += f"; {checked.bad:,} bad rows written to {checked.rejects}"
    return out


def _enqueue_file(args: argparse.Namespace, settings: Settings) -> int:
    from dispatcher.ops import imports
    path = Path(args.file)
    if not path.is_file():
        raise Fail(f"--file: {'not a file' if path.exists() else 'no such file'}: {path}")
    opts = _file_options(args, settings)
    _check_options(dict(opts.defaults), settings)
    bar = ProgressBar(sys.stderr, path.name) if sys.stderr.isatty() else None
    try:
        if args.no_validate:
            st = path.stat()
            checked = imports.Checked(path, stat=(st.st_size, st.st_mtime_ns))
        else:
            problems = imports.Problems()
            checked = imports.check_file(
                path, opts, _on_bad(path, problems, args.all_errors, bar), bar)
            if bar:
                bar.clear()
            _print_problems(path, problems, args.all_errors)
        if checked.bad and not args.skip_invalid:
            checked.discard()
            listed = "listed above" if args.all_errors else \
                "each kind above with its first lines; --all-errors lists every one"
            raise Fail(f"enqueue: {checked.bad:,} of {checked.rows:,} rows are bad ({listed}); "
                       f"nothing was pushed. Fix them, or push the {checked.good:,} good rows "
                       "with --skip-invalid (the bad ones go to a reject file)")
        pushed = run(_push_file(settings, checked, opts, bar))
    except imports.FileProblem as exc:
        raise Fail(str(exc)) from None
    except UnicodeDecodeError:
        raise Fail(f"--file: {path} is not UTF-8 text") from None
    except OSError as exc:
        raise Fail(f"--file: cannot read {path}: {exc.strerror}") from None
    print(_pushed_line(pushed, checked, settings.redis.namespace))
    return 0


async def _push_file(settings: Settings, checked: Any, opts: Any, bar: Any) -> Any:
    from dispatcher.ops import imports
    store = open_store(settings)

    async def push(batch: list[str]) -> int:
        known: int = (await store.push_batch(batch)).known
        return known

    try:
        return await imports.push_file(checked, opts, push, bar)
    finally:
        await store.close()


def _enqueue_one(args: argparse.Namespace, settings: Settings) -> int:
    from dispatcher.client import Client, JobRejected
    from dispatcher.ops.import_parts import in_region
    region = _region(args.region)
    job = {"id": args.id, "to": in_region(args.to, region) if region else args.to,
           **_defaults(args)}
    if not args.no_validate:
        _check_providers(job, settings)

    async def main() -> int:
        async with Client(settings.redis, settings.redis.namespace) as client:
            try:
                sent = await client.enqueue([job], validate=not args.no_validate)
            except JobRejected as exc:
                raise Fail(f"enqueue: {str(exc).replace('job 0 ', 'job ', 1)}") from None
        known = (f"; job {args.id} was already known, so it is not dialled again"
                 if sent.duplicates else "")
        print(f"enqueued 1 job into {{{settings.redis.namespace}}}:jobs{known}")
        return 0

    return run(main())


def _check_providers(job: dict[str, Any], settings: Settings) -> None:
    if not settings.providers:
        return  # a producer may not see the workers' configuration
    name = job.get("provider", "default")
    if isinstance(name, str) and name not in settings.providers:
        raise Fail(f"enqueue: provider: no provider named {name!r} is configured "
                   f"({', '.join(settings.providers)})")


def cmd_enqueue(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.file and (args.id or args.to):
        raise Fail("enqueue: give --file, or --id and --to, not both")
    if args.file:
        return _enqueue_file(args, settings)
    if not args.to or not args.id:
        raise Fail("enqueue: nothing to enqueue (give --id and --to, or --file)")
    return _enqueue_one(args, settings)


# -- results ------------------------------------------------------------------------------------

def result_row(res: dict[str, Any], meta_columns: tuple[str, ...] = ()) -> list[Any]:
    """One result as a CSV row: ``calls`` is how many calls the job made, ``metadata`` its
    JSON text, and each of ``meta_columns`` one metadata key."""
    row: list[Any] = []
    for name in RESULT_COLUMNS:
        value = res.get(name)
        if name == "calls":
            value = len(value) if isinstance(value, list) else (
                1 if res.get("call_id") else 0)
        elif name == "metadata":
            value = json.dumps(value, separators=(",", ":")) if value else ""
        row.append("" if value is None else value)
    raw = res.get("metadata")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    for key in meta_columns:
        value = meta.get(key)
        row.append("" if value is None else value if isinstance(value, str)
                   else json.dumps(value))
    return row


def cmd_results(args: argparse.Namespace) -> int:
    from dispatcher.client import Client
    settings = settings_from(args)
    meta = tuple(m.strip() for m in (args.meta_columns or "").split(",") if m.strip())
    out = Path(args.output).open("w", encoding="utf-8", newline="") if args.output \
        else sys.stdout
    writer = csv.writer(out) if args.format == "csv" else None
    if writer:
        writer.writerow([*RESULT_COLUMNS, *(f"metadata.{m}" for m in meta)])

    async def main() -> int:
        written = 0
        async with Client(settings.redis, settings.redis.namespace) as client:
            async for _, res in client.results(args.start, follow=args.follow,
                                               campaign=args.campaign):
                if writer:
                    writer.writerow(result_row(res, meta))
                else:
                    out.write(json.dumps(res) + "\n")
                if args.follow:
                    out.flush()
                written += 1
        return written

    try:
        written = run(main())
        if args.output:
            print(f"wrote {written:,} results to {args.output}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


# -- cancel -------------------------------------------------------------------------------------

def cmd_cancel(args: argparse.Namespace) -> int:
    from dispatcher.ops.audit import Action
    from dispatcher.store.protocol import CancelResult
    settings = settings_from(args)
    if args.id is None:
        return _cancel_matching(args, settings.worker.dedupe_ttl_s)

    async def main() -> CancelResult:
        store = open_store(settings)
        try:
            res: CancelResult = await store.cancel_job(args.id, settings.worker.dedupe_ttl_s,
                                                       ahead=args.ahead)
            if res in (CancelResult.CANCELLED, CancelResult.AHEAD):
                await audited(store, Action.JOB_CANCEL, args.id, res.value)
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


def _cancel_matching(args: argparse.Namespace, ttl_s: int) -> int:
    from dispatcher.cli import jobfilters
    from dispatcher.ops.audit import Action
    if not any((args.state, args.campaign, args.provider, args.priority, args.wait_reason,
                args.since, args.until)):
        raise Fail("cancel: give a job id, or filters (--campaign, --state, …) naming the jobs")

    async def main() -> Any:
        store = open_store(settings_from(args))
        try:
            tally = await jobfilters.cancel_matching(store, args, ttl_s)
            if args.apply:
                await audited(store, Action.JOB_CANCEL, jobfilters.filter_from(args).describe(),
                              f"{tally.n} jobs cancelled")
            return tally
        finally:
            await store.close()

    jobfilters.print_tally(run(main()), "cancelled", not args.apply)
    return 0


# -- the parsers --------------------------------------------------------------------------------

def _enqueue_parser(sub: Any) -> None:
    sp = sub.add_parser(
        "enqueue", help="push jobs (arguments, or a CSV / JSON-lines file)",
        description="Push jobs into the jobs stream. A file is read twice: every row is "
                    "validated first and bad rows are summarised by kind with their line "
                    "numbers; nothing is pushed when one is bad (unless --skip-invalid). A CSV "
                    "may use commas, semicolons or tabs; rows of empty cells are skipped. Job "
                    "options given with --file fill the fields a row leaves empty.")
    add_redis_options(sp)
    sp.add_argument("--file", metavar="PATH",
                    help="a .csv file with a header row (columns that are not job fields go "
                         "into metadata), or JSON lines (one job per line)")
    sp.add_argument("--skip-invalid", action="store_true",
                    help="with --file: push the good rows, write the bad ones to the reject "
                         "file")
    sp.add_argument("--reject-file", metavar="PATH",
                    help="where --skip-invalid writes bad rows (default NAME.rejects.csv or "
                         ".jsonl beside the file)")
    sp.add_argument("--map", action="append", metavar="COLUMN=FIELD",
                    help='with a .csv --file: read a column as a job field, e.g. '
                         '--map "Phone Number=to" (repeatable)')
    sp.add_argument("--region", metavar="CC",
                    help="read numbers written without a country code as this country's "
                         "(a two-letter code like US); without it they are refused")
    sp.add_argument("--all-errors", action="store_true",
                    help="with --file: print every bad row, not each kind of error with its "
                         "first lines")
    _job_options(sp)
    sp.set_defaults(fn=cmd_enqueue)


def _job_options(sp: Any) -> None:
    """The job's fields as options: the whole job with --to, defaults for a --file's rows."""
    sp.add_argument("--id", help="the job's id (with --to)")
    sp.add_argument("--to", help="number to dial, E.164")
    sp.add_argument("--from", dest="from_", metavar="FROM", help="caller (number or its id)")
    sp.add_argument("--agent-id", dest="agent_id", help="agent that speaks")
    sp.add_argument("--workflow-id", dest="workflow_id", help="TelEcho workflow instead")
    sp.add_argument("--provider", help="configured provider name (default: default)")
    sp.add_argument("--campaign", help="campaign name (with --file: rows naming another "
                                       "campaign are bad)")
    sp.add_argument("--priority", choices=("high", "normal", "low"))
    sp.add_argument("--timezone", help="the recipient's IANA time zone")
    sp.add_argument("--recipient-region", dest="region_", metavar="REGION",
                    help="the job's region: where the recipient lives, ISO 3166-2 (e.g. US-FL)")
    sp.add_argument("--subject", help="the person or lead, across numbers (per-subject caps)")
    sp.add_argument("--metadata", metavar="JSON", help="a JSON object, echoed in the result")
    sp.add_argument("--not-before", dest="not_before", metavar="TIME", help="RFC 3339")
    sp.add_argument("--expires-at", dest="expires_at", metavar="TIME", help="RFC 3339")
    sp.add_argument("--max-attempts", dest="max_attempts", type=int, metavar="N")
    sp.add_argument("--no-validate", action="store_true",
                    help="push as given; workers turn bad jobs into 'invalid' results")


def register(sub: Any) -> None:
    _enqueue_parser(sub)

    sp = sub.add_parser("results", help="print or export the results stream",
                        description="Results as JSON lines (default) or CSV, from the "
                                    "beginning of the stream (or --start).")
    add_redis_options(sp)
    sp.add_argument("--follow", "-f", action="store_true", help="keep waiting for more")
    sp.add_argument("--start", default="0", metavar="ID",
                    help="stream id to read after (default: from the beginning)")
    sp.add_argument("--campaign", metavar="NAME", help="only this campaign's results")
    sp.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    sp.add_argument("--meta-columns", metavar="KEYS",
                    help="with --format csv: one column per metadata key (comma-separated)")
    sp.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    sp.set_defaults(fn=cmd_results)

    sp = sub.add_parser("cancel", help="cancel jobs that have not been dialled",
                        description="Cancel a job before it is dialled: it gets the result "
                                    "'cancelled'. Exit 1 when it could not be cancelled "
                                    "(never seen, already dialled or finished). Without an id, "
                                    "the filters name the jobs (queued ones unless --state "
                                    "says otherwise) and nothing changes unless --apply.")
    add_redis_options(sp)
    sp.add_argument("id", nargs="?")
    sp.add_argument("--ahead", action="store_true",
                    help="the job has not been pushed yet: cancel it when it is")
    sp.add_argument("--apply", action="store_true",
                    help="with filters: do it (default: say how many would be cancelled)")
    add_filter_options(sp, state=True)
    sp.set_defaults(fn=cmd_cancel)
