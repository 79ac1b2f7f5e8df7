"""The consent ledger's vocabulary: consent records and revocations per number, their stored
form (one JSON object per event, oldest first, the history never rewritten), and the rule the
grant script applies (``covering`` is the model it is tested against).

A consent covers a campaign when its scope is ``*`` or the campaign's name, it was given at or
before the moment of dialling, it has not expired, and no revocation came at or after it (and
at or before that moment). A consent given after a revocation counts again.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

ANY_CAMPAIGN = "*"
_SCOPE_RE = re.compile(r"\*|[A-Za-z0-9._:-]{1,64}")
MAX_TEXT = 256  # source and via: a form, a call, a letter; not a document


class Kind(enum.StrEnum):
    CONSENT = "c"
    REVOKE = "r"


@dataclass(frozen=True)
class Consent:
    scope: str
    given_ms: int
    source: str
    expires_ms: int  # 0: never
    recorded_ms: int = 0
    id: str = ""

    def stored(self) -> dict[str, Any]:
        return {"k": Kind.CONSENT.value, "id": self.id or new_id(), "scope": self.scope,
                "given": self.given_ms, "src": self.source, "exp": self.expires_ms,
                "rec": self.recorded_ms}

    def covers(self, campaign: str, now_ms: int) -> bool:
        return (self.scope in (ANY_CAMPAIGN, campaign) and self.given_ms <= now_ms
                and (self.expires_ms == 0 or self.expires_ms > now_ms))


@dataclass(frozen=True)
class Revocation:
    revoked_ms: int
    via: str
    recorded_ms: int = 0
    id: str = ""

    def stored(self) -> dict[str, Any]:
        return {"k": Kind.REVOKE.value, "id": self.id or new_id(), "at": self.revoked_ms,
                "via": self.via, "rec": self.recorded_ms}


Event = Consent | Revocation


def new_id() -> str:
    """An event's id: the ledger script skips an id it holds (a retried call adds nothing)."""
    return uuid.uuid4().hex


def from_stored(stored: dict[str, Any]) -> Event:
    if stored.get("k") == Kind.REVOKE.value:
        return Revocation(int(stored.get("at") or 0), str(stored.get("via") or ""),
                          int(stored.get("rec") or 0), str(stored.get("id") or ""))
    return Consent(str(stored.get("scope") or ANY_CAMPAIGN), int(stored.get("given") or 0),
                   str(stored.get("src") or ""), int(stored.get("exp") or 0),
                   int(stored.get("rec") or 0), str(stored.get("id") or ""))


def covering(events: list[Event], campaign: str, now_ms: int) -> Consent | None:
    """The consent that lets ``campaign`` call this number at ``now_ms``, if any."""
    revoked = [e.revoked_ms for e in events if isinstance(e, Revocation)
               and e.revoked_ms <= now_ms]
    for event in events:
        if isinstance(event, Consent) and event.covers(campaign, now_ms) and not any(
                r >= event.given_ms for r in revoked):
            return event
    return None


# -- reading what an operator typed -----------------------------------------------------------
def parse_time(text: str, name: str) -> int:
    """An ISO 8601 date or date-time as epoch ms; a time without an offset is UTC. Raises
    ValueError naming the field."""
    stripped = text.strip()
    try:
        if len(stripped) == 10:
            day = date.fromisoformat(stripped)
            return round(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: expected an ISO 8601 date or time such as 2026-03-01 or "
                         f"2026-03-01T09:30:00Z, got {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)


def check_scope(text: str) -> str:
    if not _SCOPE_RE.fullmatch(text):
        raise ValueError(f"scope: expected '*' or a campaign name (1-64 of A-Z a-z 0-9 . _ : -), "
                         f"got {text!r}")
    return text


def check_text(text: str, name: str) -> str:
    stripped = text.strip()
    if not stripped or len(stripped) > MAX_TEXT or any(ord(c) < 32 for c in stripped):
        raise ValueError(f"{name}: expected 1-{MAX_TEXT} characters without control "
                         f"characters, got {text[:40]!r}")
    return stripped
