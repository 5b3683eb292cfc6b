"""The site's catalogue as facts a count is taken over: one per series, with the values of
the allow-listed attributes (giftcloud_api.federation.criteria.ATTRIBUTES) read from it,
its study and its subject. Only those values are read: the database picks them out of the
stored DICOM JSON."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.federation.criteria import Fact
from giftcloud_api.models import Series, Study

_SERIES_TABLE: Any = Series.__table__  # type: ignore[attr-defined]
_STUDY_TABLE: Any = Study.__table__  # type: ignore[attr-defined]
_SERIES, _STUDY = _SERIES_TABLE.c, _STUDY_TABLE.c


def _first(attributes: Any, tag: str) -> Any:
    """The first value of ``tag`` in a DICOM JSON column, as text (NULL when absent)."""
    return attributes[tag]["Value"][0].astext


async def facts(session: AsyncSession, project: str) -> list[Fact]:
    query = (
        select(
            _STUDY.subject,
            _STUDY.study_uid,
            _SERIES.series_uid,
            _SERIES.modality,
            _first(_SERIES.attributes, "00180015"),
            _first(_SERIES.attributes, "00080070"),
            _SERIES.instance_count,
            _STUDY.series_count,
            _STUDY.study_date,
            _STUDY.description,
            _first(_STUDY.attributes, "00101010"),
            _first(_STUDY.attributes, "00100040"),
        )
        .select_from(
            _SERIES_TABLE.join(
                _STUDY_TABLE,
                and_(_STUDY.project == _SERIES.project, _STUDY.study_uid == _SERIES.study_uid),
            )
        )
        .where(_SERIES.project == project)
    )
    rows = (await session.execute(query)).all()
    return [
        Fact(
            subject=subject,
            study=study,
            series=series,
            values={
                "modality": modality or None,
                "body_part": _clean(body_part),
                "manufacturer": _clean(maker),
                "series_instances": instances,
                "study_series": series_count,
                "study_date": date or None,
                "study_description": description or None,
                "age_at_study": age(_clean(patient_age)),
                "patient_sex": _clean(sex),
            },
        )
        for (
            subject,
            study,
            series,
            modality,
            body_part,
            maker,
            instances,
            series_count,
            date,
            description,
            patient_age,
            sex,
        ) in rows
    ]


def _clean(value: str | None) -> str | None:
    return (value or "").strip() or None


def age(value: str | None) -> int | None:
    """PatientAge (AS: ``045Y``, ``006M``, ``010W``, ``003D``) in whole years."""
    if not value or len(value) != 4 or not value[:3].isdigit():
        return None
    number, unit = int(value[:3]), value[3].upper()
    per_year = {"Y": 1, "M": 12, "W": 52, "D": 365}.get(unit)
    return None if per_year is None else number // per_year
