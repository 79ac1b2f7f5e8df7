"""The operator console's log-ins, kept in Redis so every console process accepts them and
a log-out ends them everywhere."""

from __future__ import annotations

import hashlib
import secrets

import redis.asyncio as aioredis

from dispatcher.store.keys import Keys


class ConsoleSessions:
    """Each log-in is one key under the namespace holding its token's identity, expiring
    ``ttl_s`` after the log-in. The key names a digest of the session id, so reading Redis
    yields no cookie that logs in."""

    def __init__(self, client: aioredis.Redis, keys: Keys, ttl_s: float):
        self.r = client
        self.keys = keys
        self.ttl_ms = round(ttl_s * 1000)

    def _key(self, session_id: str) -> str:
        digest = hashlib.sha256(f"dispatcher-console:session:{session_id}".encode()).hexdigest()
        return self.keys.console_session(digest)

    async def open(self, ident: str) -> str:
        """A new session for the token known as ``ident``; its id goes in the cookie."""
        session_id = secrets.token_urlsafe(32)
        await self.r.set(self._key(session_id), ident, px=self.ttl_ms)
        return session_id

    async def ident(self, session_id: str) -> str | None:
        """The token identity of a live session; None once it expired or was closed."""
        value = await self.r.get(self._key(session_id))
        return None if value is None else str(value)

    async def close(self, session_id: str) -> None:
        await self.r.delete(self._key(session_id))
