"""Every change auth makes, and every sign-in good or bad, is an audit record committed in
the same transaction as the change (the outbox) and published after by the relay: a broker
that is away loses no event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.events import AuditRecorded, Event, parse_event
from giftcloud_core.logs import correlation_id
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.models import OutboxEvent

log = logging.getLogger(__name__)

Outcome = Literal["success", "denied", "failure"]


class Journal:
    def __init__(self, db: Database, bus: Bus, interval_seconds: float) -> None:
        self.db = db
        self.bus = bus
        self.interval = interval_seconds
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()

    def emit(self, session: AsyncSession, event: Event) -> None:
        """Publish ``event`` once the transaction of ``session`` commits."""
        session.add(OutboxEvent(body=event.model_dump_json()))
        self._kick.set()

    def audit(
        self,
        session: AsyncSession,
        action: str,
        *,
        actor: str,
        address: str,
        outcome: Outcome = "success",
        project: str = "",
        target: str = "",
        detail: str = "",
    ) -> None:
        self.emit(
            session,
            AuditRecorded(
                project=project,
                correlation_id=correlation_id.get() or "-",
                actor=actor,
                action=action,
                outcome=outcome,
                target=target,
                address=address,
                detail=detail,
            ),
        )

    async def record(
        self, action: str, *, actor: str, address: str, outcome: Outcome, detail: str = ""
    ) -> None:
        """An audit record alone, in its own transaction (a refusal that changes nothing)."""
        async with self.db.session() as session:
            self.audit(
                session, action, actor=actor, address=address, outcome=outcome, detail=detail
            )

    async def relay(self) -> int:
        """Publish the events committed but not yet published, oldest first, and delete each
        once the broker has confirmed it; returns how many went. A failed publish leaves the
        rest for the next round (a repeat is harmless: consumers are idempotent)."""
        async with self._lock:
            sent = 0
            try:
                async with self.db.session() as session:
                    rows = (
                        await session.exec(
                            select(OutboxEvent)
                            .order_by(col(OutboxEvent.id))
                            .limit(500)
                            .with_for_update(skip_locked=True)  # replicas share the work
                        )
                    ).all()
                    for row in rows:
                        await self.bus.publish(parse_event(row.body.encode()))
                        await session.delete(row)
                        await session.flush()
                        sent += 1
            except Exception as exc:
                log.warning(
                    "outbox: %d event(s) published, the rest wait for the next round: %s",
                    sent,
                    exc,
                )
                return 0  # the deletions were rolled back with the failure
            return sent

    async def relay_forever(self) -> None:
        """Relay when something was emitted, and every interval (another replica's events)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.interval)
            self._kick.clear()
            await self.relay()
