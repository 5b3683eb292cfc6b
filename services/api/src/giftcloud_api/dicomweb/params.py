"""QIDO-RS query parameters (PS3.18 §8.3.4, §10.6.1): what to match and what to return.

Pure: a query string in, a :class:`Search` out, or :class:`BadRequest` with the reason.
Every parameter is either used or refused; none is ignored.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

from giftcloud_core.errors import BadRequest
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from giftcloud_api.catalogue.levels import (
    COMPUTED,
    COMPUTED_MATCHABLE,
    LEVELS,
    MODALITIES_IN_STUDY,
    SERIES_TAGS,
    STUDY_TAGS,
    Level,
)

#: the attributes every result carries: PS3.18 Tables 10.6.3-3, -4 and -5
RETURN_KEYS: dict[Level, tuple[str, ...]] = {
    "study": (
        "00080005",
        "00080020",
        "00080030",
        "00080050",
        "00080056",
        "00080061",
        "00080090",
        "00080201",
        "00081190",
        "00100010",
        "00100020",
        "00100030",
        "00100040",
        "0020000D",
        "00200010",
        "00201206",
        "00201208",
    ),
    "series": (
        "00080005",
        "00080060",
        "00080201",
        "0008103E",
        "00081190",
        "0020000E",
        "00200011",
        "00201209",
        "00400244",
        "00400245",
        "00400275",
    ),
    "instance": (
        "00080005",
        "00080016",
        "00080018",
        "00080056",
        "00080201",
        "00081190",
        "00200013",
        "00280010",
        "00280011",
        "00280100",
        "00280008",
    ),
}

#: value representations that hold bulk data or nested data sets: never matched
UNMATCHABLE_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UN"})
PARAMETERS = frozenset({"limit", "offset", "fuzzymatching", "includefield"})
WARNING_CUT = (
    '299 giftcloud "The number of results exceeded the maximum supported by the server.'
    ' Additional results can be requested."'
)
_DATE = re.compile(r"\d{8}")
_TIME = re.compile(r"([01]\d|2[0-3])([0-5]\d(([0-5]\d|60)(\.\d{1,6})?)?)?")
_DATETIME = re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?")
_UID = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*")
_TAG = re.compile(r"[0-9A-Fa-f]{8}")


def level_of(tag: str) -> Level:
    if tag in STUDY_TAGS or tag in COMPUTED["study"] - COMPUTED["instance"]:
        return "study"
    if tag in SERIES_TAGS or tag in COMPUTED["series"] - COMPUTED["instance"]:
        return "series"
    return "instance"


@functools.lru_cache(maxsize=4096)
def vr_of(tag: str) -> str:
    """The attribute's VR from the data dictionary ('UN' for one it does not know)."""
    if tag == MODALITIES_IN_STUDY:
        return "CS"
    try:
        return str(dictionary_VR(int(tag, 16))).split(" ")[0]
    except KeyError:
        return "UN"


@dataclass(frozen=True)
class Match:
    """One attribute to match. ``kind`` says how ``values`` are read:

    - ``uids``: any of the UIDs;
    - ``range``: ``(start, end)``, either may be empty (open);
    - ``like``: a SQL LIKE pattern made from ``*`` and ``?``;
    - ``equal``: the value itself;
    - ``words``: (fuzzy person-name matching) a LIKE pattern that any component of the
      name must start with, case-insensitively.
    """

    tag: str
    vr: str
    level: Level
    kind: Literal["uids", "range", "like", "equal", "words"]
    values: tuple[str, ...]

    @property
    def keyword(self) -> str:
        return keyword_for_tag(int(self.tag, 16)) or self.tag


@dataclass(frozen=True)
class Search:
    level: Level
    matches: tuple[Match, ...]
    #: the attributes to return beyond the required ones (``all``: every one kept)
    include: frozenset[str]
    include_all: bool
    limit: int
    offset: int
    #: the page size is the server's maximum, not what was asked: a cut result says so
    capped: bool = False


def _tag(name: str, what: str) -> str:
    """A keyword or an eight-digit hex tag, as the tag in upper-case hex."""
    if "." in name:
        raise BadRequest(f"{what} {name!r}: nested (sequence) attributes are not supported")
    if _TAG.fullmatch(name):
        return name.upper()
    tag = tag_for_keyword(name)
    if tag is None:
        raise BadRequest(f"{what} {name!r}: not a DICOM attribute keyword or tag")
    return f"{tag:08X}"


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _range(name: str, value: str, vr: str) -> tuple[str, str]:
    """``(start, end)`` of a single value (both the same) or a range ``from-to``."""
    pattern = {"DA": _DATE, "TM": _TIME, "DT": _DATETIME}[vr]
    if vr == "DT" and pattern.fullmatch(value):  # a DT's UTC offset may hold a '-'
        return (value, value)
    start, sep, end = value.partition("-")
    for part in (start, end):
        if part and pattern.fullmatch(part) is None:
            expected = {"DA": "YYYYMMDD", "TM": "HHMMSS[.FFFFFF]", "DT": "YYYYMMDDHHMMSS"}[vr]
            raise BadRequest(f"{name}={value!r}: a {vr} is {expected}, or a range 'from-to'")
    if sep and not (start or end):
        raise BadRequest(f"{name}={value!r}: a range needs at least one end")
    return (start, end) if sep else (start, start)


