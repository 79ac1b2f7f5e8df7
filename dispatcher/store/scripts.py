"""The Lua scripts, loaded by name from ``dispatcher/lua/``.

Each script file starts with a header saying what it takes and returns, and may pull shared
parts from ``lua/lib/`` with a first line ``--! include core place ...``. Every script takes
named arguments as one JSON object and answers JSON, so nothing is addressed by position.
"""

from __future__ import annotations

import enum
from functools import cache
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from dispatcher.core import codec

NAMES = ("admit", "bill", "campaign", "cancel", "cidstat", "claimfin", "cooldown", "defer",
         "finish", "grant", "forget", "halt", "heartbeat", "ingest", "limits", "observe", "peek",
         "promote", "push", "redrive", "regrant", "resume", "revisit", "shrink", "sweep", "track",
         "visit", "webhook")


class Ingested(enum.StrEnum):
    """What INGEST did with one stream entry."""

    OK = "ok"              # placed: ready, delayed or parked
    DUPLICATE = "dup"      # another entry carries this id
    DONE = "done"          # the id already has a result
    AGAIN = "again"        # this very entry was ingested before
    FINISH = "fin"         # a result must be written now (cancelled, invalid, expired, ...)


class Why(enum.StrEnum):
    """Why a grant call gave fewer jobs than asked."""

    OK = "ok"
    EMPTY = "empty"
    RATE = "rate"
    COOLDOWN = "cooldown"
    SLOT = "slot"
    HALTED = "halted"


class CancelResult(enum.StrEnum):
    CANCELLED = "cancelled"
    AHEAD = "ahead"
    UNKNOWN = "unknown"
    DONE = "done"
    TOO_LATE = "too_late"


def _read(name: str) -> str:
    return (resources.files("dispatcher") / "lua" / name).read_text(encoding="utf-8")


@cache
def source(name: str) -> str:
    """The script's full text with its includes inlined (libraries first, in order)."""
    text = _read(f"{name}.lua")
    first, _, rest = text.partition("\n")
    if not first.startswith("--! include "):
        return text
    libs = [_read(f"lib/{lib}.lua") for lib in first.split()[2:]]
    return "\n".join([*libs, rest])


def as_list(value: Any) -> list[Any]:
    """Lua's JSON encoder writes an empty array as ``{}``."""
    return value if isinstance(value, list) else []


# How long a granting call's reply is kept for a replay (see lua/lib/core.lua): longer than
# redis-py's retries of a call whose reply was lost.
REPLY_TTL_MS = 5000


class Scripts:
    """One registered script per name; ``call`` sends named args and decodes the reply."""

    def __init__(self, client: aioredis.Redis, anchor: str, prefix: str):
        self.anchor = anchor
        self.prefix = prefix
        self.reply_ttl_ms = REPLY_TTL_MS
        self._scripts: dict[str, AsyncScript] = {
            n: client.register_script(source(n)) for n in NAMES}

    async def call(self, name: str, now_ms: int | None = None, **args: Any) -> Any:
        payload: dict[str, Any] = {"p": self.prefix, **args}
        if "rid" in args:
            payload["reply_ms"] = self.reply_ttl_ms
        if now_ms is not None:
            payload["now"] = now_ms
        raw = await self._scripts[name](keys=[self.anchor], args=[codec.dumpb(payload)])
        return codec.loads(raw)
