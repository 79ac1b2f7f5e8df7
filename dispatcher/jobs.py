"""The job contract (DESIGN §3.1): one pure parser that either returns a Job or names the bad field.

Hand-written rather than a pydantic model: it runs once per job on the hot path, and every
message must say which field is wrong and what was expected, in the producer's terms.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
METADATA_MAX_BYTES = 4096
KNOWN_FIELDS = frozenset(
    {"id", "to", "from", "agent_id", "workflow_id", "provider", "metadata",
     "not_before", "expires_at", "max_attempts"}
)


@dataclass(frozen=True)
class Job:
    id: str
    to: str
    from_: str | None = None
    agent_id: str | None = None
    workflow_id: str | None = None
    provider: str = "default"
    metadata: dict[str, Any] = field(default_factory=dict)
    not_before: float | None = None  # epoch seconds
    expires_at: float | None = None
    max_attempts: int | None = None

    def to_wire(self) -> dict[str, Any]:
        """The job as a producer writes it (inverse of ``parse_job``)."""
        out: dict[str, Any] = {"id": self.id, "to": self.to}
        if self.from_ is not None:
            out["from"] = self.from_
        for name in ("agent_id", "workflow_id"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.provider != "default":
            out["provider"] = self.provider
        if self.metadata:
            out["metadata"] = self.metadata
        for name in ("not_before", "expires_at"):
            value = getattr(self, name)
            if value is not None:
                out[name] = datetime.fromtimestamp(value).astimezone().isoformat()
        if self.max_attempts is not None:
            out["max_attempts"] = self.max_attempts
        return out


@dataclass(frozen=True)
class InvalidJob:
    """A job that must not be dialled; ``job_id`` is the producer's id when it could be read."""

    job_id: str | None
    error: str
    metadata: dict[str, Any] = field(default_factory=dict)
    provider: str = "default"


def _time(value: Any, name: str) -> float:
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected an RFC 3339 time string")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not an RFC 3339 time") from None
    if dt.tzinfo is None:
        raise ValueError(f"{name}: {value!r} has no time zone offset (RFC 3339 needs one)")
    return dt.timestamp()


def _opt_str(d: dict[str, Any], name: str, max_len: int = 256) -> str | None:
    value = d.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ValueError(f"{name}: expected a non-empty string of at most {max_len} characters")
    return value


def _build(d: dict[str, Any]) -> Job:
    unknown = sorted(set(d) - KNOWN_FIELDS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field")
    to = d.get("to")
    if to is None:
        raise ValueError("to: required")
    if not isinstance(to, str) or not E164_RE.match(to):
        raise ValueError("to: expected an E.164 number like +14155550100")
    agent_id = _opt_str(d, "agent_id")
    workflow_id = _opt_str(d, "workflow_id")
    if agent_id and workflow_id:
        raise ValueError("workflow_id: cannot be combined with agent_id")
    provider = _opt_str(d, "provider", 64) or "default"
    metadata = d.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise ValueError("metadata: expected a JSON object")
    size = len(json.dumps(metadata, separators=(",", ":")).encode())
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"metadata: {size} bytes, at most {METADATA_MAX_BYTES} allowed")
    max_attempts = d.get("max_attempts")
    if max_attempts is not None and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
    ):
        raise ValueError("max_attempts: expected an integer >= 1")
    nb = _time(d["not_before"], "not_before") if d.get("not_before") is not None else None
    ex = _time(d["expires_at"], "expires_at") if d.get("expires_at") is not None else None
    return Job(
        id=d["id"], to=to, from_=_opt_str(d, "from", 64), agent_id=agent_id,
        workflow_id=workflow_id, provider=provider, metadata=metadata,
        not_before=nb, expires_at=ex, max_attempts=max_attempts,
    )


def parse_job(raw: str | bytes | None) -> Job | InvalidJob:
    """Validate one stream payload. Never raises."""
    if raw is None:
        return InvalidJob(None, "job: stream entry has no 'job' field")
    try:
        d = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return InvalidJob(None, f"job: not valid JSON ({exc})")
    if not isinstance(d, dict):
        return InvalidJob(None, "job: expected a JSON object")
    job_id = d.get("id")
    if job_id is None:
        return InvalidJob(None, "id: required")
    if not isinstance(job_id, str) or not ID_RE.match(job_id):
        return InvalidJob(None, "id: expected 1-128 characters of A-Za-z0-9._:-")
    meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
    prov = d.get("provider") if isinstance(d.get("provider"), str) else "default"
    try:
        return _build(d)
    except ValueError as exc:
        return InvalidJob(job_id, str(exc), meta or {}, prov or "default")
