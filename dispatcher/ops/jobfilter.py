"""Which jobs an operator means: one filter for the console's jobs list and its actions and for
``dispatcher cancel`` / ``dispatcher redrive``. Bad input is refused naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dispatcher.core.model import JobState, Outcome, WaitReason
from dispatcher.store.keys import PRIORITIES

if TYPE_CHECKING:  # the CLI's parsers import this module: nothing of redis at start
    from dispatcher.store.joblist import JobListArgs

# the states the index holds (a job being claimed is "new" for a moment only)
LISTED = (JobState.QUEUED, JobState.DELAYED, JobState.PARKED, JobState.DIALING,
          JobState.TRACKING, JobState.FINISHING, JobState.DONE, "redriven", JobState.ORPHANED)
CANCELLABLE = (JobState.QUEUED, JobState.DELAYED, JobState.PARKED)
REDRIVABLE = ("exhausted", "rejected", "invalid", "expired", "cancelled", "blocked")
FIELDS = ("state", "campaign", "provider", "priority", "wait_reason", "outcome", "since",
          "until")


class FilterError(ValueError):
    """A filter value that is not one of the expected ones; says which and what was expected."""


def parse_time(field: str, text: str, *, naive_utc: bool = False) -> int:
    """Epoch ms of an RFC 3339 time; a time without an offset is UTC only when ``naive_utc``
    (a browser's date-time field has none)."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"{field}: expected a time like 2026-05-01T09:00:00Z, got {text!r}"
                          ) from None
    if dt.tzinfo is None:
        if not naive_utc:
            raise FilterError(f"{field}: {text!r} has no time zone offset")
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _one_of(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise FilterError(f"{field}: expected one of {', '.join(allowed)}, got {value!r}")
    return value


def iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class JobFilter:
    state: str = JobState.QUEUED.value
    campaign: str = ""
    provider: str = ""
    priority: str = ""
    wait_reason: str = ""
    outcome: str = ""
    since_ms: int | None = None
    until_ms: int | None = None
    oldest_first: bool = False

    @classmethod
    def parse(cls, params: Mapping[str, Any], *, naive_utc: bool = False) -> JobFilter:
        """From the console's query or the CLI's options (by FIELDS; empty = any)."""
        def get(name: str) -> str:
            return str(params.get(name) or "").strip()
        outcome = get("outcome")
        state = get("state") or (JobState.DONE.value if outcome else JobState.QUEUED.value)
        _one_of("state", state, tuple(str(s) for s in LISTED))
        if outcome:
            _one_of("outcome", outcome, tuple(o.value for o in Outcome))
            if state != JobState.DONE:
                raise FilterError(f"outcome: only done jobs have one (state is {state!r})")
        if get("priority"):
            _one_of("priority", get("priority"), PRIORITIES)
        if get("wait_reason"):
            _one_of("wait_reason", get("wait_reason"), tuple(w.value for w in WaitReason))
        times = {n: parse_time(n, get(n), naive_utc=naive_utc) if get(n) else None
                 for n in ("since", "until")}
        if times["since"] and times["until"] and times["since"] > times["until"]:
            raise FilterError("until: must not be before since")
        return cls(state=state, campaign=get("campaign")[:200], provider=get("provider")[:200],
                   priority=get("priority"), wait_reason=get("wait_reason"), outcome=outcome,
                   since_ms=times["since"], until_ms=times["until"],
                   oldest_first=get("order") == "oldest")

    def with_state(self, state: str) -> JobFilter:
        return replace(self, state=state)

    def args(self, size: int, cursor: tuple[int, int] | None = None) -> JobListArgs:
        out: JobListArgs = {"state": self.state, "n": size}
        for key, value in (("camp", self.campaign), ("prov", self.provider),
                           ("prio", self.priority), ("wr", self.wait_reason),
                           ("outcome", self.outcome)):
            if value:
                out[key] = value  # type: ignore[literal-required]
        if self.since_ms is not None:
            out["lo"] = self.since_ms
        if self.until_ms is not None:
            out["hi"] = self.until_ms
        if self.oldest_first:
            out["asc"] = True
        if cursor:
            out["cur"] = {"s": cursor[0], "k": cursor[1]}
        return out

    def query(self) -> dict[str, str]:
        """The filter as the console's query parameters (empty ones left out)."""
        params = {"state": self.state, "campaign": self.campaign, "provider": self.provider,
             "priority": self.priority, "wait_reason": self.wait_reason,
             "outcome": self.outcome, "since": iso(self.since_ms), "until": iso(self.until_ms),
             "order": "oldest" if self.oldest_first else ""}
        return {k: v for k, v in params.items() if v}

    def describe(self) -> str:
        """In words, for a confirmation: "queued jobs of campaign spring, provider p"."""
        parts = [f"{k} {v}" for k, v in (("campaign", self.campaign),
                                           ("provider", self.provider),
                                           ("priority", self.priority),
                                           ("waiting for", self.wait_reason),
                                           ("outcome", self.outcome)) if v]
        if self.since_ms is not None:
            parts.append(f"since {iso(self.since_ms)} UTC")
        if self.until_ms is not None:
            parts.append(f"until {iso(self.until_ms)} UTC")
        return f"{self.state} jobs" + (" of " + ", ".join(parts) if parts else "")
