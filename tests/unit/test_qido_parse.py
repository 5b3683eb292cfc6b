"""QIDO-RS query strings into searches: every parameter used or refused with a reason."""

from urllib.parse import parse_qsl

import pytest
from giftcloud_api.dicomweb.params import Match, level_of, parse
from giftcloud_core.errors import BadRequest
from hypothesis import given
from hypothesis import strategies as st


def _parse(query: str, level: str = "study", max_limit: int = 100):  # type: ignore[no-untyped-def]
    return parse(parse_qsl(query, keep_blank_values=True), level, max_limit)  # type: ignore[arg-type]


def test_keywords_and_tags_name_the_same_attribute() -> None:
    assert _parse("PatientName=DOE*").matches == _parse("00100010=DOE*").matches
    assert _parse("00100010=x").matches[0].tag == "00100010"
    assert _parse("0008103e=x", "series").matches[0].tag == "0008103E"
    with pytest.raises(BadRequest, match="VR UN"):  # a tag the dictionary does not know
        _parse("00091001=x", "instance")


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("StudyInstanceUID=1.2,1.3", Match("0020000D", "UI", "study", "uids", ("1.2", "1.3"))),
        ("StudyInstanceUID=1.2\\1.3", Match("0020000D", "UI", "study", "uids", ("1.2", "1.3"))),
        ("StudyDate=20200101", Match("00080020", "DA", "study", "range", ("20200101",) * 2)),
        ("StudyDate=20200101-", Match("00080020", "DA", "study", "range", ("20200101", ""))),
        ("StudyTime=1030-1200", Match("00080030", "TM", "study", "range", ("1030", "1200"))),
        ("AccessionNumber=A_1%", Match("00080050", "SH", "study", "equal", ("A_1%",))),
        ("AccessionNumber=A_?*", Match("00080050", "SH", "study", "like", ("A\\__%",))),
        ("PatientName=doe^j*", Match("00100010", "PN", "study", "like", ("DOE^J%",))),
        ("ModalitiesInStudy=CT", Match("00080061", "CS", "study", "equal", ("CT",))),
    ],
)
def test_matching_by_value_representation(query: str, match: Match) -> None:
    assert _parse(query).matches == (match,)


def test_fuzzy_person_names_match_by_word() -> None:
    (match,) = _parse("PatientName=do&fuzzymatching=true").matches
    assert match.kind == "words" and match.values == ("DO",)


def test_a_datetime_keeps_its_utc_offset() -> None:
    (match,) = _parse("AcquisitionDateTime=20200101120000-0500", "instance").matches
    assert match.values == ("20200101120000-0500",) * 2


def test_an_empty_value_returns_the_attribute_and_matches_everything() -> None:
    search = _parse("AccessionNumber=&includefield=StudyDescription,00081060")
    assert search.matches == ()
    assert search.include == {"00080050", "00081030", "00081060"}


def test_limit_is_cut_to_the_maximum_and_says_so() -> None:
    assert (_parse("").limit, _parse("").capped) == (100, True)
    assert (_parse("limit=20").limit, _parse("limit=20").capped) == (20, False)
    assert (_parse("limit=500").limit, _parse("limit=500").capped) == (100, True)
    assert _parse("offset=7").offset == 7


def test_parent_levels_match_at_child_levels_and_not_the_other_way() -> None:
    assert _parse("PatientID=X&StudyDate=20200101", "instance").matches
    assert _parse("Modality=CT", "series").matches[0].level == "series"
    with pytest.raises(BadRequest, match="series-level"):
        _parse("Modality=CT", "study")
    with pytest.raises(BadRequest, match="an instance-level"):
        _parse("Rows=512", "series")


@pytest.mark.parametrize(
    "query",
    [
        "Nonsense=1",
        "StudyDate=2020",
        "StudyTime=25",
        "limit=1.5",
        "offset=-2",
        "fuzzymatching=1",
        "StudyInstanceUID=1..2",
        "StudyInstanceUID=" + "1." * 40 + "1",
        "PatientID=\x00",
        "ReferencedStudySequence=x",
        "PatientID=a&PatientID=b",
        "includefield=Nonsense",
    ],
)
def test_refused(query: str) -> None:
    with pytest.raises(BadRequest):
        _parse(query)


@given(st.text(alphabet="ABCXYZ*?%_\\^", max_size=12))
def test_a_wildcard_pattern_never_matches_more_than_asked(value: str) -> None:
    """SQL's own wildcards in a value are escaped: only '*' and '?' are wildcards."""
    matches = _parse("AccessionNumber=" + value.replace("\\", "")).matches if value else ()
    for match in matches:
        if match.kind == "like":
            unescaped = match.values[0].replace("\\%", "").replace("\\_", "")
            assert unescaped.count("%") == value.count("*")
            assert unescaped.count("_") == value.count("?")


def test_levels() -> None:
    assert [level_of(t) for t in ("00100010", "0020000E", "00080018", "00201206")] == [
        "study",
        "series",
        "instance",
        "study",
    ]
