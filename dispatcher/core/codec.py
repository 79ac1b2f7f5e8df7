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


def strings(value: Any) -> int:
    """The keys and string values in ``value``, or -1 when it holds a float (scalars are
    looked at inline: most values are)."""
    kind = type(value)
    if kind is dict:
        count, items = len(value), value.values()
    elif kind is list:
        count, items = 0, value
    else:
        return 1 if kind is str else -1 if kind is float else 0
    for item in items:
        kind = type(item)
        if kind is str:
            count += 1
        elif kind is float:
            return -1
        elif kind is dict or kind is list:
            inner = strings(item)
            if inner < 0:
                return -1
            count += inner
    return count


def loads_exact(text: str | bytes) -> Any:
    """``json.loads(text)``, value for value, and quicker when orjson reads it the same: no
    float in it (orjson reads an integer beyond 64 bits as one). Errors are json's."""
    try:
        value = orjson.loads(text)
        exact = strings(value) >= 0
    except (orjson.JSONDecodeError, RecursionError):
        exact = False
    return value if exact else json.loads(text)


def loads(text: str | bytes) -> Any:
    """``json.loads``, quicker, for JSON this process or its scripts wrote."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
