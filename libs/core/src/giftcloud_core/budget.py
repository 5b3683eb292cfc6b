"""A bound on the bytes of instances a process's handlers hold at once.

A consumer runs up to ``prefetch`` handlers together; with large instances that is more
memory than its container has. The bus holds each handler's share of its
:class:`MemoryBudget` (what the event's ``payload_bytes`` announces) while it runs: small
messages still run ``prefetch`` at once, large ones wait, and one larger than the whole
budget runs alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class MemoryBudget:
    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("a memory budget must be positive")
        self.limit = limit
        self.held = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        share = min(max(size, 0), self.limit)
        async with self._changed:
            await self._changed.wait_for(lambda: self.held + share <= self.limit)
            self.held += share
        try:
            yield
        finally:
            async with self._changed:
                self.held -= share
                self._changed.notify_all()
