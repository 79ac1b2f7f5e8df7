"""itellicoAI conversation events: HMAC-SHA256 over ``body + "." + timestamp`` (hex), fresh
timestamps only, and the ``conversation.ended`` event read into a call's end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from typing import Any

from dispatcher.providers.base import BILLED_FIELD
from dispatcher.providers.dialect import WebhookEnd
from dispatcher.providers.itellico.config import ItellicoConfig

MAX_AGE_S = 300
MAX_BODY = 256 * 1024
END_FIELDS = ("status", "answer_status", "disconnection_reason", "end_reason", "ended_reason",
              "duration_seconds", "ended_at", "external_id", BILLED_FIELD)


def verify_signature(secret: str, body: bytes, timestamp: str, signature: str, now: float,
                     max_age_s: float = MAX_AGE_S) -> str | None:
    """None when genuine, else why not."""
    try:
        ts = float(timestamp)
    except ValueError:
        return "bad timestamp"
    if not math.isfinite(ts):
        return "bad timestamp"
    if abs(now - ts) > max_age_s:
        return "stale timestamp"
    expected = hmac.new(secret.encode(), body + b"." + timestamp.encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.strip().lower()):
        return "bad signature"
    return None


def verify(cfg: ItellicoConfig, secret: str, body: bytes, headers: dict[str, str],
           now: float) -> str | None:
    return verify_signature(secret, body, headers.get(cfg.timestamp_header.lower(), ""),
                            headers.get(cfg.signature_header.lower(), ""), now)


def parse(body: bytes) -> WebhookEnd | None:
    """The call end in a ``conversation.ended`` event; None for other events."""
    if len(body) > MAX_BODY:
        raise ValueError("event too large")
    try:
        event: Any = json.loads(body)
        data = event["data"]
        event_id, etype = str(event["event_id"]), str(event["event_type"])
        call_id = str(data["conversation_uuid"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ValueError("malformed event") from None
    if etype != "conversation.ended":
        return None
    fields = {"id": call_id}
    for field in END_FIELDS:
        if data.get(field) is not None:
            fields[field] = str(data[field])
    return WebhookEnd(event_id, call_id, fields)
