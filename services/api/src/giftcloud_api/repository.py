"""All SQL of the catalogue."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from giftcloud_core.events import AuditRecorded, InstanceRejected, InstancesArchived
from sqlalchemy import (
    String,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.downloads import Entry
from giftcloud_api.models import (
    SCHEMA,
    AuditRecord,
    Instance,
    Project,
    Quarantined,
    Series,
    Study,
    Subject,
)
from giftcloud_api.qido import (
    MODALITIES_IN_STUDY,
    SERIES_TAGS,
    STUDY_TAGS,
    Level,
    Match,
    Search,
)


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


def _patient_name(attributes: dict[str, Any]) -> str:
    values = attributes.get("00100010", {}).get("Value") or [{}]
    first = values[0] if isinstance(values[0], dict) else {}
    return str(first.get("Alphabetic", "")).upper()


def _split(attributes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An instance's attributes kept once per study and once per series (no bulk data)."""
    study = {t: v for t, v in attributes.items() if t in STUDY_TAGS and "BulkDataURI" not in v}
    series = {t: v for t, v in attributes.items() if t in SERIES_TAGS and "BulkDataURI" not in v}
    return study, series


async def add_instances(
    session: AsyncSession, events: list[InstancesArchived]
) -> list[dict[str, Any]]:
    """Upsert instances and their parents; a redelivered event changes nothing. The counts
    of series and studies grow by what was new (increments: right under concurrency).
    Returns the instances already here whose row describes another copy (another checksum)
    than the event: for the caller to settle by the object (:func:`replace_instance`)."""
    archived = [(e.project, i) for e in events for i in e.instances]
    subjects = {(p, i.subject): {"project": p, "label": i.subject} for p, i in archived}
    studies: dict[tuple[str, str], dict[str, Any]] = {}
    series: dict[tuple[str, str], dict[str, Any]] = {}
    instances: dict[tuple[str, str], dict[str, Any]] = {}
    for p, i in archived:
        study_attributes, series_attributes = _split(i.attributes)
        studies.setdefault(
            (p, i.study_uid),
            {
                "project": p,
                "study_uid": i.study_uid,
                "subject": i.subject,
                "study_date": i.study_date,
                "description": i.study_description,
                "attributes": study_attributes,
                "modalities": [],
                "patient_name": _patient_name(study_attributes),
            },
        )
        series.setdefault(
            (p, i.series_uid),
            {
                "project": p,
                "series_uid": i.series_uid,
                "study_uid": i.study_uid,
                "modality": i.modality,
                "description": i.series_description,
                "number": i.series_number,
                "attributes": series_attributes,
            },
        )
        instances[(p, i.sop_uid)] = {
            "project": p,
            "sop_uid": i.sop_uid,
            "series_uid": i.series_uid,
            "study_uid": i.study_uid,
            "subject": i.subject,
            "sop_class_uid": i.sop_class_uid,
            "number": i.instance_number,
            "object_key": i.object_key,
            "metadata_key": i.metadata_key,
            "attributes": i.attributes or None,
            "size": i.size,
            "sha256": i.sha256,
            "transfer_syntax_uid": i.transfer_syntax_uid,
        }
    await session.exec(insert(Subject).values(list(subjects.values())).on_conflict_do_nothing())
    await session.exec(insert(Study).values(list(studies.values())).on_conflict_do_nothing())
    new_series = await session.exec(
        insert(Series)
        .values(list(series.values()))
        .on_conflict_do_nothing()
        .returning(col(Series.project), col(Series.series_uid))
    )
    new_instances = await session.exec(
        insert(Instance)
        .values(list(instances.values()))
        .on_conflict_do_nothing()
        .returning(col(Instance.project), col(Instance.series_uid), col(Instance.sop_uid))
    )
    inserted = new_instances.all()
    added = Counter((row[0], row[1]) for row in inserted)
    known = [v for k, v in instances.items() if k not in {(row[0], row[2]) for row in inserted}]
    added_series = {tuple(row) for row in new_series.all()}
    study_growth: dict[tuple[str, str], list[Any]] = {}
    for key in sorted(added_series | set(added)):  # one order: no deadlock between writers
        row = series[key]
        count = added.get(key, 0)
        if count:
            await session.exec(
                update(Series)
                .where(col(Series.project) == key[0], col(Series.series_uid) == key[1])
                .values(instance_count=col(Series.instance_count) + count)
            )
        growth = study_growth.setdefault((key[0], row["study_uid"]), [0, 0, set()])
        growth[0] += key in added_series
        growth[1] += count
        if row["modality"]:
            growth[2].add(row["modality"])
    connection = await session.connection()
    for (project, study_uid), (n_series, n_instances, modalities) in sorted(study_growth.items()):
        await connection.execute(
            text(
                f"""UPDATE {SCHEMA}.studies SET series_count = series_count + :series,
                instance_count = instance_count + :instances,
                modalities = ARRAY(SELECT DISTINCT m FROM unnest(modalities || :modalities) m
                                   ORDER BY m)
                WHERE project = :project AND study_uid = :study"""  # noqa: S608
            ).bindparams(
                bindparam("modalities", sorted(modalities), type_=ARRAY(String)),
                series=n_series,
                instances=n_instances,
                project=project,
                study=study_uid,
            )
        )
    return await _disagreeing(session, known)


