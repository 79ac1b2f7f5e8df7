"""The audit trail: who did what to which target, and when, from the console or the CLI.

Every operator action records one entry: the time (Redis's clock, the entry's id), the
action, its target (a provider, campaign, job id or caller ID; never a phone number: a
number an operator added or forgot is counted, not named), who (the console token's label,
or ``cli@HOST``) and a short detail (what changed). The stream keeps the latest
``AUDIT_MAX`` entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dispatcher.ops.explain import clock
from dispatcher.ops.limits import cli_label
from dispatcher.store.audit import AuditLog

DETAIL_MAX = 300


class Action(StrEnum):
    CAMPAIGN_PAUSE = "campaign.pause"
    CAMPAIGN_RESUME = "campaign.resume"
    CAMPAIGN_CANCEL = "campaign.cancel"
    PROVIDER_RESUME = "provider.resume"
    JOB_CANCEL = "job.cancel"
    REDRIVE = "redrive"
    LIMITS_SET = "limits.set"
    LIMITS_RESET = "limits.reset"
    CALLERID_REST = "callerid.rest"
    CALLERID_RESTORE = "callerid.restore"
    DNC_ADD = "dnc.add"
    DNC_REMOVE = "dnc.remove"
    DNC_IMPORT = "dnc.import"
    CONSENT_ADD = "consent.add"
    CONSENT_REVOKE = "consent.revoke"
    CONSENT_IMPORT = "consent.import"
    FORGET = "forget"
    REINDEX = "reindex"


@dataclass(frozen=True)
class Entry:
    at_ms: int
    action: str  # as stored: an entry written by a newer version may name an action we lack
    target: str
    by: str
    via: str  # "console" or "cli"
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"at_ms": self.at_ms, "action": self.action, "target": self.target,
                "by": self.by, "via": self.via, "detail": self.detail}


def cli_by() -> str:
    """Who an action from the command line is recorded as."""
    return cli_label()


async def record(store: AuditLog, action: Action, target: str, by: str, *, via: str = "cli",
                 detail: str = "") -> None:
    await store.audit_add({"action": action.value, "target": target[:200], "by": by[:100],
                           "via": via, "detail": detail[:DETAIL_MAX]})


async def latest(store: AuditLog, limit: int) -> list[Entry]:
    """Newest first."""
    return [Entry(int(i.split("-")[0]), f.get("action", ""), f.get("target", ""),
                  f.get("by", ""), f.get("via", ""), f.get("detail", ""))
            for i, f in await store.audit_read(limit)]


def render(entries: list[Entry]) -> str:
    if not entries:
        return "no operator action recorded"
    lines = [f"{clock(e.at_ms)}  {e.action:<17} {e.target or '-':<24} {e.by}"
             + (f"  ({e.detail})" if e.detail else "") for e in entries]
    return "\n".join(lines)
