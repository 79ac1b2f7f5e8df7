"""JSON on the per-job path (script arguments and replies, results, request bodies):
orjson, several times quicker than the standard library, with the standard library as the
fallback for what orjson refuses, so whatever encoded before still does.

What orjson refuses and the standard library takes: integers beyond 64 bits and non-string
keys (written), text with lone surrogates, NaN and Infinity literals (read). Differences: text
is written as UTF-8 rather than ``\\u`` escapes (the same JSON value); a NaN or infinite
float is written as ``null`` (the standard library writes ``NaN``, which is not JSON); an
integer beyond 64 bits is read as a float. So ``loads`` reads what this process and its
scripts wrote (Lua numbers are doubles anyway), not what a provider or a producer sends.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_COMPACT = json.JSONEncoder(separators=(",", ":"))


def dumps(value: Any) -> str:
    """Compact JSON text."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _COMPACT.encode(value)


def dumpb(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes (what Redis and a socket take)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _COMPACT.encode(value).encode()  # ASCII: non-ASCII text is escaped


def loads(text: str | bytes) -> Any:
    """``json.loads``, quicker, for JSON this process or its scripts wrote."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
