"""A durable bus in PostgreSQL, for ``giftcloud up``: what RabbitMQ does, in one table.

A published event becomes one row per consumer queue bound to its type, committed before
``publish`` returns. A consumer leases rows (``FOR UPDATE SKIP LOCKED``: replicas and
processes share the work), renews its leases while its handlers run, and deletes a row
only after its handler returned: a process killed at any point loses nothing, and a leased
row comes back once its lease runs out. A handler that raises is retried with back-off up
to ``max_retries`` times, then the row is dead (``PermanentFailure``: at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from giftcloud_core.budget import MemoryBudget
from giftcloud_core.bus.base import PermanentFailure, Subscription, backoff_seconds
from giftcloud_core.events import QUEUES, Event, parse_event
from giftcloud_core.logs import correlation_id
from giftcloud_core.metrics import EVENTS_CONSUMED
from giftcloud_core.settings import BusSettings, DatabaseSettings

log = logging.getLogger(__name__)

#: how long a taken row stays with its consumer without a renewal (renewed every third of it)
LEASE_SECONDS = 30.0
#: how often an idle consumer looks for work another process published
POLL_SECONDS = 0.2


def _call(function: Callable[[int], None], row_id: int, _: object) -> None:
    function(row_id)


class PostgresBus:
    def __init__(
        self,
        settings: BusSettings,
        database: DatabaseSettings,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.settings = settings
        self.lease_seconds = lease_seconds
        schema = settings.table_schema
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise ValueError(f"bus schema {schema!r} is not a plain lower-case name")
        self.table = f"{schema}.messages"
        self._schema = schema
        self._url = database.url
        self._engine: AsyncEngine | None = None
        self._memory = MemoryBudget(settings.memory_budget_bytes)
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._closing = False  # no more taking
        self._closed = False  # no more publishing: after the handlers under way finished

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("PostgresBus.start() was not called")
        return self._engine

    def _queue(self, name: str) -> str:
        return f"{self.settings.namespace}{name}"

    async def start(self) -> None:
        self._engine = create_async_engine(
            self._url, pool_size=4, max_overflow=4, pool_pre_ping=True, hide_parameters=True
        )
        lock = int.from_bytes(hashlib.sha256(self.table.encode()).digest()[:7], "big")
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock})
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"'))
            await conn.execute(
                text(
                    f"""CREATE TABLE IF NOT EXISTS {self.table} (
                        id bigserial PRIMARY KEY,
                        queue text NOT NULL,
                        body text NOT NULL,
                        attempts integer NOT NULL DEFAULT 0,
                        available_at timestamptz NOT NULL DEFAULT now(),
                        leased_until timestamptz,
                        dead boolean NOT NULL DEFAULT false,
                        error text NOT NULL DEFAULT '',
                        created_at timestamptz NOT NULL DEFAULT now())"""
                )
            )
            await conn.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS messages_ready ON {self.table}"
                    " (queue, available_at, id) WHERE NOT dead"
                )
            )
        for name in QUEUES:
            self._wake.setdefault(self._queue(name), asyncio.Event())

    async def publish(self, event: Event) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")
        queues = [self._queue(name) for name, types in QUEUES.items() if event.type in types]
        if not queues:
            return
        body = event.model_dump_json()
        async with self.engine.begin() as conn:  # committed in every queue, or in none
            await conn.execute(
                text(f"INSERT INTO {self.table} (queue, body) VALUES (:queue, :body)"),
                [{"queue": q, "body": body} for q in queues],
            )
        for queue in queues:
            self._wake[queue].set()

    async def subscribe(self, subscription: Subscription) -> None:
        queue = self._queue(subscription.queue)
        self._tasks.append(asyncio.create_task(self._consume(subscription, queue)))
        if len(self._tasks) == 1:
            self._tasks.append(asyncio.create_task(self._renew_leases()))

    async def _consume(self, sub: Subscription, queue: str) -> None:
        wake = self._wake[queue]
        mine: set[int] = set()

        def finished(row_id: int) -> None:
            mine.discard(row_id)
            self._inflight.pop(row_id, None)
            wake.set()  # room for the next one

        while not self._closing:
            room = self.settings.prefetch - len(mine)
            rows = await self._lease(queue, room) if room > 0 else []
            for row_id, body, attempts in rows:
                task = asyncio.create_task(self._handle(sub, row_id, body, attempts))
                mine.add(row_id)
                self._inflight[row_id] = task
                task.add_done_callback(functools.partial(_call, finished, row_id))
            if rows and len(rows) == room:
                continue  # a full take: there may be more waiting
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), POLL_SECONDS)

    async def _lease(self, queue: str, count: int) -> list[tuple[int, str, int]]:
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    text(
                        f"""UPDATE {self.table} SET leased_until = now() + make_interval(secs => :lease)
                        WHERE id IN (
                          SELECT id FROM {self.table}
                          WHERE queue = :queue AND NOT dead AND available_at <= now()
                            AND (leased_until IS NULL OR leased_until < now())
                          ORDER BY id LIMIT :count FOR UPDATE SKIP LOCKED)
                        RETURNING id, body, attempts"""
                    ),
                    {"queue": queue, "count": count, "lease": self.lease_seconds},
                )
                return sorted((int(r[0]), str(r[1]), int(r[2])) for r in result)
        except Exception as exc:  # the database away for a moment: try again later
            log.warning("cannot take messages from %s: %s", queue, exc)
            await asyncio.sleep(1)
            return []

    async def _renew_leases(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.lease_seconds / 3)
            held = list(self._inflight)
            if not held:
                continue
            with contextlib.suppress(Exception):
                async with self.engine.begin() as conn:
                    await conn.execute(
                        text(
                            f"UPDATE {self.table} SET leased_until = now()"
                            " + make_interval(secs => :lease) WHERE id = ANY(:ids)"
                        ),
                        {"ids": held, "lease": self.lease_seconds},
                    )

    async def _handle(self, sub: Subscription, row_id: int, body: str, attempts: int) -> None:
        try:
            event = parse_event(body.encode())
        except Exception as exc:
            log.exception("unreadable message on %s: dead", sub.queue)
            await self._settle(sub.queue, row_id, "dead", error=f"unreadable: {exc}")
            return
        token = correlation_id.set(event.correlation_id)
        try:
            async with self._memory.hold(event.payload_bytes()):
                await sub.handler(event)
        except PermanentFailure as exc:
            log.exception("dead-lettering %s from %s", event.event_id, sub.queue)
            await self._settle(sub.queue, row_id, "dead", error=str(exc))
        except asyncio.CancelledError:
            await asyncio.shield(self._settle(sub.queue, row_id, "release"))
            raise
        except Exception as exc:
            if attempts + 1 > self.settings.max_retries:
                log.exception("retries exhausted for %s on %s: dead", event.event_id, sub.queue)
                await self._settle(sub.queue, row_id, "dead", error=str(exc))
            else:
                delay = backoff_seconds(self.settings.retry_base_seconds, attempts + 1)
                log.warning(
                    "handler failed for %s on %s; retry %d in %.1fs",
                    event.event_id,
                    sub.queue,
                    attempts + 1,
                    delay,
                    exc_info=True,
                )
                await self._settle(sub.queue, row_id, "retry", delay=delay, error=str(exc))
        else:
            await self._settle(sub.queue, row_id, "done")
        finally:
            correlation_id.reset(token)

    async def _settle(
        self, queue: str, row_id: int, how: str, delay: float = 0.0, error: str = ""
    ) -> None:
        """done: the row goes; retry: back after ``delay``; dead: kept for an operator;
        release: back at once (not handled). A failure here leaves the lease to run out."""
        statements = {
            "done": f"DELETE FROM {self.table} WHERE id = :id",
            "dead": f"UPDATE {self.table} SET dead = true, leased_until = NULL,"
            " attempts = attempts + 1, error = :error WHERE id = :id",
            "retry": f"UPDATE {self.table} SET attempts = attempts + 1, leased_until = NULL,"
            " available_at = now() + make_interval(secs => :delay), error = :error WHERE id = :id",
            "release": f"UPDATE {self.table} SET leased_until = NULL WHERE id = :id",
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    text(statements[how]), {"id": row_id, "delay": delay, "error": error[:2000]}
                )
        except Exception as exc:
            log.warning(
                "could not settle message %d (%s): its lease will run out: %s", row_id, how, exc
            )
            return
        EVENTS_CONSUMED.labels(queue, {"done": "ok"}.get(how, how)).inc()

    async def close(self) -> None:
        """Stop taking messages; handlers under way finish (up to 30 s) first."""
        self._closing = True
        for wake in self._wake.values():
            wake.set()
        if self._inflight:  # they may still publish what they made
            await asyncio.wait(list(self._inflight.values()), timeout=30)
        self._closed = True
        for task in [*self._tasks, *self._inflight.values()]:
            task.cancel()
        for task in [*self._tasks, *self._inflight.values()]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def ping(self) -> bool:
        if self._engine is None or self._closing:
            return False
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def depth(self, queue: str) -> int:
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                text(
                    f"SELECT count(*) FROM {self.table} WHERE queue = :queue AND NOT dead"
                    " AND (leased_until IS NULL OR leased_until < now())"
                ),
                {"queue": self._queue(queue)},
            )
        return int(found or 0)

    async def dead_letters(self, queue: str) -> int:
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                text(f"SELECT count(*) FROM {self.table} WHERE queue = :queue AND dead"),
                {"queue": self._queue(queue)},
            )
        return int(found or 0)
