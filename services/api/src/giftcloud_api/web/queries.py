"""What the pages ask of the catalogue beyond the API's answers: summaries of projects,
a page of studies in the order they are listed, sizes, modalities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    any_,
    func,
    literal,
)
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.models import (
    Instance,
    Series,
    Study,
)


@dataclass(frozen=True)
class ProjectSummary:
    """What the projects page shows of one project."""

    subjects: int = 0
    studies: int = 0
    instances: int = 0
    size: int = 0
    last_archived: datetime | None = None


async def summaries(session: AsyncSession, names: list[str]) -> dict[str, ProjectSummary]:
    """Counts, size and last arrival of each named project (two grouped scans)."""
    if not names:
        return {}
    studies = await session.exec(
        select(Study.project, func.count(func.distinct(Study.subject)), func.count())
        .where(col(Study.project).in_(names))
        .group_by(col(Study.project))
    )
    counted = {project: (subjects, n) for project, subjects, n in studies.all()}
    instances = await session.exec(
        select(
            Instance.project,
            func.count(),
            func.coalesce(func.sum(Instance.size), 0),
            func.max(Instance.archived_at),
        )
        .where(col(Instance.project).in_(names))
        .group_by(col(Instance.project))
    )
    out = {name: ProjectSummary() for name in names}
    for project, n, size, last in instances.all():
        subjects, studies_n = counted.get(project, (0, 0))
        out[project] = ProjectSummary(subjects, studies_n, n, int(size), last)
    return out


@dataclass(frozen=True)
class StudyFilter:
    """The project page's search: part of a subject label, a date range, a modality."""

    subject: str = ""
    date_from: str = ""  # YYYYMMDD
    date_to: str = ""
    modality: str = ""


def _like(text: str) -> str:
    """``text`` anywhere, as ILIKE matches it (its own % and _ taken literally)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _chosen(chosen: StudyFilter) -> list[Any]:
    """The filter's conditions on a study: part of its subject, its dates, a modality."""
    conditions: list[Any] = []
    if chosen.subject:
        conditions.append(col(Study.subject).ilike(_like(chosen.subject), escape="\\"))
    if chosen.date_from:
        conditions.append(col(Study.study_date) >= chosen.date_from)
    if chosen.date_to:
        conditions.append(col(Study.study_date) <= chosen.date_to)
    if chosen.modality:
        conditions.append(literal(chosen.modality) == any_(col(Study.modalities)))
    return conditions


def _browsing(project: str, chosen: StudyFilter) -> list[Any]:
    return [col(Study.project) == project, *_chosen(chosen)]


def browse_query(project: str, chosen: StudyFilter, limit: int, offset: int) -> Any:
    """One page of the project's studies, by subject then date (an index holds them in
    that order: ``studies_by_subject_date``)."""
    return (
        select(Study)
        .where(*_browsing(project, chosen))
        .order_by(col(Study.subject), col(Study.study_date), col(Study.study_uid))
        .limit(limit)
        .offset(offset)
    )


async def browse_studies(
    session: AsyncSession, project: str, chosen: StudyFilter, limit: int, offset: int
) -> tuple[list[Study], int]:
    """One page of the project's studies, by subject then date, and how many match."""
    total = (
        await session.exec(
            select(func.count()).select_from(Study).where(*_browsing(project, chosen))
        )
    ).one()
    rows = await session.exec(browse_query(project, chosen, limit, offset))
    return list(rows.all()), int(total)


async def modalities(session: AsyncSession, project: str) -> list[str]:
    """Every modality in the project (for the page's filter)."""
    rows = await session.exec(
        select(func.distinct(Series.modality)).where(col(Series.project) == project)
    )
    return sorted(m for m in rows.all() if m)


async def series_sizes(session: AsyncSession, project: str, study_uid: str) -> dict[str, int]:
    """The bytes of each series of a study (what their zips hold)."""
    rows = await session.exec(
        select(Instance.series_uid, func.coalesce(func.sum(Instance.size), 0))
        .where(col(Instance.project) == project, col(Instance.study_uid) == study_uid)
        .group_by(col(Instance.series_uid))
    )
    return {series: int(size) for series, size in rows.all()}


async def subject_sizes(session: AsyncSession, project: str, labels: list[str]) -> dict[str, int]:
    """The bytes of each named subject's instances (what their zips hold)."""
    if not labels:
        return {}
    rows = await session.exec(
        select(Instance.subject, func.coalesce(func.sum(Instance.size), 0))
        .where(col(Instance.project) == project, col(Instance.subject).in_(labels))
        .group_by(col(Instance.subject))
    )
    return {label: int(size) for label, size in rows.all()}


@dataclass(frozen=True)
class Found:
    """A study found across projects, with when its instances last arrived."""

    study: Study
    arrived: datetime | None = None
    instances_arrived: int = 0


async def find_studies(
    session: AsyncSession, projects: list[str], text: str, chosen: StudyFilter, limit: int
) -> list[Found]:
    """Studies of ``projects`` whose subject label or description holds ``text`` (any case),
    of the chosen modality and dates: the newest studies first."""
    if not projects:
        return []
    conditions: list[Any] = [col(Study.project).in_(projects), *_chosen(chosen)]
    if text:
        conditions.append(
            col(Study.subject).ilike(_like(text), escape="\\")
            | col(Study.description).ilike(_like(text), escape="\\")
        )
    rows = await session.exec(
        select(Study)
        .where(*conditions)
        .order_by(col(Study.study_date).desc(), col(Study.project), col(Study.study_uid))
        .limit(limit)
    )
    return [Found(study) for study in rows.all()]


async def arrivals(
    session: AsyncSession, projects: list[str], since: datetime, limit: int
) -> list[Found]:
    """The studies of ``projects`` that instances arrived in since ``since``, the latest
    arrival first, with how many arrived (the index of instances by arrival bounds it)."""
    if not projects:
        return []
    latest = (
        select(
            Instance.project,
            Instance.study_uid,
            func.max(Instance.archived_at).label("arrived"),
            func.count().label("n"),
        )
        .where(col(Instance.project).in_(projects), col(Instance.archived_at) >= since)
        .group_by(col(Instance.project), col(Instance.study_uid))
        .order_by(func.max(Instance.archived_at).desc())
        .limit(limit)
        .subquery()
    )
    rows = await session.exec(
        select(Study, latest.c.arrived, latest.c.n)
        .join(
            latest,
            (col(Study.project) == latest.c.project) & (col(Study.study_uid) == latest.c.study_uid),
        )
        .order_by(latest.c.arrived.desc())
    )
    return [Found(study, arrived, int(n)) for study, arrived, n in rows.all()]
