"""The audit trail in the catalogue's database: records as they come, read back filtered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from giftcloud_core.events import AuditRecorded
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.models import (
    AuditRecord,
)


async def add_audit(session: AsyncSession, events: list[AuditRecorded]) -> None:
    """Append the records; a redelivered one (same event id) is not added twice."""
    rows = {
        str(e.event_id): {
            "event_id": str(e.event_id),
            "occurred_at": e.occurred_at,
            "project": e.project,
            "actor": e.actor,
            "action": e.action,
            "outcome": e.outcome,
            "target": e.target,
            "address": e.address,
            "detail": e.detail,
            "correlation_id": e.correlation_id,
        }
        for e in events
    }
    await session.exec(insert(AuditRecord).values(list(rows.values())).on_conflict_do_nothing())


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def audit_records(
    session: AsyncSession, project: str | None, filters: AuditFilters, limit: int, offset: int
) -> list[AuditRecord]:
    """A project's records (None: every record), newest first."""
    query = select(AuditRecord)
    if project is not None:
        query = query.where(AuditRecord.project == project)
    if filters.actor:
        query = query.where(AuditRecord.actor == filters.actor)
    if filters.action:  # a prefix: 'dicomweb.' finds every DICOMweb access
        query = query.where(col(AuditRecord.action).startswith(filters.action, autoescape=True))
    if filters.outcome:
        query = query.where(AuditRecord.outcome == filters.outcome)
    if filters.since:
        query = query.where(col(AuditRecord.occurred_at) >= filters.since)
    if filters.until:
        query = query.where(col(AuditRecord.occurred_at) < filters.until)
    query = query.order_by(col(AuditRecord.occurred_at).desc(), col(AuditRecord.id).desc())
    rows = await session.exec(query.limit(limit).offset(offset))
    return list(rows.all())
