"""The site's catalogue as facts a count is taken over: one per series, with the values of
the allow-listed attributes (giftcloud_api.federation.criteria.ATTRIBUTES) read from it,
its study and its subject."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.federation.criteria import Fact, Value
from giftcloud_api.models import Series, Study


async def facts(session: AsyncSession, project: str) -> list[Fact]:
    query = (
        select(Series, Study)
        .join(
            Study,
            (col(Study.project) == col(Series.project))
            & (col(Study.study_uid) == col(Series.study_uid)),
        )
        .where(Series.project == project)
    )
    return [_fact(series, study) for series, study in (await session.exec(query)).all()]


def _fact(series: Series, study: Study) -> Fact:
    values: dict[str, Value] = {
        "modality": series.modality or None,
        "body_part": _first(series.attributes, "00180015"),
        "manufacturer": _first(series.attributes, "00080070"),
        "series_instances": series.instance_count,
        "study_series": study.series_count,
        "study_date": study.study_date or None,
        "study_description": study.description or None,
        "age_at_study": age(_first(study.attributes, "00101010")),
        "patient_sex": _first(study.attributes, "00100040"),
    }
    return Fact(
        subject=study.subject, study=study.study_uid, series=series.series_uid, values=values
    )


def _first(attributes: dict[str, Any], tag: str) -> str | None:
    values = attributes.get(tag, {}).get("Value") or []
    return str(values[0]).strip() or None if values else None


def age(value: str | None) -> int | None:
    """PatientAge (AS: ``045Y``, ``006M``, ``010W``, ``003D``) in whole years."""
    if not value or len(value) != 4 or not value[:3].isdigit():
        return None
    number, unit = int(value[:3]), value[3].upper()
    per_year = {"Y": 1, "M": 12, "W": 52, "D": 365}.get(unit)
    return None if per_year is None else number // per_year
