"""The job contract: one pure parser that either returns a Job or names the bad field.

Hand-written rather than a pydantic model: it runs once per job on the hot path, and every
message must say which field is wrong and what was expected, in the producer's terms. It never
raises, whatever the bytes: a producer in any language can write anything to the stream, and
one bad entry must cost one ``invalid`` result, not a worker.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import orjson

from dispatcher.core import codec
from dispatcher.core.jobid import ID_RE, scan_id
from dispatcher.core.numbers import NumberCheck, normalise, quote
from dispatcher.core.regions import is_known_region

Priority = Literal["high", "normal", "low"]
PRIORITIES: tuple[str, ...] = get_args(Priority)
_PRIORITY: dict[str, Priority] = {"high": "high", "normal": "normal", "low": "low"}

NAME_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # provider and campaign names
TEXT_RE = re.compile(r"[^\x00-\x1f\x7f]+")  # from / agent_id / workflow_id: no control chars
ZONE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")
RFC3339_RE = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]"
    r":[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])")
ZONE_MAX_LEN = 64
ZONES_REFUSED = ("localtime", "posixrules")  # files in the zone directory, not IANA zones
ZONE_PREFIXES_REFUSED = ("posix/", "right/")  # duplicate trees (right/ counts leap seconds)
METADATA_MAX_BYTES = 4096
MAX_DEPTH = 32
MAX_ATTEMPTS_CAP = 1000
ERROR_MAX_CHARS = 300
KNOWN_FIELDS = frozenset(
    {"id", "to", "from", "agent_id", "workflow_id", "provider", "metadata",
     "not_before", "expires_at", "max_attempts", "campaign", "priority", "timezone",
     "region", "subject"}
)
_UNKNOWN_NAME_RE = re.compile(r"[A-Za-z0-9_]{1,40}")
_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET_RE = re.compile(r"[\[\]{}]")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True)
class JobRules:
    """What the deployment allows; the defaults are the contract's."""

    number_check: NumberCheck = "valid"
    max_schedule_ahead_s: float = 366 * 86400
    max_payload_bytes: int = 65536
    # True for payloads already validated at intake (a worker re-reading a stored job, at
    # every dial): decoded without the checks they passed (nesting, duplicates, numbers out of
    # range, the metadata's size), and a number already in E.164 is taken as it is, which
    # spares the phone-number library; each field's type and form are still checked
    stored: bool = False


DEFAULT_RULES = JobRules()


