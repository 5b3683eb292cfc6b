"""QIDO-RS in SQL: each match of a search (PS3.18 §8.3.4) as a condition on the catalogue's
columns or on the DICOM JSON it keeps, at the level searched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from giftcloud_core.db import Database
from sqlalchemy import (
    String,
    and_,
    bindparam,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.catalogue.levels import MODALITIES_IN_STUDY, Level
from giftcloud_api.dicomweb.params import Match, Search
from giftcloud_api.models import (
    SCHEMA,
    Instance,
    Series,
    Study,
)


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


async def find(
    db: Database,
    project: str,
    query: Search,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> tuple[list[Found], bool]:
    """What a search finds (at most its limit), and whether there is more."""
    async with db.session() as session:
        return await search(session, project, query, study_uid, series_uid)
