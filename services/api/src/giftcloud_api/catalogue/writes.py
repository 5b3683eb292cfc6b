"""What the catalogue records: projects as auth announces them, instances as archive
announces them (with their studies, series and subjects), what was quarantined."""

from __future__ import annotations

from collections import Counter
from typing import Any

from giftcloud_core.events import InstanceRejected, InstancesArchived, QuarantineCleared
from sqlalchemy import (
    String,
    bindparam,
    delete,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.catalogue.levels import (
    SERIES_TAGS,
    STUDY_TAGS,
)
from giftcloud_api.models import (
    SCHEMA,
    Instance,
    Project,
    Quarantined,
    Series,
    Study,
    Subject,
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
            "attributes": i.attributes,
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
        )
    )
    return bool(result.rowcount)


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


async def clear_quarantined(session: AsyncSession, event: QuarantineCleared) -> None:
    await session.exec(
        delete(Quarantined).where(
            col(Quarantined.project) == event.project,
            col(Quarantined.object_key).in_(event.object_keys),
        )
    )
