"""The do-not-call list: numbers a person asked never to be called on, checked by the grant
script at the moment of dialling. Entries are E.164 numbers, or their SHA-256 when
``policy.dnc_hashed`` is on (so the list itself holds no phone numbers).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from dispatcher.core.numbers import dnc_key, normalise


@dataclass(frozen=True)
class Line:
    """One line of an import: its key, or why it was refused."""

    number: int
    key: str | None
    error: str | None = None


def key_of(text: str, hashed: bool) -> str:
    """The list's entry for a number as written (raises ValueError naming the problem)."""
    try:
        return dnc_key(normalise(text.strip(), "possible"), hashed)
    except ValueError as exc:
        raise ValueError(str(exc).replace("to: ", "number: ", 1)) from None


def as_of_ms(text: str, today: date) -> int:
    """A registry copy's as-of date (``YYYY-MM-DD``, not in the future) as epoch ms (midnight
    UTC); ValueError naming --as-of."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--as-of: expected the list's date as YYYY-MM-DD, got {text!r}") from None
    if day > today:
        raise ValueError(f"--as-of: {day} is in the future")
    return round(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def read_file(path: Path, hashed: bool) -> Iterator[Line]:
    """Numbers from a file: one a line, or a CSV with a ``number`` column. Streamed."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        first = fh.readline()
        rest: Iterable[str] = fh
        if "," in first or first.strip().lower() == "number":
            header = next(csv.reader(io.StringIO(first)))
            if "number" not in [h.strip().lower() for h in header]:
                raise ValueError(f"{path}: a CSV needs a 'number' column (found {header})")
            col = [h.strip().lower() for h in header].index("number")
            for lineno, row in enumerate(csv.reader(rest), 2):
                if row and len(row) > col and row[col].strip():
                    yield _line(lineno, row[col], hashed)
            return
        if first.strip():
            yield _line(1, first, hashed)
        for lineno, text in enumerate(rest, 2):
            if text.strip():
                yield _line(lineno, text, hashed)


def _line(lineno: int, text: str, hashed: bool) -> Line:
    try:
        return Line(lineno, key_of(text, hashed))
    except ValueError as exc:
        return Line(lineno, None, str(exc))
