"""Importing jobs from a file: CSV with a header row, or JSON lines.

Two passes, so a bad row never leaves half a file pushed: ``check_file`` reads and validates
every row (in worker processes for large files), reports each bad one with its line number
and field, and spools the good rows' payloads to a temporary file; ``push_file`` then pushes
the spool, a batch per script call (or, unchecked, the file itself). Both stream: memory stays
bounded whatever the file's size (the spool takes disk: ~2.4 times a CSV).

CSV: the columns named like job fields fill those fields (``metadata`` holds a JSON object,
``max_attempts`` an integer, the rest text); every other column is carried into the job's
``metadata`` under its own name, as text. Empty cells are absent. A UTF-8 byte order mark (as
spreadsheet programs write) is ignored. The separator (comma, semicolon or tab) is the one the
header row uses most; ``columns`` renames columns (``{"Phone Number": "to"}``); rows whose
cells are all empty are skipped and counted. With a ``region``, a national number in ``to`` is
read as that region's and written as E.164; without one it stays an error, never guessed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import os
import tempfile
import time
from array import array
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dispatcher.core.jobs import DEFAULT_RULES, KNOWN_FIELDS, InvalidJob, JobRules, parse_job
from dispatcher.ops.import_parts import (
    SEPARATOR_NAMES,
    Problems,
    Pushed,
    Rejects,
    in_region,
    sniff_separator,
    typed_cells,
)

CHUNK = 1000            # rows per validation task and per pushed pipeline
POOL_MIN_BYTES = 4_000_000  # smaller files are validated in this process
FORMATS = ("csv", "jsonl")

__all__ = ["Problems", "Pushed"]  # re-exported: what the command line prints

Progress = Callable[[str, float, int, int], None]  # stage, fraction of bytes, rows, bad rows


class FileProblem(ValueError):
    """The file as a whole cannot be imported (missing, not a table, header unusable)."""


@dataclass(frozen=True)
class Row:
    line: int                 # where the row starts in the file (1 = first line)
    payload: str | None       # the job as compact JSON; None when it could not be built
    error: str | None         # "field: why", when the row is bad before validation
    source: list[str] | str   # the row as read: CSV cells or the JSON line (for rejects)


@dataclass(frozen=True)
class BadRow:
    line: int
    field: str
    error: str                # "field: why", as the dispatcher would put it in a result
    source: list[str] | str


@dataclass
class Options:
    defaults: Mapping[str, Any] = field(default_factory=dict)  # fields rows may leave out
    rules: JobRules = DEFAULT_RULES
    providers: frozenset[str] = frozenset()  # configured names; empty: not checked
    skip_invalid: bool = False
    reject_path: Path | None = None
    workers: int | None = None               # validation processes; None: by file size
    columns: Mapping[str, str] = field(default_factory=dict)  # header name -> job field
    region: str | None = None                # reads national numbers as this region's
    now: float = field(default_factory=time.time)


@dataclass
class Checked:
    """What the first pass found."""

    path: Path
    rows: int = 0
    bad: int = 0
    blank: int = 0             # rows whose cells are all empty: skipped
    bad_lines: array[int] = field(default_factory=lambda: array("Q"))
    stat: tuple[int, int] = (0, 0)
    rejects: Path | None = None
    spool: Path | None = None  # the good rows' payloads, one a line

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.unlink(missing_ok=True)
            self.spool = None

    @property
    def good(self) -> int:
        return self.rows - self.bad


def file_format(path: Path) -> str:
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def default_reject_path(path: Path) -> Path:
    suffix = ".csv" if file_format(path) == "csv" else ".jsonl"
    return path.with_name(f"{path.stem}.rejects{suffix}")


def field_of(error: str) -> str:
    head, sep, _ = error.partition(":")
    return head if sep and head and " " not in head else "job"


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps builds one a call


def _dumps(job: dict[str, Any]) -> str:
    return _ENCODER.encode(job)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _apply_defaults(job: dict[str, Any], defaults: Mapping[str, Any]) -> str | None:
    for name, value in defaults.items():
        have = job.get(name)
        if have is None:
            job[name] = value
        elif name == "campaign" and have != value:
            return f"campaign: the row says {have!r}, but the import is for campaign {value!r}"
    return None


# -- reading ------------------------------------------------------------------------------------

class Reader:
    """Rows of one file, with how far into it the reading is (for a progress bar)."""

    def __init__(self, path: Path, defaults: Mapping[str, Any] | None = None, *,
                 columns: Mapping[str, str] | None = None, region: str | None = None):
        self.path = path
        self.defaults = dict(defaults or {})
        self.columns = dict(columns or {})
        self.region = region
        self.blank = 0
        self.size = path.stat().st_size
        self._raw: IO[bytes] | None = None
        self.header: list[str] = []
        self.separator = ","

    def fraction(self) -> float:
        if self._raw is None or self._raw.closed or not self.size:
            return 1.0
        return min(1.0, self._raw.tell() / self.size)

    def rows(self) -> Iterator[Row]:
        with self.path.open("rb") as raw:
            self._raw = raw
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape",
                                    newline="" if file_format(self.path) == "csv" else None)
            if file_format(self.path) == "csv":
                yield from self._csv_rows(text)
            else:
                yield from self._jsonl_rows(text)

    # JSON lines ---------------------------------------------------------------------------------
    def _jsonl_rows(self, text: IO[str]) -> Iterator[Row]:
        for lineno, line in enumerate(text, 1):
            body = line.strip()
            if not body:
                continue
            if not _utf8(body):
                yield Row(lineno, None, "job: not UTF-8 text", line.rstrip("\r\n"))
            elif not self.defaults and not self.region:
                yield Row(lineno, body, None, body)
            else:
                yield self._jsonl_with_defaults(lineno, body)

    def _jsonl_with_defaults(self, lineno: int, body: str) -> Row:
        try:
            job = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_refuse)
        except ValueError:
            return Row(lineno, body, None, body)  # validation explains what is wrong with it
        if not isinstance(job, dict):
            return Row(lineno, body, None, body)
        self._in_region(job)
        error = _apply_defaults(job, self.defaults)
        return Row(lineno, None if error else _dumps(job), error, body)

    # CSV ----------------------------------------------------------------------------------------
    def _csv_rows(self, text: IO[str]) -> Iterator[Row]:
        first = text.readline()
        if not first:
            raise FileProblem(f"{self.path}: empty file (expected a header row)")
        self.separator = sniff_separator(first)
        reader = csv.reader(itertools.chain([first], text), delimiter=self.separator)
        columns = self._columns(next(reader))
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                self.blank += 1  # a blank line, or a row of empty cells
                continue
            payload, error = self._csv_job(cells, columns)
            yield Row(line, payload, error, cells)

    def _columns(self, header: list[str]) -> list[tuple[str, str]]:
        read = [h.strip() for h in header]
        if not _utf8("".join(read)):
            raise FileProblem(f"{self.path}:1: the header row is not UTF-8 text")
        self.header = read
        seen_as = self._seen(read)
        for name in self.columns:
            if name not in read:
                raise FileProblem(f"{self.path}:1: --map {name!r}: no such column "
                                  f"(columns seen: {seen_as})")
        names = [self.columns.get(n, n) for n in read]
        seen: set[str] = set()
        for name in names:
            if name and name in seen:
                raise FileProblem(f"{self.path}:1: column {name!r} appears twice"
                                  + (" (after --map)" if self.columns else ""))
            seen.add(name)
        for need in ("id", "to"):
            if need not in seen:
                near = [h for h in names if h.lower() == need]
                hint = (f"names are case-sensitive: found {near[0]!r}; " if near else "")
                raise FileProblem(f"{self.path}:1: no {need!r} column ({hint}columns seen: "
                                  f"{seen_as}); map one to it with --map \"COLUMN={need}\"")
        return [("field" if n in KNOWN_FIELDS else "extra" if n else "unnamed", n)
                for n in names]

    def _seen(self, names: list[str]) -> str:
        """The header as read, for an error: its columns and the separator they were split on."""
        if len(names) == 1:
            return (f"one column {names[0]!r}: is the separator something other than comma, "
                    "semicolon or tab?")
        return (", ".join(repr(n) for n in names)
                + f", separated by {SEPARATOR_NAMES[self.separator]}")

    def _in_region(self, job: dict[str, Any]) -> None:
        to = job.get("to")
        if self.region and isinstance(to, str):
            job["to"] = in_region(to, self.region)

    def _csv_job(self, cells: list[str], columns: list[tuple[str, str]]
                 ) -> tuple[str | None, str | None]:
        if not _utf8("".join(cells)):
            return None, "row: not UTF-8 text"
        if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns):]):
            return None, f"row: {len(cells)} cells, but the header has {len(columns)} columns"
        job: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for (kind, name), value in zip(columns, cells, strict=False):
            if value == "":
                continue
            if kind == "field":
                job[name] = value
            elif kind == "extra":
                extra[name] = value
            elif value.strip():
                return None, "row: a value in a column without a name"
        self._in_region(job)
        error = typed_cells(job, extra) or _apply_defaults(job, self.defaults)
        return (None, error) if error else (_dumps(job), None)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise ValueError("duplicate key")
    return fields


def _refuse(name: str) -> Any:
    raise ValueError(name)


# -- validating -------------------------------------------------------------------------------

def check_payload(payload: str, rules: JobRules, providers: frozenset[str],
                  now: float) -> str | None:
    """Why the job would be refused by a worker, or None."""
    parsed = parse_job(payload, rules, now)
    if isinstance(parsed, InvalidJob):
        return parsed.error
    if providers and parsed.provider not in providers:
        return (f"provider: no provider named {parsed.provider!r} is configured "
                f"({', '.join(sorted(providers))})")
    return None


_POOL: tuple[JobRules, frozenset[str], float] = (DEFAULT_RULES, frozenset(), 0.0)


def _pool_init(rules: JobRules, providers: frozenset[str], now: float) -> None:
    global _POOL
    _POOL = (rules, providers, now)


def _check_chunk(chunk: list[tuple[int, str]]) -> list[tuple[int, str]]:
    rules, providers, now = _POOL
    out = []
    for line, payload in chunk:
        error = check_payload(payload, rules, providers, now)
        if error:
            out.append((line, error))
    return out


def _chunks(rows: Iterable[Row]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _todo(chunk: list[Row]) -> list[tuple[int, str]]:
    return [(r.line, r.payload) for r in chunk if r.payload is not None and r.error is None]


def _verdicts(chunk: list[Row], found: list[tuple[int, str]]
              ) -> Iterator[tuple[Row, str | None]]:
    errors = dict(found)
    for row in chunk:
        yield row, row.error or errors.get(row.line)


def validate(rows: Iterable[Row], opts: Options, workers: int = 1
             ) -> Iterator[tuple[Row, str | None]]:
    """Each row with why it is bad (None: good), in file order."""
    if workers <= 1:
        for chunk in _chunks(rows):
            found = [(line, e) for line, p in _todo(chunk)
                     if (e := check_payload(p, opts.rules, opts.providers, opts.now))]
            yield from _verdicts(chunk, found)
        return
    with ProcessPoolExecutor(workers, initializer=_pool_init,
                             initargs=(opts.rules, opts.providers, opts.now)) as pool:
        inflight: deque[tuple[list[Row], Future[list[tuple[int, str]]]]] = deque()
        for chunk in _chunks(rows):
            inflight.append((chunk, pool.submit(_check_chunk, _todo(chunk))))
            if len(inflight) > 2 * workers:
                done, fut = inflight.popleft()
                yield from _verdicts(done, fut.result())
        while inflight:
            done, fut = inflight.popleft()
            yield from _verdicts(done, fut.result())


def _workers(size: int, asked: int | None) -> int:
    if asked is not None:
        return max(1, asked)
    if size < POOL_MIN_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _reader(path: Path, opts: Options) -> Reader:
    return Reader(path, opts.defaults, columns=opts.columns, region=opts.region)


def check_file(path: Path, opts: Options, on_bad: Callable[[BadRow], None],
               progress: Progress | None = None) -> Checked:
    """First pass: validate every row, report each bad one (in file order); with
    ``skip_invalid``, also write the bad rows to the reject file."""
    st = path.stat()
    out = Checked(path, stat=(st.st_size, st.st_mtime_ns))
    reader = _reader(path, opts)
    rejects: Rejects | None = None
    spool = tempfile.NamedTemporaryFile(  # closed below; pass two reads it
        "w", encoding="utf-8", errors="surrogateescape", newline="\n",
        prefix="dispatcher-import-", suffix=".jsonl", delete=False)
    out.spool = Path(spool.name)
    try:
        for row, error in validate(reader.rows(), opts, _workers(reader.size, opts.workers)):
            out.rows += 1
            if not error and row.payload is not None:
                spool.write(row.payload + "\n")
            elif error:
                out.bad += 1
                out.bad_lines.append(row.line)
                on_bad(BadRow(row.line, field_of(error), error, row.source))
                if opts.skip_invalid:
                    if rejects is None:
                        rejects = Rejects(opts.reject_path or default_reject_path(path),
                                           reader.header, reader.separator)
                    rejects.write(row.source)
            if progress and out.rows % CHUNK == 0:
                progress("checking", reader.fraction(), out.rows, out.bad)
    except BaseException:
        out.discard()
        raise
    finally:
        spool.close()
        if rejects is not None:
            rejects.close()
            out.rejects = rejects.path
        out.blank = reader.blank
    if progress:
        progress("checking", 1.0, out.rows, out.bad)
    return out


async def push_file(checked: Checked, opts: Options,
                    push: Callable[[list[str]], Awaitable[int]],
                    progress: Progress | None = None) -> Pushed:
    """Second pass: push every good row (the spool of the first pass, else every row of
    the unchecked file), ``CHUNK`` per call, the next batch read while the last one is on its
    way; ``push`` returns how many of its batch's ids were already known. Returns the rows
    pushed and how many were known; the spool is removed.

    Pushing a file again is safe: the dispatcher dials each job id once, so a re-run after a
    failure part-way only adds the rows that were not pushed yet."""
    try:
        return await _push_rows(_payloads(checked, opts), checked, push, progress)
    finally:
        checked.discard()


def _payloads(checked: Checked, opts: Options) -> Iterator[tuple[str, float]]:
    """(payload, fraction done) of every row to push."""
    if checked.spool is not None:
        size = max(checked.spool.stat().st_size, 1)
        with checked.spool.open(encoding="utf-8", errors="surrogateescape",
                                newline="\n") as fh:
            done = 0
            for line in fh:
                done += len(line)
                yield line[:-1], done / size
        return
    reader = _reader(checked.path, opts)
    for row in reader.rows():
        if row.payload is not None:
            yield row.payload, reader.fraction()


async def _push_rows(rows: Iterator[tuple[str, float]], checked: Checked,
                     push: Callable[[list[str]], Awaitable[int]],
                     progress: Progress | None) -> Pushed:
    pushed, known, batch = 0, 0, []
    sending: asyncio.Future[int] | None = None
    for payload, fraction in rows:
        batch.append(payload)
        if len(batch) >= CHUNK:
            if sending is not None:
                known += await sending
                pushed += CHUNK
            sending, batch = asyncio.ensure_future(push(batch)), []
            await asyncio.sleep(0)  # let it go out while the next batch is read
            if progress:
                progress("pushing", fraction, pushed, 0)
    if sending is not None:
        known += await sending
        pushed += CHUNK
    if batch:
        known += await push(batch)
        pushed += len(batch)
    if progress:
        progress("pushing", 1.0, pushed, 0)
    return Pushed(pushed, known)
