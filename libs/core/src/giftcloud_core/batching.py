"""Micro-batching: many concurrent handlers, one database transaction.

A bus consumer runs up to ``prefetch`` handlers at once; each hands its row to a
:class:`Batcher` and waits. The batcher writes what has gathered (up to ``max_items``,
or after ``max_delay`` seconds) in one call, then wakes every waiter with the outcome,
so a message is still acknowledged only after its own row is committed, and a failed
write fails (and redelivers) each of its messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        *,
        max_items: int = 64,
        max_delay: float = 0.01,
        eager: bool = False,
    ) -> None:
        self._flush = flush
        self.max_items = max_items
        self.max_delay = max_delay
        #: write at once when no write is under way (group commit: a lone caller waits for
        #: its own write only; callers that come during a write share the next one)
        self.eager = eager
        self._pending: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        self._count = 0  # items pending
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> None:
        """Add ``item`` to the next write and wait until that write is committed."""
        await self.submit_all([item])

    async def submit_all(self, items: Sequence[T]) -> None:
        """Add ``items`` to the next write, all in the same one (one message's rows are
        committed together or not at all), and wait until it is committed."""
        if not items:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((items, done))
        self._count += len(items)
        if self._count >= self.max_items or (self.eager and not self._running):
            self._start()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_delay, self._start)
        await done

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending, self._count = self._pending, [], 0
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self._write(batch))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self.eager and self._pending and not self._running:
            self._start()  # what gathered during the write goes now, not after the delay

    async def _write(self, batch: list[tuple[Sequence[T], asyncio.Future[None]]]) -> None:
        try:
            await self._flush([item for items, _ in batch for item in items])
        except BaseException as exc:  # every waiter gets the failure, and its message retries
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)
