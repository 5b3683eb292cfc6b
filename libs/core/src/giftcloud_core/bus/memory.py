from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from giftcloud_core.budget import MemoryBudget
from giftcloud_core.bus.base import PermanentFailure, Subscription, backoff_seconds
from giftcloud_core.events import QUEUES, Event
from giftcloud_core.logs import correlation_id
from giftcloud_core.settings import BusSettings

log = logging.getLogger(__name__)


class MemoryBus:
    """An in-process bus with the RabbitBus semantics, minus durability across restarts."""

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self._memory = MemoryBudget(settings.memory_budget_bytes)
        self._queues: dict[str, asyncio.Queue[tuple[Event, int]]] = {}
        self._dead: dict[str, list[Event]] = defaultdict(list)
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._busy = 0
        self._closing = False

    async def start(self) -> None:
        for name in QUEUES:
            self._queues.setdefault(name, asyncio.Queue())

    async def publish(self, event: Event) -> None:
        if self._closing:
            raise RuntimeError("the bus is closing")
        for name, types in QUEUES.items():
            if event.type in types:
                self._queues[name].put_nowait((event, 0))

    async def subscribe(self, subscription: Subscription) -> None:
        queue = self._queues[subscription.queue]
        for _ in range(self.settings.prefetch):
            self._workers.append(asyncio.create_task(self._work(subscription, queue)))

    async def _work(self, sub: Subscription, queue: asyncio.Queue[tuple[Event, int]]) -> None:
        while True:
            event, attempt = await queue.get()
            if self._closing:  # not taken: it stays for nobody, as an unacknowledged message would
                queue.put_nowait((event, attempt))
                queue.task_done()
                return
            self._busy += 1
            token = correlation_id.set(event.correlation_id)
            try:
                async with self._memory.hold(event.payload_bytes()):
                    await sub.handler(event)
            except asyncio.CancelledError:
                queue.put_nowait((event, attempt))  # not acknowledged: back on the queue
                raise
            except PermanentFailure:
                log.exception("dead-lettering %s from %s", event.event_id, sub.queue)
                self._dead[sub.queue].append(event)
            except Exception:
                if attempt >= self.settings.max_retries:
                    log.exception("retries exhausted for %s on %s", event.event_id, sub.queue)
                    self._dead[sub.queue].append(event)
                else:
                    delay = backoff_seconds(self.settings.retry_base_seconds, attempt + 1)
                    log.warning("retrying %s on %s in %.1fs", event.event_id, sub.queue, delay)
                    handle = asyncio.get_running_loop().call_later(
                        delay, self._requeue, queue, (event, attempt + 1)
                    )
                    self._timers.add(handle)
            finally:
                self._busy -= 1
                correlation_id.reset(token)
                queue.task_done()

    @staticmethod
    def _requeue(queue: asyncio.Queue[tuple[Event, int]], item: tuple[Event, int]) -> None:
        queue.put_nowait(item)

    async def close(self) -> None:
        """Stop taking messages; handlers under way finish (up to 30 s) first."""
        self._closing = True
        deadline = asyncio.get_running_loop().time() + 30
        while self._busy and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers.clear()
        for timer in self._timers:
            timer.cancel()

    async def ping(self) -> bool:
        return not self._closing

    async def depth(self, queue: str) -> int:
        waiting = self._queues.get(queue)
        return waiting.qsize() if waiting is not None else 0

    async def dead_letters(self, queue: str) -> int:
        return len(self._dead[queue])
