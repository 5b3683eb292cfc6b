"""What the catalogue is asked: a project's subjects, studies, series and instances, the
DICOM JSON it keeps of each, and the entries of a download."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    func,
    text,
    tuple_,
)
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.catalogue.downloads import Entry
from giftcloud_api.models import (
    SCHEMA,
    AttachedFile,
    Instance,
    Project,
    Series,
    Study,
)


async def instance_page(
    session: AsyncSession, project: str | None, after: tuple[str, str], limit: int
) -> list[Instance]:
    """Instances in (project, SOP Instance UID) order after ``after``: for a walk of all."""
    query = select(Instance).where(
        tuple_(col(Instance.project), col(Instance.sop_uid)) > tuple_(*after)
    )
    if project is not None:
        query = query.where(col(Instance.project) == project)
    query = query.order_by(col(Instance.project), col(Instance.sop_uid)).limit(limit)
    return list((await session.exec(query)).all())


async def studies_of(session: AsyncSession, project: str, subject: str) -> list[Study]:
    rows = await session.exec(
        select(Study)
        .where(col(Study.project) == project, col(Study.subject) == subject)
        .order_by(col(Study.study_date), col(Study.study_uid))
    )
    return list(rows.all())


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
    rows = await session.exec(
        query.order_by(col(Instance.series_uid), col(Instance.number), col(Instance.sop_uid))
    )
    return list(rows.all())


async def metadata_texts(
    session: AsyncSession,
    project: str,
    study_uid: str,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> list[str]:
    """Each instance's DICOM JSON as PostgreSQL writes it (no decoding on the way), in
    order."""
    conditions = ["project = :project", "study_uid = :study"]
    params: dict[str, Any] = {"project": project, "study": study_uid}
    if series_uid is not None:
        conditions.append("series_uid = :series")
        params["series"] = series_uid
    if sop_uid is not None:
        conditions.append("sop_uid = :sop")
        params["sop"] = sop_uid
    connection = await session.connection()
    rows = await connection.execute(
        text(
            f"SELECT attributes::text, sop_uid FROM {SCHEMA}.instances"  # noqa: S608
            f" WHERE {' AND '.join(conditions)} ORDER BY series_uid, number, sop_uid"
        ).bindparams(**params)
    )
    return [str(attributes) for attributes, _ in rows.all()]


def within(
    table: type[Instance] | type[AttachedFile],
    project: str,
    subject: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> list[Any]:
    """The conditions of a selection (the project, and a subject, study or series in it)
    on a table of things kept by subject, study and series."""
    conditions = [col(table.project) == project]
    for column, value in (
        (table.subject, subject),
        (table.study_uid, study_uid),
        (table.series_uid, series_uid),
    ):
        if value is not None:
            conditions.append(col(column) == value)
    return conditions


async def entries(
    session: AsyncSession,
    project: str,
    subject: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> list[Entry]:
    """What a zip of the selection holds (the columns it needs only), in path order."""
    query = select(  # type: ignore[call-overload]  # sqlmodel types up to four columns
        Instance.subject,
        Instance.study_uid,
        Instance.series_uid,
        Instance.sop_uid,
        Instance.object_key,
        Instance.size,
    ).where(*within(Instance, project, subject, study_uid, series_uid))
    rows = await session.exec(
        query.order_by(
            col(Instance.subject),
            col(Instance.study_uid),
            col(Instance.series_uid),
            col(Instance.sop_uid),
        )
    )
    return [Entry(*row) for row in rows.all()]


async def file_entries(
    session: AsyncSession,
    project: str,
    subject: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> list[Entry]:
    """The files attached within the selection, as zip entries (a study's zip holds the
    files of the study and of its series)."""
    query = select(AttachedFile).where(
        *within(AttachedFile, project, subject, study_uid, series_uid)
    )
    rows = await session.exec(query.order_by(col(AttachedFile.created_at)))
    return [
        Entry(
            f.subject,
            f.study_uid,
            f.series_uid,
            "",
            f.object_key,
            f.size,
            file_name=f"{f.id[:8]}-{f.name}",
        )
        for f in rows.all()
    ]


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


async def middle_instance(
    session: AsyncSession, project: str, study_uid: str, series_uid: str | None = None
) -> Instance | None:
    """The middle instance of a series (of a study's first series when none is named), in
    the order the viewer shows them: what a thumbnail shows (found without reading the
    instances' DICOM JSON)."""
    if series_uid is None:
        first = await session.exec(
            select(Instance.series_uid)
            .where(col(Instance.project) == project, col(Instance.study_uid) == study_uid)
            .order_by(col(Instance.series_uid))
            .limit(1)
        )
        series_uid = first.first()
        if series_uid is None:
            return None
    found = await frame_counts(session, project, study_uid, series_uid)  # the viewer's order
    if not found:
        return None
    return await session.get(Instance, (project, found[len(found) // 2][0]))


async def frame_counts(
    session: AsyncSession, project: str, study_uid: str, series_uid: str
) -> list[tuple[str, int]]:
    """Each instance of a series, in order, and its NumberOfFrames (1 when it has none):
    what the viewer pages through, without reading every instance's whole DICOM JSON."""
    connection = await session.connection()
    rows = await connection.execute(
        text(
            f"SELECT sop_uid, attributes #>> '{{00280008,Value,0}}' FROM {SCHEMA}.instances"  # noqa: S608
            " WHERE project = :project AND study_uid = :study AND series_uid = :series"
            " ORDER BY number, sop_uid"
        ).bindparams(project=project, study=study_uid, series=series_uid)
    )
    out = []
    for sop, frames in rows.all():
        try:
            count = int(frames) if frames is not None else 1
        except ValueError:
            count = 1
        out.append((sop, max(1, min(count, 10_000))))
    return out


async def series_of(session: AsyncSession, project: str, study_uid: str) -> list[Series]:
    rows = await session.exec(
        select(Series)
        .where(col(Series.project) == project, col(Series.study_uid) == study_uid)
        .order_by(col(Series.number), col(Series.series_uid))
    )
    return list(rows.all())
