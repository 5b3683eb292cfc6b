"""The event bus: RabbitMQ in deployment, in-process for ``giftcloud up`` and unit tests.

Both implementations give the same guarantees to a handler: it is called once per
delivery, a message is acknowledged only after the handler returns, a handler that
raises is retried with back-off up to ``max_retries`` times and then dead-lettered,
and :class:`PermanentFailure` dead-letters at once.
"""

from giftcloud_core.bus.base import Bus, Handler, PermanentFailure, Subscription
from giftcloud_core.bus.memory import MemoryBus
from giftcloud_core.bus.rabbit import RabbitBus
from giftcloud_core.settings import BusSettings

__all__ = [
    "Bus",
    "Handler",
    "MemoryBus",
    "PermanentFailure",
    "RabbitBus",
    "Subscription",
    "create_bus",
]


def create_bus(settings: BusSettings) -> Bus:
    """The bus the settings name."""
    if settings.kind == "memory":
        return MemoryBus(settings)
    return RabbitBus(settings)