async def _disagreeing(session: AsyncSession, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    keys = [(r["project"], r["sop_uid"]) for r in rows]
    found = await session.exec(
        select(Instance.project, Instance.sop_uid, Instance.sha256).where(
            tuple_(col(Instance.project), col(Instance.sop_uid)).in_(keys)
        )
    )
    checksums = {(p, sop): sha for p, sop, sha in found.all()}
    return [r for r in rows if checksums.get((r["project"], r["sop_uid"])) != r["sha256"]]


async def replace_instance(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Describe an instance by another copy of its object (same key): its size, checksum,
    transfer syntax and metadata. Whether a row changed."""
    result = await session.exec(
        update(Instance)
        .where(
            col(Instance.project) == row["project"],
            col(Instance.sop_uid) == row["sop_uid"],
            col(Instance.object_key) == row["object_key"],
        )
        .values(
            size=row["size"],
            sha256=row["sha256"],
            transfer_syntax_uid=row["transfer_syntax_uid"],
            attributes=row["attributes"],
            metadata_key="",
        )
    )
    return bool(result.rowcount)


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


@dataclass(frozen=True)
class Found:
    """One QIDO result: a study, a series with its study, or an instance with both."""

    study: Study
    series: Series | None = None
    instance: Instance | None = None


_TABLES: dict[Level, str] = {
    "study": f"{SCHEMA}.studies",
    "series": f"{SCHEMA}.series",
    "instance": f"{SCHEMA}.instances",
}


def _column(tag: str, level: Level) -> Any:
    """The indexed column that holds the attribute at a search of ``level``, if any."""
    table: dict[Level, Any] = {"study": Study, "series": Series, "instance": Instance}
    if tag == "0020000D":
        return col(table[level].study_uid)
    if tag == "0020000E" and level != "study":
        return col(table[level].series_uid)
    return {
        "00080018": col(Instance.sop_uid),
        "00080016": col(Instance.sop_class_uid),
        "00100020": col(Study.subject),
        "00100010": col(Study.patient_name),  # upper case, as PN patterns are
        "00080020": col(Study.study_date),
        "00080060": col(Series.modality),
    }.get(tag)


def _on_column(column: Any, match: Match) -> Any:
    value = match.values
    if match.kind == "uids":
        return column.in_(value)
    if match.kind == "like":
        return column.like(value[0])
    if match.kind == "range":
        start, end = value
        parts = [column >= start] if start else []
        if end:
            parts.append(func.substr(column, 1, len(end)) <= end)
        return and_(*parts)
    return column == value[0]


_TESTS = {
    "uids": "v = ANY(:a{n})",
    "equal": "v = CAST(:a{n} AS text)",
    "like": "v LIKE CAST(:a{n} AS text)",
    # fuzzy person names: any component of the name begins with the value
    "words": "EXISTS (SELECT 1 FROM regexp_split_to_table(v, '[\\^ =]') AS w(word)"
    " WHERE word LIKE CAST(:a{n} AS text) || '%')",
    "range": "(CAST(:s{n} AS text) = '' OR v >= CAST(:s{n} AS text))"
    " AND (CAST(:e{n} AS text) = ''"
    " OR substr(v, 1, length(CAST(:e{n} AS text))) <= CAST(:e{n} AS text))",
}


def _condition(match: Match, n: int, level: Level) -> Any:
    column = _column(match.tag, level)
    if column is not None and match.kind != "words":
        return _on_column(column, match)
    if match.tag == MODALITIES_IN_STUDY:
        values = f"SELECT unnest({SCHEMA}.studies.modalities)"
    elif match.vr == "PN":  # case-insensitive, on the alphabetic form
        values = (
            "SELECT upper(e ->> 'Alphabetic') FROM jsonb_array_elements("  # noqa: S608
            f"{_TABLES[match.level]}.attributes -> CAST(:t{n} AS text) -> 'Value') AS x(e)"
        )
    else:
        values = (
            "SELECT jsonb_array_elements_text("
            f"{_TABLES[match.level]}.attributes -> CAST(:t{n} AS text) -> 'Value')"
        )
    test = _TESTS[match.kind].format(n=n)
    # only the module's own table names and tests go into the text; values are bound
    clause = text(f"EXISTS (SELECT 1 FROM ({values}) AS y(v) WHERE {test})")  # noqa: S608
    if match.tag != MODALITIES_IN_STUDY:
        clause = clause.bindparams(**{f"t{n}": match.tag})
    if match.kind == "uids":
        return clause.bindparams(bindparam(f"a{n}", list(match.values), type_=ARRAY(String)))
    if match.kind == "range":
        return clause.bindparams(**{f"s{n}": match.values[0], f"e{n}": match.values[1]})
    return clause.bindparams(**{f"a{n}": match.values[0]})


async def search(
    session: AsyncSession,
    project: str,
    query: Search,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> tuple[list[Found], bool]:
    """One page of what the search finds in ``project`` (under a study or a series, when
    given), in a stable order; and whether there is more after it."""
    same_study = and_(
        col(Study.project) == col(Series.project), col(Study.study_uid) == col(Series.study_uid)
    )
    statement: Any
    if query.level == "study":
        statement = (
            select(Study)
            .where(col(Study.project) == project)
            .order_by(col(Study.study_date), col(Study.study_uid))
        )
    elif query.level == "series":
        statement = (
            select(Series)
            .join(Study, same_study)
            .where(col(Series.project) == project)
            .order_by(col(Series.study_uid), col(Series.number), col(Series.series_uid))
        )
    else:
        statement = (
            select(Instance)
            .join(
                Series,
                and_(
                    col(Series.project) == col(Instance.project),
                    col(Series.series_uid) == col(Instance.series_uid),
                ),
            )
            .join(Study, same_study)
            .where(col(Instance.project) == project)
            .order_by(
                col(Instance.study_uid),
                col(Instance.series_uid),
                col(Instance.number),
                col(Instance.sop_uid),
            )
        )
    if study_uid is not None:
        statement = statement.where(_column("0020000D", query.level) == study_uid)
    if series_uid is not None:
        statement = statement.where(_column("0020000E", query.level) == series_uid)
    for n, match in enumerate(query.matches):
        statement = statement.where(_condition(match, n, query.level))
    statement = statement.limit(query.limit + 1).offset(query.offset)
    if query.level == "study" and query.offset:
        # far into the results: skip over keys only (the index), then read the page's rows
        keys = statement.with_only_columns(col(Study.study_uid)).subquery()
        statement = (
            select(Study)
            .where(
                col(Study.project) == project, col(Study.study_uid).in_(select(keys.c.study_uid))
            )
            .order_by(col(Study.study_date), col(Study.study_uid))
        )
    rows = list((await session.exec(statement)).all())
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    if query.level == "study":
        return [Found(row) for row in rows], more
    # each result's parents, read once (not once per row: their attributes are JSON too)
    studies = {
        s.study_uid: s
        for s in await session.exec(
            select(Study).where(
                col(Study.project) == project,
                col(Study.study_uid).in_({row.study_uid for row in rows}),
            )
        )
    }
    if query.level == "series":
        return [Found(studies[row.study_uid], row) for row in rows], more
    series = {
        s.series_uid: s
        for s in await session.exec(
            select(Series).where(
                col(Series.project) == project,
                col(Series.series_uid).in_({row.series_uid for row in rows}),
            )
        )
    }
    found = [Found(studies[i.study_uid], series[i.series_uid], i) for i in rows]
    return found, more


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
) -> list[tuple[str | None, Instance | None]]:
    """Each instance's DICOM JSON as PostgreSQL writes it (no decoding on the way), in
    order; an instance whose metadata has not moved in yet comes as its row instead."""
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
    out: list[tuple[str | None, Instance | None]] = []
    for attributes, sop in rows.all():
        if attributes is not None:
            out.append((attributes, None))
        else:
            out.append((None, await session.get(Instance, (project, sop))))
    return out


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
    ).where(col(Instance.project) == project)
    if subject is not None:
        query = query.where(col(Instance.subject) == subject)
    if study_uid is not None:
        query = query.where(col(Instance.study_uid) == study_uid)
    if series_uid is not None:
        query = query.where(col(Instance.series_uid) == series_uid)
    rows = await session.exec(
        query.order_by(
            col(Instance.subject),
            col(Instance.study_uid),
            col(Instance.series_uid),
            col(Instance.sop_uid),
        )
    )
    return [Entry(*row) for row in rows.all()]


async def unmoved(session: AsyncSession, batch: int) -> list[Instance]:
    """Instances whose metadata is still an object in the archive."""
    rows = await session.exec(
        select(Instance)
        .where(col(Instance.attributes).is_(None), col(Instance.metadata_key) != "")
        .limit(batch)
    )
    return list(rows.all())


async def set_metadata(session: AsyncSession, found: list[tuple[Instance, dict[str, Any]]]) -> None:
    """Each instance's moved metadata, and its study's and series' attributes where empty."""
    for instance, attributes in found:
        study_attributes, series_attributes = _split(attributes)
        await session.exec(
            update(Instance)
            .where(
                col(Instance.project) == instance.project,
                col(Instance.sop_uid) == instance.sop_uid,
                col(Instance.attributes).is_(None),
            )
            .values(attributes=attributes, metadata_key="")
        )
        await session.exec(
            update(Study)
            .where(
                col(Study.project) == instance.project,
                col(Study.study_uid) == instance.study_uid,
                col(Study.attributes) == cast({}, JSONB),
            )
            .values(attributes=study_attributes, patient_name=_patient_name(study_attributes))
        )
        await session.exec(
            update(Series)
            .where(
                col(Series.project) == instance.project,
                col(Series.series_uid) == instance.series_uid,
                col(Series.attributes) == cast({}, JSONB),
            )
            .values(attributes=series_attributes)
        )


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


def _browsing(project: str, chosen: StudyFilter) -> list[Any]:
    conditions = [col(Study.project) == project]
    if chosen.subject:
        escaped = chosen.subject.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(col(Study.subject).ilike(f"%{escaped}%", escape="\\"))
    if chosen.date_from:
        conditions.append(col(Study.study_date) >= chosen.date_from)
    if chosen.date_to:
        conditions.append(col(Study.study_date) <= chosen.date_to)
    if chosen.modality:
        conditions.append(literal(chosen.modality) == any_(col(Study.modalities)))
    return conditions


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


async def series_of(session: AsyncSession, project: str, study_uid: str) -> list[Series]:
    rows = await session.exec(
        select(Series)
        .where(col(Series.project) == project, col(Series.study_uid) == study_uid)
        .order_by(col(Series.number), col(Series.series_uid))
    )
    return list(rows.all())


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


async def add_quarantined(session: AsyncSession, event: InstanceRejected) -> None:
    await session.exec(
        insert(Quarantined)
        .values(
            project=event.project,
            object_key=event.object_key,
            reason=event.reason,
            upload=event.correlation_id,
            occurred_at=event.occurred_at,
        )
        .on_conflict_do_nothing()
    )


@dataclass(frozen=True)
class Flow:
    """What the archive took in lately, and what waits in quarantine."""

    last_minute: int
    last_hour: int
    quarantined: int
    latest_quarantined: list[Quarantined]


async def flow(session: AsyncSession, now: datetime, latest: int = 50) -> Flow:
    counted = await session.exec(
        select(
            func.count().filter(col(Instance.archived_at) > now - timedelta(minutes=1)),
            func.count(),
        ).where(col(Instance.archived_at) > now - timedelta(hours=1))
    )
    minute, hour = counted.one()
    total = (await session.exec(select(func.count()).select_from(Quarantined))).one()
    rows = await session.exec(
        select(Quarantined).order_by(col(Quarantined.occurred_at).desc()).limit(latest)
    )
    return Flow(int(minute), int(hour), int(total), list(rows.all()))


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
