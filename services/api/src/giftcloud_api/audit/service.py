"""The audit trail: records from the bus (and from this process directly), committed
before the access they record is answered; read back by owners and admins."""

from __future__ import annotations

from giftcloud_core.batching import Batcher
from giftcloud_core.db import Database
from giftcloud_core.events import (
    AuditRecorded,
    Event,
)

from giftcloud_api.audit import store
from giftcloud_api.models import AuditRecord


class AuditTrail:
    """The site's audit trail: every service's records, kept by api."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # an access is answered once its record is committed: a lone request waits for its
        # own write, not for neighbours that may not come
        self._audit: Batcher[AuditRecorded] = Batcher(self._add_audit, eager=True)

    async def on_audit(self, event: Event) -> None:
        if isinstance(event, AuditRecorded):
            await self._audit.submit(event)  # written with its neighbours, then acked

    async def keep_audit(self, event: AuditRecorded) -> None:
        """A record of this process (or of every service, in ``giftcloud up``): committed
        with its neighbours before the access it records is answered."""
        await self._audit.submit(event)

    async def _add_audit(self, events: list[AuditRecorded]) -> None:
        async with self.db.session() as session:
            await store.add_audit(session, events)

    async def records(
        self, project: str | None, filters: store.AuditFilters, limit: int, offset: int
    ) -> list[AuditRecord]:
        async with self.db.session() as session:
            return await store.audit_records(session, project, filters, limit, offset)
