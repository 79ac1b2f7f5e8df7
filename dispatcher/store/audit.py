"""The audit trail: one entry per operator action, in a stream trimmed to a bounded length."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from dispatcher.store import keys as K

AUDIT_MAX = 100_000  # about 20 MB at ~200 bytes an entry; trimmed approximately


class AuditLog:
    r: aioredis.Redis
    k: K.Keys

    async def audit_add(self, fields: dict[str, str]) -> str:
        """Append one entry (its time is Redis's: the stream id); returns the entry id."""
        entry: Any = await self.r.xadd(self.k.audit, fields,  # type: ignore[arg-type]
                                       maxlen=AUDIT_MAX, approximate=True)
        return str(entry)

    async def audit_read(self, limit: int) -> list[tuple[str, dict[str, str]]]:
        """The latest ``limit`` entries, newest first: (stream id, fields)."""
        rows: Any = await self.r.xrevrange(self.k.audit, count=limit)
        return [(str(i), {str(k): str(v) for k, v in f.items()}) for i, f in rows]
