"""A federated count question: structured predicates over an allow-listed set of catalogue
attributes, grouped by at most two of them; no free text, no SQL. The hub checks a question
when it is asked and each site checks it again before answering (a site never trusts its
hub). Counting a table from a site's catalogue is here too: pure, tested without a site."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Level = Literal["subject", "study", "series"]
Unit = Literal["subjects", "studies", "series"]
Op = Literal["eq", "in", "contains", "gte", "lte", "between"]
Value = str | int | None
#: a cell of the table: one value per grouping attribute (() for a plain count)
Key = tuple[str, ...]

_RANK: dict[Level, int] = {"subject": 0, "study": 1, "series": 2}
_UNIT_LEVEL: dict[Unit, Level] = {"subjects": "subject", "studies": "study", "series": "series"}


@dataclass(frozen=True)
class Attribute:
    name: str
    level: Level
    kind: Literal["code", "text", "number", "date"]
    ops: frozenset[str]
    #: may be a grouping attribute (dates group by year, ages by decade)
    groups: bool
    describes: str


_CODE = frozenset({"eq", "in"})
_RANGE = frozenset({"gte", "lte", "between"})

ATTRIBUTES: dict[str, Attribute] = {
    a.name: a
    for a in (
        Attribute("modality", "series", "code", _CODE, True, "the series' Modality (CT, MR...)"),
        Attribute("body_part", "series", "code", _CODE, True, "BodyPartExamined (HEAD, CHEST...)"),
        Attribute(
            "manufacturer", "series", "text", _CODE | {"contains"}, True, "the maker (Manufacturer)"
        ),
        Attribute("series_instances", "series", "number", _RANGE, False, "instances in a series"),
        Attribute("study_series", "study", "number", _RANGE, False, "series in a study"),
        Attribute(
            "study_date",
            "study",
            "date",
            _RANGE,
            True,
            "StudyDate, YYYYMMDD (as the site keeps it)",
        ),
        Attribute(
            "study_description", "study", "text", frozenset({"contains"}), False, "StudyDescription"
        ),
        Attribute(
            "age_at_study", "study", "number", _RANGE, True, "PatientAge at the study, years"
        ),
        Attribute("patient_sex", "subject", "code", _CODE, True, "PatientSex (M, F, O)"),
    )
}


class Predicate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str = Field(description="one of the allow-listed attributes")
    op: Op
    value: str | int | list[str | int]

    @model_validator(mode="before")
    @classmethod
    def _numbers(cls, data: Any) -> Any:
        """A number written as text (a command line's ``age_at_study>=40``) is a number."""
        found = ATTRIBUTES.get(str(data.get("attribute"))) if isinstance(data, dict) else None
        if found is None or found.kind != "number":
            return data
        value = data.get("value")
        return {
            **data,
            "value": [_int(v) for v in value] if isinstance(value, list) else _int(value),
        }

    @model_validator(mode="after")
    def _allowed(self) -> Predicate:
        found = ATTRIBUTES.get(self.attribute)
        if found is None:
            raise ValueError(
                f"{self.attribute!r} is not an attribute a site answers on; the attributes are: "
                + ", ".join(ATTRIBUTES)
            )
        if self.op not in found.ops:
            raise ValueError(
                f"{self.attribute} takes the operators {', '.join(sorted(found.ops))}, not {self.op}"
            )
        values = self.value if isinstance(self.value, list) else [self.value]
        listed = self.op in ("between", "in")
        if listed != isinstance(self.value, list):
            raise ValueError(
                f"{self.op} takes a list of values" if listed else f"{self.op} takes one value"
            )
        if self.op == "between" and len(values) != 2:
            raise ValueError("between takes two values: the lowest and the highest")
        if not 1 <= len(values) <= 50:
            raise ValueError("in takes 1 to 50 values")
        for value in values:
            _check_value(found, value)
        return self


def _int(value: object) -> object:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _check_value(attribute: Attribute, value: str | int) -> None:
    if attribute.kind == "number" and not isinstance(value, int):
        raise ValueError(f"{attribute.name} takes whole numbers")
    if attribute.kind == "date" and not (
        isinstance(value, str) and len(value) == 8 and value.isdigit()
    ):
        raise ValueError(f"{attribute.name} takes dates as YYYYMMDD")
    if attribute.kind in ("code", "text") and not (isinstance(value, str) and 0 < len(value) <= 64):
        raise ValueError(f"{attribute.name} takes text of 1 to 64 characters")


class CountQuestion(BaseModel):
    """How many subjects (studies, series) match every predicate, in each cell of the
    grouping attributes' values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    criteria: list[Predicate] = Field(default_factory=list, max_length=20)
    group_by: list[str] = Field(default_factory=list, max_length=2)
    unit: Unit = "subjects"
    #: differential privacy: each count gets discrete Laplace noise for this epsilon,
    #: spent from the asker's budget at each site (None: no noise)
    epsilon: float | None = Field(default=None, gt=0, le=10)
    #: a smallest cell the asker wants; each site uses the larger of this and its own
    k: int | None = Field(default=None, ge=1, le=1000)

    @model_validator(mode="after")
    def _groups(self) -> CountQuestion:
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("group_by names an attribute twice")
        for name in self.group_by:
            found = ATTRIBUTES.get(name)
            if found is None or not found.groups:
                raise ValueError(
                    f"{name!r} cannot group a count; group by: "
                    + ", ".join(a.name for a in ATTRIBUTES.values() if a.groups)
                )
        return self

    def digest(self) -> str:
        """The same question, however written, has the same digest (a site answers it the
        same way twice)."""
        canonical = self.model_dump(mode="json")
        canonical["criteria"] = sorted(json.dumps(c, sort_keys=True) for c in canonical["criteria"])
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()

    def sensitivity(self) -> int | None:
        """Cells one counted unit can fall into: 1 when every grouping attribute is of the
        unit's level or above it (a subject has one sex), None when a unit may be in several
        (a subject's studies of different years): noise cannot be calibrated then."""
        rank = _RANK[_UNIT_LEVEL[self.unit]]
        if all(_RANK[ATTRIBUTES[name].level] <= rank for name in self.group_by):
            return 1
        return None


@dataclass(frozen=True)
class Fact:
    """One series of the site's catalogue with its study's and subject's attributes."""

    subject: str
    study: str
    series: str
    values: Mapping[str, Value]

    def unit(self, unit: Unit) -> str:
        return {"subjects": self.subject, "studies": self.study, "series": self.series}[unit]


@dataclass(frozen=True)
class Table:
    """Distinct units per cell (only cells that hold one) and in all."""

    cells: dict[Key, int]
    total: int
    #: the series counted (kept at the site: a job may run on them by the question's id)
    series: tuple[str, ...] = ()

    def digest(self) -> str:
        rows = sorted([list(key), count] for key, count in self.cells.items())
        return hashlib.sha256(json.dumps([rows, self.total]).encode()).hexdigest()


def matches(predicate: Predicate, value: Value) -> bool:
    """An unknown value (the attribute absent) matches no predicate."""
    if value is None:
        return False
    wanted = predicate.value
    if predicate.op == "contains":
        return str(wanted).casefold() in str(value).casefold()
    if predicate.op == "eq":
        return _same(value, wanted)
    if predicate.op == "in":
        return isinstance(wanted, list) and any(_same(value, w) for w in wanted)
    low, high = wanted if isinstance(wanted, list) else (wanted, wanted)
    if predicate.op == "gte":
        high = value
    elif predicate.op == "lte":
        low = value
    try:
        return low <= value <= high  # type: ignore[operator]
    except TypeError:  # a value of another kind than the attribute's: no match
        return False


def _same(value: str | int, wanted: object) -> bool:
    if isinstance(value, str) and isinstance(wanted, str):
        return value.casefold() == wanted.casefold()
    return value == wanted


def cell_value(name: str, value: Value) -> str:
    """How a value is shown in a cell: dates by year, ages by decade."""
    if value is None or value == "":
        return "unknown"
    kind = ATTRIBUTES[name].kind
    if kind == "date":
        return str(value)[:4]
    if kind == "number" and isinstance(value, int):
        low = value // 10 * 10
        return f"{low}-{low + 9}"
    return str(value).upper() if kind == "code" else str(value)


def chosen(criteria: Iterable[Predicate], facts: Iterable[Fact]) -> list[Fact]:
    """The series (facts) every predicate holds for: a count's and a job's cohort."""
    criteria = list(criteria)
    return [f for f in facts if all(matches(p, f.values.get(p.attribute)) for p in criteria)]


def tabulate(question: CountQuestion, facts: Iterable[Fact]) -> Table:
    """Count the distinct units of the matching series, per cell and in all."""
    cells: dict[Key, set[str]] = defaultdict(set)
    everyone: set[str] = set()
    series = chosen(question.criteria, facts)
    for fact in series:
        unit = fact.unit(question.unit)
        everyone.add(unit)
        cells[tuple(cell_value(n, fact.values.get(n)) for n in question.group_by)].add(unit)
    cohort = tuple(sorted({fact.series for fact in series}))
    if not question.group_by:
        return Table({(): len(everyone)}, len(everyone), cohort)
    return Table({key: len(units) for key, units in cells.items()}, len(everyone), cohort)