@dataclass(frozen=True)
class Job:
    id: str
    to: str  # E.164
    from_: str | None = None
    agent_id: str | None = None
    workflow_id: str | None = None
    provider: str = "default"
    metadata: dict[str, Any] = field(default_factory=dict)
    not_before: float | None = None  # epoch seconds
    expires_at: float | None = None
    max_attempts: int | None = None
    campaign: str | None = None
    priority: Priority = "normal"
    timezone: str | None = None  # IANA name; overrides the zones derived from ``to``
    region: str | None = None  # ISO 3166-2 ("US-FL"); overrides the region derived from ``to``
    subject: str | None = None  # the person or lead, across numbers (per-subject caps)

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
                out[name] = datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")
        if self.max_attempts is not None:
            out["max_attempts"] = self.max_attempts
        if self.campaign is not None:
            out["campaign"] = self.campaign
        if self.priority != "normal":
            out["priority"] = self.priority
        for name in ("timezone", "region", "subject"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@dataclass(frozen=True)
class InvalidJob:
    """A job that must not be dialled, reduced to what its result may safely echo.

    Whatever it is given, it keeps an id only when valid, an error of at most 300 characters,
    metadata only when it is a JSON object of at most 4 KiB, and valid names only: an
    ``invalid`` result can never be large or hold something that is not JSON.
    """

    job_id: str | None
    error: str
    metadata: dict[str, Any] = field(default_factory=dict)
    provider: str = "default"
    campaign: str | None = None

    def __post_init__(self) -> None:
        error = self.error if isinstance(self.error, str) else "job: invalid"
        if len(error) > ERROR_MAX_CHARS:
            error = error[:ERROR_MAX_CHARS - 3] + "..."
        object.__setattr__(self, "error", error)
        object.__setattr__(self, "job_id", _valid(self.job_id, ID_RE, None))
        object.__setattr__(self, "provider", _valid(self.provider, NAME_RE, "default"))
        object.__setattr__(self, "campaign", _valid(self.campaign, NAME_RE, None))
        object.__setattr__(self, "metadata", _small_object(self.metadata))


def _valid(value: Any, pattern: re.Pattern[str], default: Any) -> Any:
    return value if isinstance(value, str) and pattern.fullmatch(value) else default


def _small_object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object of at most 4 KiB, else {}."""
    if not isinstance(value, dict):
        return {}
    try:
        size = len(_COMPACT.encode(value).encode())
    except (ValueError, TypeError, RecursionError):
        return {}
    return value if size <= METADATA_MAX_BYTES else {}


class _Refused(ValueError):
    """A refusal whose message is complete (it already names ``job:`` or the field)."""


def _kind(value: Any) -> str:
    """The JSON type of a parsed value, in the producer's terms."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


# -- before and during JSON parsing -----------------------------------------------------------

def _decode(raw: str | bytes, rules: JobRules) -> str:
    """The payload as text, refused when too large or not UTF-8."""
    limit = rules.max_payload_bytes
    if len(raw) > limit:
        raise _Refused(f"job: payload of at least {len(raw)} bytes, at most {limit} allowed")
    try:
        if isinstance(raw, bytes):
            text, size = raw.decode("utf-8"), len(raw)
        else:
            text, size = raw, len(raw.encode("utf-8"))
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:
        raise _Refused(f"job: not UTF-8 (bad byte or character at position {exc.start})"
                       ) from None
    if size > limit:
        raise _Refused(f"job: payload of {size} bytes, at most {limit} allowed")
    return text


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH without recursing (string contents skipped)."""
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return  # cannot be deeper: the common case costs two C-level counts
    depth = 0
    for match in _BRACKET_RE.finditer(_STRING_RE.sub('""', text)):
        if match.group() in "{[":
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(f"job: nested deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1


def _no_constant(name: str) -> Any:
    raise _Refused(f"job: {name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"job: number {quote(text)} is out of range")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"job: duplicate field {quote(key)}")
            seen.add(key)
    return data


# built once: json.loads / json.dumps with options build a new decoder / encoder per call
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite,
                            object_pairs_hook=_object)
_COMPACT = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _load(text: str) -> Any:
    _check_depth(text)
    value = _quick(text)
    return _strict(text) if value is None else value


def _strict(text: str) -> Any:
    """The standard library's decoder, refusing what JSON allows but a job may not hold."""
    try:
        value = _DECODER.decode(text)
    except _Refused:
        raise
    except (ValueError, RecursionError) as exc:
        raise _Refused(f"job: not valid JSON ({str(exc)[:80]})") from None
    if ("\\ud" in text or "\\uD" in text) and not _encodable(value):
        raise _Refused("job: a \\u escape is a lone UTF-16 surrogate, which is not text")
    return value


def _quick(text: str) -> Any:
    """orjson's reading of a payload, when it is surely the strict decoder's too: no escape
    (a lone surrogate), no float (NaN, out of range, an integer beyond 64 bits), and one key or
    string value read for every two quotes (no key given twice). None: decode strictly."""
    if "\\" in text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    count = codec.strings(value)
    return value if count >= 0 and 2 * count == text.count('"') else None


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeError:
        return False
    return True


# -- one field at a time ----------------------------------------------------------------------

def _id(data: dict[str, Any]) -> str:
    value = data.get("id")
    if value is None:
        raise _Refused("id: required")
    if not isinstance(value, str):
        raise _Refused(f"id: expected a string, got {_kind(value)}")
    if not ID_RE.fullmatch(value):
        raise _Refused(f"id: {quote(value)} is not 1-128 characters of A-Za-z0-9._:-")
    return value


def _unknown(data: dict[str, Any]) -> None:
    unknown = [k for k in data if k not in KNOWN_FIELDS]
    if unknown:
        name = min(unknown)
        if _UNKNOWN_NAME_RE.fullmatch(name):
            raise _Refused(f"{name}: unknown field")
        raise _Refused(f"job: unknown field {quote(name)}")


def _to(data: dict[str, Any], rules: JobRules) -> str:
    value = data.get("to")
    if value is None:
        raise _Refused("to: required")
    if not isinstance(value, str):
        raise _Refused(f"to: expected an E.164 number like +14155550100, got {_kind(value)}")
    if rules.stored and _E164.fullmatch(value):
        return value
    return normalise(value, rules.number_check)


def _text(data: dict[str, Any], name: str, max_len: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len or not TEXT_RE.fullmatch(value):
        raise _Refused(f"{name}: expected a non-empty string of at most {max_len} characters "
                       "without control characters")
    return value


def _name(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        got = quote(value) if isinstance(value, str) else _kind(value)
        raise _Refused(f"{name}: expected 1-64 characters of A-Za-z0-9._:-, got {got}")
    return value


def _metadata(data: dict[str, Any], *, sized: bool = True) -> dict[str, Any]:
    value = data.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Refused(f"metadata: expected a JSON object, got {_kind(value)}")
    if sized:
        size = len(_COMPACT.encode(value).encode())
        if size > METADATA_MAX_BYTES:
            raise _Refused(f"metadata: {size} bytes, at most {METADATA_MAX_BYTES} allowed")
    return value


def _max_attempts(data: dict[str, Any]) -> int | None:
    value = data.get("max_attempts")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not (
            1 <= value <= MAX_ATTEMPTS_CAP):
        raise _Refused(f"max_attempts: expected an integer from 1 to {MAX_ATTEMPTS_CAP}")
    return value


def _priority(data: dict[str, Any]) -> Priority:
    value = data.get("priority")
    if value is None:
        return "normal"
    found = _PRIORITY.get(value) if isinstance(value, str) else None
    if found is not None:
        return found
    got = quote(value) if isinstance(value, str) else _kind(value)
    raise _Refused(f"priority: expected \"high\", \"normal\" or \"low\", got {got}")


@lru_cache(maxsize=1024)
def _zone_ok(name: str) -> bool:
    """True when ``name`` is an IANA zone ``zoneinfo`` can load (bounded cache)."""
    if (len(name) > ZONE_MAX_LEN or not ZONE_RE.fullmatch(name) or name in ZONES_REFUSED
            or name.startswith(ZONE_PREFIXES_REFUSED)):
        return False
    try:
        ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, IsADirectoryError, bad TZif file, ...
        return False
    return True


def _timezone(data: dict[str, Any]) -> str | None:
    value = data.get("timezone")
    if value is None:
        return None
    if not isinstance(value, str) or not _zone_ok(value):
        got = quote(value) if isinstance(value, str) else _kind(value)
        raise _Refused(f"timezone: expected an IANA time zone like America/Chicago, got {got}")
    return value


def _region(data: dict[str, Any]) -> str | None:
    value = data.get("region")
    if value is None:
        return None
    if not isinstance(value, str) or not is_known_region(value):
        got = quote(value) if isinstance(value, str) else _kind(value)
        raise _Refused(f"region: expected an ISO 3166-2 region code like US-FL or GB-SCT "
                       f"(or a country code like GB), got {got}")
    return value


def _time(data: dict[str, Any], name: str, rules: JobRules, now: float) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Refused(f"{name}: expected an RFC 3339 time string, got {_kind(value)}")
    if not RFC3339_RE.fullmatch(value):
        if RFC3339_RE.fullmatch(value + "Z"):
            raise _Refused(f"{name}: {quote(value)} has no time zone offset (add Z or +hh:mm)")
        raise _Refused(f"{name}: {quote(value)} is not an RFC 3339 time "
                       "like 2026-01-01T09:00:00Z")
    try:
        ts = datetime.fromisoformat(value.upper().replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError) as exc:
        raise _Refused(f"{name}: {quote(value)} is not a real time ({exc})") from None
    if ts < 0:
        raise _Refused(f"{name}: {quote(value)} is before 1970-01-01T00:00:00Z")
    if ts > now + rules.max_schedule_ahead_s:
        raise _Refused(f"{name}: {quote(value)} is more than "
                       f"{_duration(rules.max_schedule_ahead_s)} ahead, the scheduling horizon "
                       "(jobs.max_schedule_ahead_s)")
    return ts


def _duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)} days"
    return f"{seconds:g} seconds"


# -- the whole job ----------------------------------------------------------------------------

def _build(data: dict[str, Any], rules: JobRules, now: float) -> Job:
    job_id = _id(data)
    _unknown(data)
    to = _to(data, rules)
    agent_id = _text(data, "agent_id", 256)
    workflow_id = _text(data, "workflow_id", 256)
    if agent_id is not None and workflow_id is not None:
        raise _Refused("workflow_id: cannot be combined with agent_id")
    return Job(
        id=job_id, to=to, from_=_text(data, "from", 64), agent_id=agent_id,
        workflow_id=workflow_id, provider=_name(data, "provider") or "default",
        metadata=_metadata(data, sized=not rules.stored),
        not_before=_time(data, "not_before", rules, now),
        expires_at=_time(data, "expires_at", rules, now), max_attempts=_max_attempts(data),
        campaign=_name(data, "campaign"), priority=_priority(data), timezone=_timezone(data),
        region=_region(data), subject=_text(data, "subject", 128),
    )


def parse_job(raw: str | bytes | None, rules: JobRules = DEFAULT_RULES,
              now: float | None = None) -> Job | InvalidJob:
    """Validate one stream payload. Never raises, whatever ``raw`` holds.

    ``now`` (epoch seconds, default the clock) bounds ``not_before`` / ``expires_at`` by
    ``rules.max_schedule_ahead_s``.
    """
    if raw is None:
        return InvalidJob(None, "job: stream entry has no 'job' field")
    data: Any = None
    try:
        if not isinstance(raw, str | bytes):
            raise _Refused(f"job: expected JSON text, got {type(raw).__name__}")
        text = _decode(raw, rules)
        data = codec.loads_exact(text) if rules.stored else _load(text)
        if not isinstance(data, dict):
            raise _Refused(f"job: expected a JSON object, got {_kind(data)}")
        return _build(data, rules, time.time() if now is None else now)
    except ValueError as exc:  # _Refused, and normalise's ValueError
        error = str(exc)
    except Exception as exc:  # a bug, never the producer's fault: still one invalid result
        error = f"job: could not be parsed (internal error {type(exc).__name__})"
    if not isinstance(data, dict):  # unreadable: the id alone, when it is plain to see
        return InvalidJob(scan_id(raw) if isinstance(raw, str | bytes) else None, error)
    return InvalidJob(data.get("id"), error, data.get("metadata", {}),
                      data.get("provider", "default"), data.get("campaign"))
