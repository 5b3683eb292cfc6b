"""All SQL of the catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from giftcloud_core.events import AuditRecorded, InstancesArchived
from sqlalchemy import distinct, func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.models import AuditRecord, Instance, Project, Series, Study, Subject


@dataclass(frozen=True)
class StudyRow:
    study: Study
    modalities: list[str]
    series_count: int
    instance_count: int


@dataclass(frozen=True)
class SeriesRow:
    series: Series
    subject: str
    instance_count: int


async def add_project(session: AsyncSession, name: str, title: str) -> None:
    await session.exec(insert(Project).values(name=name, title=title).on_conflict_do_nothing())


async def update_project(session: AsyncSession, name: str, title: str, networks: str) -> None:
    statement = insert(Project).values(name=name, title=title, networks=networks)
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=["name"], set_={"title": title, "networks": networks}
        )
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


async def add_instances(session: AsyncSession, events: list[InstancesArchived]) -> None:
    """Upsert instances and their parents, four statements for any number of them;
    a redelivered event changes nothing."""
    archived = [(e.project, i) for e in events for i in e.instances]
    subjects = {(p, i.subject): {"project": p, "label": i.subject} for p, i in archived}
    studies = {
        (p, i.study_uid): {
            "project": p,
            "study_uid": i.study_uid,
            "subject": i.subject,
            "study_date": i.study_date,
            "description": i.study_description,
        }
        for p, i in archived
    }
    series = {
        (p, i.series_uid): {
            "project": p,
            "series_uid": i.series_uid,
            "study_uid": i.study_uid,
            "modality": i.modality,
            "description": i.series_description,
            "number": i.series_number,
        }
        for p, i in archived
    }
    instances = {
        (p, i.sop_uid): {
            "project": p,
            "sop_uid": i.sop_uid,
            "series_uid": i.series_uid,
            "study_uid": i.study_uid,
            "subject": i.subject,
            "sop_class_uid": i.sop_class_uid,
            "number": i.instance_number,
            "object_key": i.object_key,
            "metadata_key": i.metadata_key,
            "size": i.size,
            "sha256": i.sha256,
            "transfer_syntax_uid": i.transfer_syntax_uid,
        }
        for p, i in archived
    }
    for table, rows in (
        (Subject, subjects),
        (Study, studies),
        (Series, series),
        (Instance, instances),
    ):
        await session.exec(insert(table).values(list(rows.values())).on_conflict_do_nothing())


async def studies(
    session: AsyncSession,
    project: str,
    *,
    study_uid: str | None = None,
    subject: str | None = None,
    study_date: str | None = None,
    modality: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[StudyRow]:
    query = (
        select(
            Study,
            func.array_agg(distinct(col(Series.modality))),
            func.count(distinct(col(Series.series_uid))),
            func.count(distinct(col(Instance.sop_uid))),
        )
        .join(
            Series,
            (col(Series.project) == col(Study.project))
            & (col(Series.study_uid) == col(Study.study_uid)),
        )
        .join(
            Instance,
            (col(Instance.project) == col(Series.project))
            & (col(Instance.series_uid) == col(Series.series_uid)),
        )
        .where(Study.project == project)
        .group_by(col(Study.project), col(Study.study_uid))
        .order_by(col(Study.study_date), col(Study.study_uid))
        .limit(limit)
        .offset(offset)
    )
    if study_uid:
        query = query.where(Study.study_uid == study_uid)
    if subject:
        query = query.where(Study.subject == subject)
    if study_date:
        query = _date_filter(query, study_date)
    if modality:
        query = query.having(func.bool_or(Series.modality == modality))
    rows = (await session.exec(query)).all()
    return [
        StudyRow(s, sorted(m for m in mods if m), n_series, n_inst)
        for s, mods, n_series, n_inst in rows
    ]


def _date_filter(query, value: str):  # type: ignore[no-untyped-def]
    """QIDO date matching: a single date or a range ``from-to`` (either end open)."""
    if "-" in value:
        start, _, end = value.partition("-")
        if start:
            query = query.where(col(Study.study_date) >= start)
        if end:
            query = query.where(col(Study.study_date) <= end)
        return query
    return query.where(Study.study_date == value)


async def series_of(
    session: AsyncSession,
    project: str,
    study_uid: str | None,
    modality: str | None = None,
    series_uid: str | None = None,
) -> list[SeriesRow]:
    query = (
        select(Series, Study.subject, func.count(col(Instance.sop_uid)))
        .join(
            Study,
            (col(Study.project) == col(Series.project))
            & (col(Study.study_uid) == col(Series.study_uid)),
        )
        .join(
            Instance,
            (col(Instance.project) == col(Series.project))
            & (col(Instance.series_uid) == col(Series.series_uid)),
        )
        .where(Series.project == project)
        .group_by(col(Series.project), col(Series.series_uid), col(Study.subject))
        .order_by(col(Series.number), col(Series.series_uid))
    )
    if study_uid:
        query = query.where(Series.study_uid == study_uid)
    if modality:
        query = query.where(Series.modality == modality)
    if series_uid:
        query = query.where(Series.series_uid == series_uid)
    rows = (await session.exec(query)).all()
    return [SeriesRow(s, subject, n) for s, subject, n in rows]


async def instances_of(
    session: AsyncSession,
    project: str,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> list[Instance]:
    query = select(Instance).where(Instance.project == project)
    if study_uid:
        query = query.where(Instance.study_uid == study_uid)
    if series_uid:
        query = query.where(Instance.series_uid == series_uid)
    if sop_uid:
        query = query.where(Instance.sop_uid == sop_uid)
    rows = await session.exec(query.order_by(col(Instance.number), col(Instance.sop_uid)))
    return list(rows.all())


async def subjects(session: AsyncSession, project: str) -> list[tuple[str, int]]:
    rows = await session.exec(
        select(Study.subject, func.count(col(Study.study_uid)))
        .where(Study.project == project)
        .group_by(col(Study.subject))
        .order_by(col(Study.subject))
    )
    return [(label, n) for label, n in rows.all()]


async def projects(session: AsyncSession) -> list[Project]:
    return list((await session.exec(select(Project).order_by(col(Project.name)))).all())