def _match(name: str, tag: str, raw: str, level: Level, fuzzy: bool) -> Match | None:
    """The match for one ``{attribute}={value}``; None for an empty value (universal
    matching: the attribute is returned, everything matches)."""
    vr = vr_of(tag)
    if vr in UNMATCHABLE_VRS:
        raise BadRequest(f"{name}: attributes of VR {vr} cannot be matched")
    if "\x00" in raw:
        raise BadRequest(f"{name}: a value may not hold a NUL character")
    if raw == "":
        return None
    if any(tag in computed for computed in COMPUTED.values()) and tag not in COMPUTED_MATCHABLE:
        raise BadRequest(f"{name} is computed by the server and cannot be matched")
    own = level_of(tag)
    if LEVELS.index(own) > LEVELS.index(level):
        raise BadRequest(
            f"{name} is {'an' if own == 'instance' else 'a'} {own}-level attribute:"
            f" a {level}-level search cannot match it (search the {own} resource instead)"
        )
    if vr == "UI":
        uids = tuple(u for u in re.split(r"[\\,]", raw) if u)
        for uid in uids:
            if len(uid) > 64 or _UID.fullmatch(uid) is None:
                raise BadRequest(f"{name}: {uid!r} is not a UID (PS3.5 §9)")
        return Match(tag, vr, own, "uids", uids)
    if vr in ("DA", "TM", "DT"):
        start, end = _range(name, raw, vr)
        return Match(tag, vr, own, "range", (start, end))
    if vr == "PN":
        pattern = _like(raw.upper())
        if fuzzy:
            return Match(tag, vr, own, "words", (pattern,))
        return Match(tag, vr, own, "like", (pattern,))
    if "*" in raw or "?" in raw:
        return Match(tag, vr, own, "like", (_like(raw),))
    return Match(tag, vr, own, "equal", (raw,))


def _int(name: str, values: list[str], low: int, high: int, default: int) -> int:
    if not values or values == [""]:
        return default
    if len(values) > 1:
        raise BadRequest(f"{name} given {len(values)} times")
    try:
        number = int(values[0])
    except ValueError:
        raise BadRequest(f"{name}={values[0]!r}: not a whole number") from None
    if not low <= number <= high:
        raise BadRequest(f"{name}={number}: must be from {low} to {high}")
    return number


def parse(params: list[tuple[str, str]], level: Level, max_limit: int) -> Search:
    """The search a query string asks for at a resource of ``level``."""
    by_name: dict[str, list[str]] = {}
    for name, value in params:
        by_name.setdefault(name, []).append(value)
    fuzzy_values = by_name.pop("fuzzymatching", [])
    if any(v not in ("true", "false") for v in fuzzy_values) or len(fuzzy_values) > 1:
        raise BadRequest("fuzzymatching is 'true' or 'false', once")
    fuzzy = fuzzy_values == ["true"]
    asked = _int("limit", by_name.pop("limit", []), 1, 2**31 - 1, 0)
    limit = min(asked, max_limit) if asked else max_limit
    offset = _int("offset", by_name.pop("offset", []), 0, 2**31 - 1, 0)
    include: set[str] = set()
    include_all = False
    for value in by_name.pop("includefield", []):
        for field in (f.strip() for f in value.split(",")):
            if field == "all":
                include_all = True
            elif field:
                include.add(_tag(field, "includefield"))
    matches: list[Match] = []
    for name, values in by_name.items():
        tag = _tag(name, "query key")
        if len(values) > 1:
            raise BadRequest(f"{name} given {len(values)} times: give one value (a list for UIDs)")
        found = _match(name, tag, values[0], level, fuzzy)
        include.add(tag)  # a matched key is returned whatever its level
        if found is not None:
            matches.append(found)
    capped = not asked or asked > max_limit
    return Search(level, tuple(matches), frozenset(include), include_all, limit, offset, capped)


def element(vr: str, value: Any) -> dict[str, Any]:
    """A DICOM JSON attribute: present values, or the VR alone for an empty one."""
    if value in (None, "", []):
        return {"vr": vr}
    return {"vr": vr, "Value": value if isinstance(value, list) else [value]}


def empty(tag: str) -> dict[str, Any]:
    return {"vr": vr_of(tag)}


def kept(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes a search may return: no bulk data."""
    return {
        tag: value
        for tag, value in attributes.items()
        if "BulkDataURI" not in value and "InlineBinary" not in value
    }
