"""The Lua scripts, loaded by name from ``dispatcher/lua/``.

Each script file starts with a header saying what it takes and returns, and may pull shared
parts from ``lua/lib/`` with a first line ``--! include core place ...``. Every script takes
named arguments as one JSON object and answers JSON, so nothing is addressed by position.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, get_args

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from dispatcher.core import codec
from dispatcher.store.protocol import ScriptName

NAMES: tuple[ScriptName, ...] = get_args(ScriptName)


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
        self.client = client
        self.anchor = anchor
        self.prefix = prefix
        self.reply_ttl_ms = REPLY_TTL_MS
        self._scripts: dict[ScriptName, AsyncScript] = {
            n: client.register_script(source(n)) for n in NAMES}

    async def call(self, name: ScriptName, now_ms: int | None = None, **args: Any) -> Any:
        payload: dict[str, Any] = {"p": self.prefix, **args}
        if "rid" in args:
            payload["reply_ms"] = self.reply_ttl_ms
        if now_ms is not None:
            payload["now"] = now_ms
        raw = await self._scripts[name](keys=[self.anchor], args=[codec.dumpb(payload)])
        return codec.loads(raw)

    async def call_replicated(self, name: ScriptName, replicas: int, timeout_ms: int, **args: Any
                              ) -> tuple[Any, int]:
        """``call``, then WAIT for ``replicas`` on the same connection (WAIT counts the
        replicas that have this connection's writes), in one round trip. Returns the reply
        and how many replicas acknowledged it."""
        pipe = self.client.pipeline(transaction=False)
        await self._scripts[name](keys=[self.anchor], args=[codec.dumpb({"p": self.prefix,
                                                                         **args})], client=pipe)
        pipe.wait(replicas, timeout_ms)
        raw, acked = await pipe.execute()
        return codec.loads(raw), int(acked)
