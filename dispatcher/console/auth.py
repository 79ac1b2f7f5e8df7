"""Who may act through the console.

Reading needs nothing. Acting (resume a provider; pause, resume or cancel a campaign) needs a
token from ``console.token_file``; seeing numbers unmasked needs a token that grants it.

The token file holds one token a line, each followed by what it grants::

    # token                              grants
    3f9c1d0e6b7a4c2d9e8f7a6b5c4d3e2f     actions
    a1b2c3d4e5f60718293a4b5c6d7e8f90     actions numbers label=alice

A token alone grants ``actions``. ``label=NAME`` (optional) names whoever holds the token
in the logs and the audit trail; without one a token is named by a digest of itself. Blank
lines and ``#`` comments are ignored; a token is at least 16 characters. The file is read
again when it changes, so removing a line revokes it.

A browser logs in once (``POST /login``) and then carries a random session id in a cookie
(HttpOnly, SameSite=Strict). The session lives in Redis (``console.session_ttl_s``), so any
number of console processes accept it, and log-out deletes it. Every action is a POST that
also carries a CSRF value derived from the session id, and is refused when the Origin or
Sec-Fetch-Site headers say it came from another site. Scripts may send
``Authorization: Bearer <token>`` instead (no cookie, so no CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from dispatcher.config.settings import ConfigError

GRANTS = frozenset({"actions", "numbers"})
LABEL = re.compile(r"[A-Za-z0-9._@-]{1,40}")
MIN_TOKEN = 16
COOKIE = "dispatcher_console"


def _digest(purpose: str, token: str) -> str:
    return hashlib.sha256(f"dispatcher-console:{purpose}:{token}".encode()).hexdigest()


@dataclass(frozen=True)
class Grant:
    """What a token allows. ``label`` names it in logs and the audit trail without
    revealing it (its ``label=`` word, else a digest of the token)."""

    label: str
    actions: bool
    numbers: bool
    ident: str  # what a session records of its token: found again in the file, or revoked


def parse_tokens(text: str, source: str = "console.token_file") -> list[tuple[str, Grant]]:
    """(token, grant) per line; ConfigError naming the line when one is malformed."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        labels = [w for w in words[1:] if w.startswith("label=")]
        token, grants = words[0], set(words[1:]) - set(labels) or {"actions"}
        label = labels[-1][6:] if labels else _digest("label", token)[:8]
        if labels and (len(labels) > 1 or not LABEL.fullmatch(label)):
            raise ConfigError(f"{source}:{lineno}: one label=NAME per token, NAME 1-40 letters, "
                              f"digits or . _ @ -")
        if len(token) < MIN_TOKEN:
            raise ConfigError(f"{source}:{lineno}: a token must be at least {MIN_TOKEN} characters")
        if not grants <= GRANTS:
            raise ConfigError(f"{source}:{lineno}: unknown grant {sorted(grants - GRANTS)[0]!r} "
                              f"(expected: {', '.join(sorted(GRANTS))})")
        out.append((token, Grant(label=label,
                                 actions="actions" in grants, numbers="numbers" in grants,
                                 ident=_digest("ident", token))))
    return out


class Tokens:
    """The token file, re-read when its modification time changes."""

    def __init__(self, path: str | None):
        self.path = path
        self._mtime: float | None = None
        self._grants: list[tuple[str, Grant]] = []
        if path:
            self._load()

    @property
    def enabled(self) -> bool:
        return bool(self.path)

    def _load(self) -> None:
        assert self.path
        try:
            mtime = os.stat(self.path).st_mtime
            if mtime == self._mtime:
                return
            with open(self.path, encoding="utf-8") as fh:
                self._grants = parse_tokens(fh.read(), self.path)
            self._mtime = mtime
        except OSError as exc:
            raise ConfigError(f"console.token_file: cannot read {self.path}: "
                              f"{exc.strerror}") from None

    def _current(self) -> list[tuple[str, Grant]]:
        if not self.path:
            return []
        try:
            self._load()
        except ConfigError:
            return []  # a file removed or broken while running grants nothing
        return self._grants

    def _find(self, value: str, of: Callable[[str, Grant], str]) -> Grant | None:
        found = None
        for known, grant in self._current():  # every line compared, found or not
            if hmac.compare_digest(of(known, grant).encode(), value.encode()):
                found = grant
        return found

    def by_token(self, token: str) -> Grant | None:
        return self._find(token, lambda known, _: known)

    def by_ident(self, ident: str) -> Grant | None:
        """The grant of the token a session was opened with, while its line is in the file."""
        return self._find(ident, lambda _, grant: grant.ident)


def csrf_of(session_id: str) -> str:
    return _digest("csrf", session_id)[:32]
