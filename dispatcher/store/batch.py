"""Coalescing: many small writes of one kind become one script call.

While one call is on its way to Redis, the items that arrive meanwhile wait and go together
in the next, so the number of round trips falls as the load rises (and an idle worker waits
for nobody: a lone item is sent at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(self, send: Callable[[list[T]], Awaitable[Sequence[R]]], max_items: int = 500):
        self._send = send
        self._max = max_items
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._busy = False

    async def submit(self, item: T) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:self._max], self._pending[self._max:]
                try:
                    out = await self._send([item for item, _ in batch])
                except BaseException as exc:  # every waiter learns of it (and may retry)
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, fut), res in zip(batch, out, strict=True):
                    if not fut.done():
                        fut.set_result(res)
        finally:
            self._busy = False
