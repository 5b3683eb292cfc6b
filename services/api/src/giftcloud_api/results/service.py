"""A study's results, read from the catalogue with the links recorded when they were kept."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from giftcloud_core.db import Database
from sqlmodel import col, select

from giftcloud_api.models import AttachedFile, Derivation, Instance, Series, Study
from giftcloud_api.results.files import out
from giftcloud_api.results.schemas import FileOut, ProjectResult, ResultOut, Source


async def of_study(db: Database, project: str, study_uid: str) -> list[ResultOut]:
    async with db.session() as session:
        rows = (
            await session.exec(
                select(Instance, Derivation)
                .join(
                    Derivation,
                    (col(Derivation.project) == col(Instance.project))
                    & (col(Derivation.sop_uid) == col(Instance.sop_uid)),
                )
                .where(col(Instance.project) == project, col(Instance.study_uid) == study_uid)
                .order_by(col(Instance.archived_at), col(Instance.sop_uid))
            )
        ).all()
        series_uids = {instance.series_uid for instance, _ in rows}
        described = (
            await session.exec(
                select(Series.series_uid, Series.description).where(
                    col(Series.project) == project, col(Series.series_uid).in_(series_uids)
                )
            )
        ).all()
    descriptions = dict(described)
    results: dict[str, tuple[Instance, str, Counter[str]]] = {}
    for instance, link in rows:
        _, _, counted = results.setdefault(instance.sop_uid, (instance, link.kind, Counter()))
        counted[link.source_series_uid] += 1
    return [
        ResultOut(
            sop_uid=instance.sop_uid,
            series_uid=instance.series_uid,
            sop_class_uid=instance.sop_class_uid,
            kind=kind,
            series_description=descriptions.get(instance.series_uid, ""),
            archived_at=instance.archived_at.isoformat(),
            sources=[Source(series_uid=s, instances=n) for s, n in sorted(counted.items())],
        )
        for instance, kind, counted in results.values()
    ]


async def files_of(db: Database, project: str, study_uid: str) -> list[FileOut]:
    """The files attached to a study, to its series or to its subject."""
    async with db.session() as session:
        study = await session.get(Study, (project, study_uid))
        here = col(AttachedFile.study_uid) == study_uid
        if study is not None:  # and the subject's own
            here = here | (
                (col(AttachedFile.subject) == study.subject) & (col(AttachedFile.study_uid) == "")
            )
        rows = (
            await session.exec(
                select(AttachedFile)
                .where(col(AttachedFile.project) == project, here)
                .order_by(col(AttachedFile.created_at))
            )
        ).all()
    return [out(row) for row in rows]


async def of_project(
    db: Database, project: str, since: datetime | None, limit: int
) -> list[ProjectResult]:
    """The project's results (derived instances and attached files) archived or attached
    since ``since``, oldest first: what a site pulls back."""
    after = since or datetime.min.replace(tzinfo=UTC)
    async with db.session() as session:
        derived = select(Derivation.sop_uid).where(col(Derivation.project) == project)
        instances = (
            await session.exec(
                select(Instance)
                .where(
                    col(Instance.project) == project,
                    col(Instance.sop_uid).in_(derived),
                    col(Instance.archived_at) >= after,
                )
                .order_by(col(Instance.archived_at))
                .limit(limit)
            )
        ).all()
        files = (
            await session.exec(
                select(AttachedFile)
                .where(col(AttachedFile.project) == project, col(AttachedFile.created_at) >= after)
                .order_by(col(AttachedFile.created_at))
                .limit(limit)
            )
        ).all()
    found = [
        ProjectResult(
            kind="instance",
            key=i.sop_uid,
            subject=i.subject,
            study_uid=i.study_uid,
            series_uid=i.series_uid,
            size=i.size,
            sha256=i.sha256,
            name=i.sop_class_uid,
            at=i.archived_at.isoformat(),
        )
        for i in instances
    ] + [
        ProjectResult(
            kind="file",
            key=f"file:{f.id}",
            subject=f.subject,
            study_uid=f.study_uid,
            series_uid=f.series_uid,
            size=f.size,
            sha256=f.sha256,
            name=f.name,
            at=f.created_at.isoformat(),
        )
        for f in files
    ]
    return sorted(found, key=lambda r: r.at)[:limit]
