"""Reading a job's id from a payload the strict parser refused.

A producer waits on its job's id: a payload refused for one bad value (a duplicate key, NaN,
a lone surrogate, nesting, its size) must still be answered by that id when the id itself is
plain to see. The scan is bounded (the first ``SCAN_CHARS`` characters), linear, and tolerant
of what follows the id, but it only answers when exactly one valid id is given as a string to
the top-level key ``id``: two different ids, an ``id`` that is not a valid id string, or a
payload that is not an object give None (the result then says ``job_id: null``).
"""

from __future__ import annotations

import json
import re

SCAN_CHARS = 65536
ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# a string (closed or cut off: the optional closing quote keeps the scan linear) or structure
_TOKEN_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(")?|[{}\[\]:,]', re.DOTALL)
_KEY, _COLON, _VALUE, _OTHER = range(4)


def _unquote(token: str) -> str | None:
    try:
        value = json.loads(token)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


class _Scan:
    """The top-level object's keys and values, one token at a time."""

    def __init__(self, text: str):
        self.text = text
        self.found: set[str | None] = set()  # None: an "id" that is not a valid id string
        self.depth, self.phase, self.key, self.colon_end = 0, _OTHER, "", 0

    def not_a_string(self) -> None:
        """What comes now is not the string an "id" key is waiting for."""
        if self.depth == 1 and self.phase == _VALUE and self.key == "id":
            self.found.add(None)

    def token(self, match: re.Match[str]) -> bool:
        """Take one token; False once the top-level object is closed."""
        tok = match.group()
        if tok in "{[":
            self.not_a_string()
            self.depth += 1
            self.phase = _KEY if self.depth == 1 else self.phase
        elif tok in "}]":
            self.not_a_string()
            self.depth -= 1
            self.phase = _OTHER
            return self.depth > 0
        elif self.depth == 1:
            self._top(match, tok)
        return True

    def _top(self, match: re.Match[str], tok: str) -> None:
        if tok == ",":
            self.not_a_string()  # a number or literal
            self.phase = _KEY
        elif tok == ":":
            self.phase = _VALUE if self.phase == _COLON else _OTHER
            self.colon_end = match.end()
        elif self.phase == _KEY:  # a string where a key is due
            self.key = (_unquote(tok) or "") if match.group(1) else ""
            self.phase = _COLON
        else:
            if self.phase == _VALUE and self.key == "id":
                value = _unquote(tok) if match.group(1) else None
                adjacent = not self.text[self.colon_end:match.start()].strip()
                self.found.add(value if adjacent and value and ID_RE.fullmatch(value) else None)
            self.phase = _OTHER


def scan_id(raw: str | bytes) -> str | None:
    """The one valid top-level ``id`` string in ``raw``'s first ``SCAN_CHARS``, else None."""
    text = raw[:SCAN_CHARS].decode("utf-8", "replace") if isinstance(raw, bytes) \
        else raw[:SCAN_CHARS]
    start = len(text) - len(text.lstrip(" \t\r\n\ufeff"))
    if not text.startswith("{", start):
        return None
    scan = _Scan(text)
    for match in _TOKEN_RE.finditer(text, start):
        if not scan.token(match):
            break
    else:
        scan.not_a_string()  # cut off right after "id":
    return scan.found.pop() if len(scan.found) == 1 else None
