"""C-FIND and the selection of C-GET and C-MOVE (PS3.4 Annex C) as QIDO-RS searches: an
identifier's keys with a value are its matches, its empty keys what it asks returned —
matched and returned by the same code as DICOMweb's (giftcloud_api.dicomweb), in every
project the caller may read. PATIENT level (Patient Root) is the studies' patients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

from giftcloud_api.catalogue.levels import LEVELS, Level
from giftcloud_api.dicomweb.params import Search, level_of, parse, vr_of
from giftcloud_api.dicomweb.results import result, tags_of
from giftcloud_api.dicomweb.search import Found, find

#: PS3.4's level names and the catalogue's (PATIENT is searched as studies)
LEVEL_OF: dict[str, Level] = {
    "PATIENT": "study",
    "STUDY": "study",
    "SERIES": "series",
    "IMAGE": "instance",
}
#: what a PATIENT-level answer may carry (the Patient module; the rest are the studies')
PATIENT_KEYS = frozenset(
    {"00100010", "00100020", "00100021", "00100030", "00100032", "00100040", "00080005"}
)
#: never a match key: how the identifier is read, not what it asks
_NOT_KEYS = frozenset({"00080052", "00080005", "00080054", "00080056"})
#: the most a C-FIND answers (its pending responses), across projects
MOST = 10_000


class IdentifierError(ValueError):
    """An identifier that cannot be searched: the reason, for the Error Comment."""


@dataclass(frozen=True)
class Asked:
    """An identifier read: the level (PS3.4's name), the QIDO parameters, the keys asked."""

    level: str
    params: list[tuple[str, str]]
    keys: tuple[str, ...]

    @property
    def catalogue_level(self) -> Level:
        return LEVEL_OF[self.level]


def asked(identifier: Dataset) -> Asked:
    """What an identifier asks (IdentifierError when it cannot be read)."""
    level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    if level not in LEVEL_OF:
        raise IdentifierError(
            f"Query/Retrieve Level {level!r} is not PATIENT, STUDY, SERIES or IMAGE"
        )
    depth = LEVELS.index(LEVEL_OF[level])
    params: list[tuple[str, str]] = []
    keys: list[str] = []
    for element in identifier:
        tag = f"{element.tag:08X}"
        if element.tag.is_private or element.tag.element == 0 or tag in _NOT_KEYS:
            continue
        keys.append(tag)
        if element.VR == "SQ" or LEVELS.index(level_of(tag)) > depth:
            continue  # returned empty: a sequence, or a key below the level (no match)
        if level == "PATIENT" and tag not in PATIENT_KEYS:
            continue
        value = element.value
        if value is None or value == "" or (isinstance(value, list | tuple) and not value):
            params.append(("includefield", tag))
            continue
        text = "\\".join(str(v) for v in value) if element.VM > 1 else str(value)
        params.append((keyword_for_tag(element.tag) or tag, text))
    return Asked(level, params, tuple(keys))


async def searched(
    db: Database, projects: list[str], question: Asked, max_limit: int
) -> AsyncIterator[tuple[str, Found, Search]]:
    """Every result in ``projects`` (each with its project), page by page; one more than
    :data:`MOST` at most (the caller refuses so many)."""
    given = 0
    for project in projects:
        offset = 0
        while True:
            params = [*question.params, ("limit", str(max_limit)), ("offset", str(offset))]
            try:
                search = parse(params, question.catalogue_level, max_limit)
            except BadRequest as exc:
                raise IdentifierError(exc.message) from None
            found, more = await find(db, project, search)
            for one in found:
                yield project, one, search
                given += 1
                if given > MOST:
                    return
            if not more:
                break
            offset += len(found)


def answer(found: Found, search: Search, question: Asked, retrieve_ae: str) -> Dataset:
    """A C-FIND response's identifier: the keys asked (empty where not held), the level,
    where to retrieve it."""
    values = result(found, search, tags_of(search, ()) | set(question.keys), "")
    keys = [t for t in question.keys if question.level != "PATIENT" or t in PATIENT_KEYS]
    wanted: dict[str, Any] = {tag: values.get(tag) or {"vr": "UN"} for tag in keys}
    wanted = {tag: value for tag, value in wanted.items() if "BulkDataURI" not in value}
    ds = Dataset.from_json({tag: _known_vr(tag, value) for tag, value in wanted.items()})
    ds.QueryRetrieveLevel = question.level
    if "00080054" in question.keys:
        ds.RetrieveAETitle = retrieve_ae
    return ds


def _known_vr(tag: str, value: dict[str, Any]) -> dict[str, Any]:
    """An attribute the catalogue does not hold comes back empty, with its own VR."""
    return value if value.get("vr") not in (None, "UN") else {**value, "vr": vr_of(tag)}


def patients(answers: list[Dataset]) -> list[Dataset]:
    """PATIENT level: one answer per patient (by Patient ID and name), its studies'."""
    seen: dict[tuple[str, str], Dataset] = {}
    for ds in answers:
        key = (str(ds.get("PatientID", "")), str(ds.get("PatientName", "")))
        if key not in seen:
            seen[key] = ds
    return list(seen.values())
