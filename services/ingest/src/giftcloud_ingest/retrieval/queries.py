"""What a retrieval asks the PACS: study-level keys of the Study Root model, checked
one by one (from JSON or from a CSV whose header names the keys)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from giftcloud_core.errors import BadRequest
from giftcloud_dicom.uid import uid_problem
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_ingest.models import RetrievalQuery

#: the keys a query may hold (PS3.4 C.6.2.1: study-level keys of the Study Root model)
QUERY_KEYS = ("PatientID", "AccessionNumber", "StudyInstanceUID", "StudyDate", "ModalitiesInStudy")
DATE_RANGE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")
#: the most queries one retrieval holds
MAX_QUERIES = 10_000


def check_query(query: dict[str, Any], where: str) -> dict[str, str]:
    """A query's keys, checked: 400 naming ``where`` and what is wrong."""
    if not isinstance(query, dict) or not query:
        raise BadRequest(f"{where}: a query names at least one of {', '.join(QUERY_KEYS)}")
    keys: dict[str, str] = {}
    for key, value in query.items():
        if key not in QUERY_KEYS:
            raise BadRequest(f"{where}: {key!r} is not a query key; use {', '.join(QUERY_KEYS)}")
        text = str(value).strip()
        if not text or len(text) > 64 or any(ord(c) < 0x20 for c in text):
            raise BadRequest(f"{where}: {key} must be 1 to 64 printable characters")
        if key == "StudyDate" and (not DATE_RANGE.match(text) or text == "-"):
            raise BadRequest(f"{where}: StudyDate is YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
        if key == "StudyInstanceUID" and (problem := uid_problem(text)) is not None:
            raise BadRequest(f"{where}: StudyInstanceUID: {problem}")
        if key != "ModalitiesInStudy" and ("\\" in text or "*" in text or "?" in text):
            raise BadRequest(f"{where}: {key} takes one value, no wildcard")
        keys[key] = text
    return keys


def queries_from_csv(text: str) -> list[dict[str, str]]:
    """Queries from a CSV whose header row names query keys (AccessionNumber, PatientID, ...):
    one query a row, empty cells left out."""
    rows = list(csv.reader(io.StringIO(text)))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise BadRequest("the CSV is empty")
    header = [cell.strip().lstrip("\ufeff") for cell in rows[0]]
    unknown = [h for h in header if h not in QUERY_KEYS]
    if unknown:
        raise BadRequest(
            f"the CSV's header row names {unknown[0]!r}; it names query keys:"
            f" {', '.join(QUERY_KEYS)} (e.g. a single column AccessionNumber)"
        )
    queries = []
    for number, row in enumerate(rows[1:], start=2):
        query = {h: cell.strip() for h, cell in zip(header, row, strict=False) if cell.strip()}
        queries.append(check_query(query, f"CSV row {number}"))
    return queries


async def queries_of(session: AsyncSession, retrieval_id: str) -> list[RetrievalQuery]:
    """A retrieval's queries, in the order they were given."""
    found = await session.exec(
        select(RetrievalQuery)
        .where(RetrievalQuery.retrieval_id == retrieval_id)
        .order_by(col(RetrievalQuery.index))
    )
    return list(found.all())
