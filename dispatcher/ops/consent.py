"""Consent records from what an operator typed or a CSV file (``number, source, given_at,
scope, expires_at``), each row checked on its own with its line number, and a number's history
in words."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dispatcher.core.consent import (
    ANY_CAMPAIGN,
    Consent,
    Event,
    Revocation,
    check_scope,
    check_text,
    new_id,
    parse_time,
)
from dispatcher.core.model import iso
from dispatcher.ops.dnc import key_of

COLUMNS = ("number", "source", "given_at", "scope", "expires_at")
REQUIRED = ("number", "source", "given_at")


@dataclass(frozen=True)
class Row:
    """One line of an import: the number's key and its consent, or why it was refused."""

    line: int
    key: str | None
    consent: Consent | None
    error: str | None = None


def consent(source: str, *, scope: str | None, given: str | None, expires: str | None,
            now_ms: int) -> Consent:
    """A consent from its parts as typed (raises ValueError naming the field)."""
    given_ms = parse_time(given, "given_at") if given else now_ms
    exp = parse_time(expires, "expires_at") if expires else 0
    if exp and exp <= given_ms:
        raise ValueError(f"expires_at: {expires} is not after given_at")
    return Consent(check_scope(scope or ANY_CAMPAIGN), given_ms, check_text(source, "source"),
                   exp, now_ms, new_id())


def revocation(via: str, now_ms: int, at: str | None = None) -> Revocation:
    return Revocation(parse_time(at, "revoked_at") if at else now_ms, check_text(via, "via"),
                      now_ms, new_id())


def read_csv(path: Path, hashed: bool, now_ms: int) -> Iterator[Row]:
    """Rows of a consent CSV with a header naming its columns (any order). Streamed."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        unknown = [h for h in header if h not in COLUMNS]
        if missing or unknown:
            raise ValueError(f"{path}:1: the header needs the columns {', '.join(REQUIRED)} "
                             f"(and may have scope, expires_at); missing {missing or 'none'}, "
                             f"unknown {unknown or 'none'}")
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            yield _row(reader.line_num, dict(zip(header, row, strict=False)), len(row),
                       len(header), hashed, now_ms)


def _row(line: int, fields: dict[str, str], width: int, expected: int, hashed: bool,
         now_ms: int) -> Row:
    if width != expected:
        return Row(line, None, None, f"expected {expected} fields, found {width}")
    try:
        key = key_of(fields["number"], hashed)
        record = consent(fields["source"], scope=fields.get("scope") or None,
                    given=fields["given_at"] or _missing("given_at"),
                    expires=fields.get("expires_at") or None, now_ms=now_ms)
    except ValueError as exc:
        return Row(line, None, None, str(exc))
    return Row(line, key, record)


def _missing(name: str) -> str:
    raise ValueError(f"{name}: required, found an empty field")


def history_lines(events: list[Event]) -> list[str]:
    """A number's ledger, oldest first, one line an event."""
    out = []
    for event in events:
        if isinstance(event, Consent):
            until = f", expires {iso(event.expires_ms)}" if event.expires_ms else ""
            out.append(f"{iso(event.given_ms)}  consent for {_scope(event.scope)} "
                       f"(source: {event.source}{until}; recorded {iso(event.recorded_ms)})")
        else:
            out.append(f"{iso(event.revoked_ms)}  revoked (via: {event.via}; recorded "
                       f"{iso(event.recorded_ms)})")
    return out


def _scope(scope: str) -> str:
    return "every campaign" if scope == ANY_CAMPAIGN else f"campaign {scope}"
