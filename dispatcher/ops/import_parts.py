"""Pieces of an import that stand on their own: the separator a CSV uses, national numbers
read for a region, bad rows summarised by kind and written aside, what a push added."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import phonenumbers

SEPARATORS = (",", ";", "\t")  # in order of preference when the header uses none more
SEPARATOR_NAMES = {",": "','", ";": "';'", "\t": "tab"}

# A quoted input value inside an error (numbers.quote, repr): the part that differs per row
_QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*'(?:\.\.\.)?|"(?:[^"\\]|\\.)*"(?:\.\.\.)?""")


class HasError(Protocol):
    @property
    def line(self) -> int: ...
    @property
    def error(self) -> str: ...


def error_kind(error: str) -> str:
    """The error without the row's own values: rows with the same kind fail the same way."""
    return _QUOTED.sub("...", error)


@dataclass
class Kind:
    line: int          # the first row of this kind
    error: str         # its error, in full
    count: int = 0
    more: list[int] = field(default_factory=list)  # the next few lines of this kind


class Problems:
    """Bad rows grouped by kind: each kind's first row in full, then how many more and the
    first few of their lines. Bounded, whatever the number of bad rows."""

    SHOW = 5        # lines listed per kind after its first
    MAX_KINDS = 20  # further kinds are counted together

    def __init__(self) -> None:
        self.kinds: dict[str, Kind] = {}
        self.others: Kind | None = None
        self.total = 0

    def add(self, bad: HasError) -> None:
        self.total += 1
        key = error_kind(bad.error)
        kind = self.kinds.get(key)
        if kind is None and len(self.kinds) < self.MAX_KINDS:
            kind = self.kinds[key] = Kind(bad.line, bad.error)
        elif kind is None:
            kind = self.others = self.others or Kind(bad.line, bad.error)
        kind.count += 1
        if kind.count > 1 and len(kind.more) < self.SHOW:
            kind.more.append(bad.line)

    def lines(self, path: object) -> list[str]:
        out = []
        for kind in self.kinds.values():
            out.append(f"{path}:{kind.line}: {kind.error}")
            if kind.count > 1:
                out.append(f"  and {kind.count - 1:,} more rows like it: "
                           f"{_lines(kind.more, kind.count - 1)}")
        if self.others is not None:
            out.append(f"  and {self.others.count:,} more bad rows of other kinds: "
                       f"{_lines([self.others.line, *self.others.more], self.others.count)}")
        return out

    def starts_with(self, prefix: str) -> bool:
        """Some kind's error starts with ``prefix``."""
        return any(k.startswith(prefix) for k in self.kinds)


def _lines(shown: list[int], count: int) -> str:
    listed = ", ".join(str(n) for n in shown)
    rest = count - len(shown)
    return f"line{'s' if count > 1 else ''} {listed}" + (f" and {rest:,} more" if rest else "")


@dataclass(frozen=True)
class Pushed:
    """What the second pass pushed: ``known`` of the ``rows`` had ids the dispatcher already
    knew (read by a worker before, or earlier in the same batch): they are not dialled again.
    Advisory, like ``Client.enqueue``: an id pushed but not yet read by a worker counts as
    new."""

    rows: int
    known: int = 0

    @property
    def new(self) -> int:
        return self.rows - self.known


def sniff_separator(header: str) -> str:
    """The separator the header row uses most (outside quotes); a comma when it uses none."""
    counts = dict.fromkeys(SEPARATORS, 0)
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(SEPARATORS, key=counts.__getitem__)  # the first of equals: comma first
    return best if counts[best] else ","


def in_region(text: str, region: str) -> str:
    """A national number as E.164, read as ``region``'s; anything else unchanged (validation
    then says what is wrong with it)."""
    body = text.strip()
    if body.startswith("+") or not any(c.isdigit() for c in body):
        return text
    try:
        number = phonenumbers.parse(body, region)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_possible_number(number):
        return text
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class Rejects:
    """Bad rows, written in the input's own format so they can be fixed and imported again."""

    def __init__(self, path: Path, header: list[str], separator: str = ","):
        self.path = path
        self.header = header
        self.separator = separator
        self.fh: IO[str] | None = None
        self.writer: Any = None

    def write(self, source: list[str] | str) -> None:
        """One bad row as read: CSV cells, or a JSON line."""
        if self.fh is None:
            self.fh = self.path.open("w", encoding="utf-8", newline="",
                                     errors="surrogateescape")
            if isinstance(source, list):
                self.writer = csv.writer(self.fh, delimiter=self.separator)
                self.writer.writerow(self.header)
        if isinstance(source, list):
            self.writer.writerow(source)
        else:
            self.fh.write(source + "\n")

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


def typed_cells(job: dict[str, Any], extra: dict[str, str]) -> str | None:
    """Typed cells (metadata as JSON, max_attempts as an integer); extra columns into
    metadata."""
    if "max_attempts" in job:
        text = job["max_attempts"].strip()
        if not text.lstrip("-").isdigit():
            return f"max_attempts: expected an integer, got {text[:20]!r}"
        job["max_attempts"] = int(text)
    if "metadata" in job:
        try:
            job["metadata"] = json.loads(job["metadata"])
        except ValueError as exc:
            return f"metadata: not valid JSON ({exc})"
        if not isinstance(job["metadata"], dict):
            return "metadata: expected a JSON object"
    if extra:
        meta = job.setdefault("metadata", {})
        clash = sorted(set(meta) & set(extra))
        if clash:
            return f"metadata: {clash[0]!r} is both a column and a key of the metadata column"
        meta.update(extra)
    return None
