"""The event bus: RabbitMQ in deployment, PostgreSQL for ``giftcloud up``, in-process for
unit tests.

Every implementation gives the same guarantees to a handler: it is called once per
delivery, a message is acknowledged only after the handler returns, a handler that
raises is retried with back-off up to ``max_retries`` times and then dead-lettered,
and :class:`PermanentFailure` dead-letters at once.
"""

from giftcloud_core.bus.base import Bus, Handler, PermanentFailure, Subscription
from giftcloud_core.bus.memory import MemoryBus
from giftcloud_core.bus.postgres import PostgresBus
from giftcloud_core.bus.rabbit import RabbitBus
from giftcloud_core.settings import BusSettings, DatabaseSettings

__all__ = [
    "Bus",
    "Handler",
    "MemoryBus",
    "PermanentFailure",
    "PostgresBus",
    "RabbitBus",
    "Subscription",
    "create_bus",
]


def create_bus(settings: BusSettings, database: DatabaseSettings | None = None) -> Bus:
    """The bus the settings name (the postgres bus lives in ``database``)."""
    if settings.kind == "memory":
        return MemoryBus(settings)
    if settings.kind == "postgres":
        return PostgresBus(settings, database or DatabaseSettings())
    return RabbitBus(settings)
