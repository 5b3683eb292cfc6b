"""Questions are structured and allow-listed; a count is of distinct units per cell."""

import pytest
from giftcloud_api.federation.catalogue import age
from giftcloud_api.federation.criteria import CountQuestion, Fact, tabulate
from pydantic import ValidationError


def _fact(subject: str, study: str, series: str, **values: object) -> Fact:
    return Fact(subject, study, series, values)  # type: ignore[arg-type]


FACTS = [
    _fact("s1", "t1", "a", modality="CT", patient_sex="F", age_at_study=44, study_date="20200105"),
    _fact("s1", "t1", "b", modality="MR", patient_sex="F", age_at_study=44, study_date="20200105"),
    _fact("s2", "t2", "c", modality="CT", patient_sex="M", age_at_study=61, study_date="20210101"),
    _fact("s3", "t3", "d", modality="CT", patient_sex=None, age_at_study=None, study_date=None),
]


def test_counts_distinct_subjects_per_cell() -> None:
    question = CountQuestion.model_validate(
        {
            "criteria": [{"attribute": "modality", "op": "eq", "value": "ct"}],
            "group_by": ["patient_sex"],
        }
    )
    table = tabulate(question, FACTS)
    assert table.cells == {("F",): 1, ("M",): 1, ("unknown",): 1} and table.total == 3


def test_ranges_dates_by_year_and_ages_by_decade() -> None:
    question = CountQuestion.model_validate(
        {
            "criteria": [{"attribute": "age_at_study", "op": "between", "value": [40, 70]}],
            "group_by": ["study_date", "age_at_study"],
            "unit": "series",
        }
    )
    table = tabulate(question, FACTS)
    assert table.cells == {("2020", "40-49"): 2, ("2021", "60-69"): 1}


def test_a_plain_count_of_nothing_is_zero() -> None:
    question = CountQuestion.model_validate(
        {"criteria": [{"attribute": "modality", "op": "in", "value": ["PT"]}]}
    )
    assert tabulate(question, FACTS).cells == {(): 0}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            {"criteria": [{"attribute": "PatientName", "op": "eq", "value": "x"}]},
            "not an attribute",
        ),
        (
            {"criteria": [{"attribute": "modality", "op": "gte", "value": "CT"}]},
            "takes the operators",
        ),
        (
            {"criteria": [{"attribute": "age_at_study", "op": "gte", "value": "forty"}]},
            "whole numbers",
        ),
        ({"criteria": [{"attribute": "study_date", "op": "gte", "value": "2020"}]}, "YYYYMMDD"),
        ({"criteria": [{"attribute": "modality", "op": "in", "value": "CT"}]}, "list of values"),
        ({"group_by": ["study_description"]}, "cannot group"),
        ({"group_by": ["modality", "modality"]}, "twice"),
        ({"sql": "select 1"}, "Extra inputs"),
    ],
)
def test_anything_else_is_refused_with_the_reason(body: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        CountQuestion.model_validate(body)


def test_the_same_question_written_otherwise_has_one_digest() -> None:
    one = CountQuestion.model_validate(
        {
            "criteria": [
                {"attribute": "modality", "op": "eq", "value": "CT"},
                {"attribute": "patient_sex", "op": "eq", "value": "F"},
            ]
        }
    )
    two = CountQuestion.model_validate({"criteria": list(reversed(one.model_dump()["criteria"]))})
    assert one.digest() == two.digest()


def test_noise_needs_cells_a_unit_falls_in_once() -> None:
    assert CountQuestion(group_by=["patient_sex"]).sensitivity() == 1
    assert CountQuestion(group_by=["modality"]).sensitivity() is None
    assert CountQuestion(group_by=["modality"], unit="series").sensitivity() == 1


def test_patient_age_in_years() -> None:
    assert [age(v) for v in ("045Y", "018M", "010W", "003D", "", "4Y", None)] == [
        45,
        1,
        0,
        0,
        None,
        None,
        None,
    ]
