from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from giftcloud_core.events import QUEUES, Event

Handler = Callable[[Event], Awaitable[None]]


class PermanentFailure(Exception):
    """Raised by a handler for a message that no retry can mend: it is dead-lettered at once."""


@dataclass(frozen=True)
class Subscription:
    """A consumer: the queue it owns (one of :data:`giftcloud_core.events.QUEUES`) and its handler."""

    queue: str
    handler: Handler

    @property
    def event_types(self) -> tuple[str, ...]:
        return QUEUES[self.queue]


class Bus(Protocol):
    async def start(self) -> None:
        """Connect and declare the whole topology."""

    async def publish(self, event: Event) -> None:
        """Publish; returns once the broker has confirmed the message is stored."""

    async def subscribe(self, subscription: Subscription) -> None:
        """Start consuming the subscription's queue."""

    async def close(self) -> None:
        """Stop consuming, let in-flight handlers finish, disconnect."""

    async def ping(self) -> bool:
        """True when the bus can take messages."""

    async def dead_letters(self, queue: str) -> int:
        """How many messages wait in the queue's dead-letter queue."""

    async def depth(self, queue: str) -> int:
        """How many messages wait in the queue to be handled (not those being handled)."""


def backoff_seconds(base: float, attempt: int) -> float:
    """Exponential back-off before retry number ``attempt`` (1-based), capped at a minute."""
    return float(min(60.0, base * (2 ** (attempt - 1))))
