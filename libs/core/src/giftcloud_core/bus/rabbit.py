from __future__ import annotations

import asyncio
import logging
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from giftcloud_core.budget import MemoryBudget
from giftcloud_core.bus.base import PermanentFailure, Subscription, backoff_seconds
from giftcloud_core.events import QUEUES, Event, parse_event
from giftcloud_core.logs import correlation_id
from giftcloud_core.metrics import EVENTS_CONSUMED
from giftcloud_core.settings import BusSettings

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-giftcloud-attempt"


class RabbitBus:
    """RabbitMQ through aio-pika.

    Topology (declared by every service at start, idempotently): a durable topic
    exchange; per consumer a durable quorum queue bound by event type, dead-lettering
    to a durable classic ``<queue>.dlq`` through a direct exchange ``<exchange>.dlx``, and a durable
    ``<queue>.retry`` queue whose messages expire back into the main queue after
    their back-off. Publisher confirms are on and publishing is mandatory, so a
    publish returns only once the message sits in every queue bound to it.
    """

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self._memory = MemoryBudget(settings.memory_budget_bytes)
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[tuple[AbstractChannel, AbstractQueue, str]] = []
        self._inflight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.settings.url.get_secret_value(), client_properties={"connection_name": "giftcloud"}
        )
        channel = await self._connection.channel(publisher_confirms=True)
        self._publish_channel = channel
        self._exchange = await channel.declare_exchange(
            self.settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        dlx = await channel.declare_exchange(
            f"{self.settings.exchange}.dlx", aio_pika.ExchangeType.DIRECT, durable=True
        )
        for queue_id, types in QUEUES.items():
            name = self._name(queue_id)
            queue = await channel.declare_queue(
                name, durable=True, arguments=self._queue_args(name)
            )
            for routing_key in types:
                await queue.bind(self._exchange, routing_key)
            dlq = await channel.declare_queue(f"{name}.dlq", durable=True)
            await dlq.bind(dlx, name)
            await channel.declare_queue(
                f"{name}.retry",
                durable=True,
                arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": name},
            )

    def _name(self, queue: str) -> str:
        return f"{self.settings.namespace}{queue}"

    def _queue_args(self, name: str) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": f"{self.settings.exchange}.dlx",
            "x-dead-letter-routing-key": name,
            "x-delivery-limit": self.settings.delivery_limit,
        }

    def _channel(self) -> AbstractChannel:
        if self._publish_channel is None:
            raise RuntimeError("RabbitBus.start() was not called")
        return self._publish_channel

    async def publish(self, event: Event) -> None:
        if self._exchange is None:
            raise RuntimeError("RabbitBus.start() was not called")
        message = aio_pika.Message(
            body=event.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(event.event_id),
            correlation_id=event.correlation_id,
            type=event.type,
        )
        await self._exchange.publish(message, routing_key=event.type, mandatory=True)

    async def subscribe(self, subscription: Subscription) -> None:
        if self._connection is None:
            raise RuntimeError("RabbitBus.start() was not called")
        channel = await self._connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        # declared (idempotently), not looked up: the robust channel restores only the queues
        # it declared, with their consumers, after the broker comes back
        name = self._name(subscription.queue)
        queue = await channel.declare_queue(name, durable=True, arguments=self._queue_args(name))

        async def on_message(message: AbstractIncomingMessage) -> None:
            task = asyncio.create_task(self._handle(subscription, channel, message))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

        tag = await queue.consume(on_message, no_ack=False)
        self._consumers.append((channel, queue, tag))

    async def _handle(
        self, sub: Subscription, channel: AbstractChannel, message: AbstractIncomingMessage
    ) -> None:
        try:
            event = parse_event(message.body)
        except Exception:
            log.exception("unreadable message on %s: dead-lettered", sub.queue)
            EVENTS_CONSUMED.labels(sub.queue, "dead").inc()
            await message.reject(requeue=False)
            return
        token = correlation_id.set(event.correlation_id)
        try:
            async with self._memory.hold(event.payload_bytes()):
                await sub.handler(event)
        except PermanentFailure:
            log.exception("dead-lettering %s from %s", event.event_id, sub.queue)
            EVENTS_CONSUMED.labels(sub.queue, "dead").inc()
            await message.reject(requeue=False)
        except Exception:
            await self._retry_or_dead_letter(sub, channel, message, event)
        else:
            EVENTS_CONSUMED.labels(sub.queue, "ok").inc()
            await message.ack()
        finally:
            correlation_id.reset(token)

    async def _retry_or_dead_letter(
        self,
        sub: Subscription,
        channel: AbstractChannel,
        message: AbstractIncomingMessage,
        event: Event,
    ) -> None:
        attempt = int(str((message.headers or {}).get(ATTEMPT_HEADER, 0))) + 1
        if attempt > self.settings.max_retries:
            log.exception(
                "retries exhausted for %s on %s: dead-lettered", event.event_id, sub.queue
            )
            EVENTS_CONSUMED.labels(sub.queue, "dead").inc()
            await message.reject(requeue=False)
            return
        delay = backoff_seconds(self.settings.retry_base_seconds, attempt)
        log.warning(
            "handler failed for %s on %s; retry %d in %.1fs",
            event.event_id,
            sub.queue,
            attempt,
            delay,
            exc_info=True,
        )
        retry = aio_pika.Message(
            body=message.body,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            type=message.type,
            headers={**(message.headers or {}), ATTEMPT_HEADER: attempt},
            expiration=delay,
        )
        # the retry copy is confirmed before the original is acknowledged: never lost, at worst twice
        await channel.default_exchange.publish(retry, routing_key=f"{self._name(sub.queue)}.retry")
        EVENTS_CONSUMED.labels(sub.queue, "retry").inc()
        await message.ack()

    async def close(self) -> None:
        for _, queue, tag in self._consumers:
            try:
                await queue.cancel(tag)
            except Exception:  # the connection may already be gone
                log.debug("cancel of %s failed", queue.name, exc_info=True)
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=30)
        for channel, _, _ in self._consumers:
            await channel.close()
        self._consumers.clear()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def ping(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def depth(self, queue: str) -> int:
        name = self._name(queue)
        declared = await self._channel().declare_queue(
            name, durable=True, arguments=self._queue_args(name)
        )
        return int(declared.declaration_result.message_count or 0)

    async def dead_letters(self, queue: str) -> int:
        declared = await self._channel().declare_queue(f"{self._name(queue)}.dlq", durable=True)
        return int(declared.declaration_result.message_count or 0)
