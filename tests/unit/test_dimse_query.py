"""A C-FIND identifier read as a QIDO-RS search (giftcloud_api.dimse.query): its valued keys
matched, its empty keys returned, sequences and keys below the level returned empty but
never matched, PATIENT level on the Patient module only, a bad level refused."""

from __future__ import annotations

import pytest
from giftcloud_api.dicomweb.params import parse
from giftcloud_api.dimse.query import IdentifierError, asked
from pydicom.dataset import Dataset


def identifier(level: str, **keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_valued_keys_match_and_empty_keys_are_returned() -> None:
    question = asked(
        identifier(
            "STUDY", PatientName="DOE^*", StudyDate="20200101-20201231", StudyInstanceUID="",
            ModalitiesInStudy="", SpecificCharacterSet="ISO_IR 100",
        )
    )  # fmt: skip
    assert question.catalogue_level == "study"
    assert ("PatientName", "DOE^*") in question.params
    assert ("StudyDate", "20200101-20201231") in question.params
    assert ("includefield", "0020000D") in question.params
    assert ("includefield", "00080061") in question.params
    assert not any("SpecificCharacterSet" in name for name, _ in question.params)
    search = parse(question.params, "study", 100)  # QIDO-RS's own parser takes it
    assert {m.keyword for m in search.matches} == {"PatientName", "StudyDate"}
    assert set(question.keys) >= {"00100010", "00080020", "0020000D", "00080061"}


def test_a_list_of_uids_is_one_match() -> None:
    question = asked(identifier("SERIES", SeriesInstanceUID=["1.2.3", "1.2.4"]))
    assert question.params == [("SeriesInstanceUID", "1.2.3\\1.2.4")]
    [match] = parse(question.params, "series", 100).matches
    assert match.kind == "uids" and match.values == ("1.2.3", "1.2.4")


def test_keys_below_the_level_and_sequences_are_returned_empty_never_matched() -> None:
    ds = identifier("STUDY", StudyInstanceUID="1.2", SOPInstanceUID="1.2.3.4")
    ds.ReferencedStudySequence = []
    question = asked(ds)
    assert question.params == [("StudyInstanceUID", "1.2")]
    assert "00080018" in question.keys and "00081110" in question.keys


def test_patient_level_matches_on_the_patient_module_only() -> None:
    question = asked(identifier("PATIENT", PatientID="P1", StudyDescription="brain"))
    assert question.params == [("PatientID", "P1")]
    assert question.catalogue_level == "study"


@pytest.mark.parametrize("level", ["", "FRAME"])
def test_an_unknown_level_is_refused_with_the_reason(level: str) -> None:
    with pytest.raises(IdentifierError, match="is not PATIENT, STUDY, SERIES or IMAGE"):
        asked(identifier(level))
