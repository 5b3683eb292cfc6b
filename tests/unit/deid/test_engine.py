"""The Annex E engine on synthetic files, the TCIA series and bad input."""

import warnings

import pydicom
import pytest
from giftcloud_deid import ProjectKeys, Rejected, deidentify
from hypothesis import given
from hypothesis import strategies as st
from support.dicom_files import pydicom_file, read, synthetic_instance

KEYS = ProjectKeys.derive(b"k" * 32, "project-a")
PLANTED = [
    b"Doe^Jane",
    b"MRN0001",
    b"19700101",
    b"Secret Lane",
    b"OTHER-MRN0001",
    b"ACC-MRN0001",
    b"Who^Doctor",
    b"Leaky",
    b"LEAKY CORP",
    b"private MRN0001",
]


def test_no_planted_identifier_survives_anywhere() -> None:
    source = synthetic_instance()
    out = deidentify(source, KEYS).data
    for marker in PLANTED:
        assert marker in source
        assert marker not in out, marker
    ds = read(out)
    assert ds.PatientIdentityRemoved == "YES"
    assert not any(e.tag.is_private for e in ds.iterall())
    # the default keeps descriptions (Clean Descriptors): "Study of Doe^Jane", cleaned
    assert read(source).StudyDescription == "Study of Doe^Jane"
    assert ds.StudyDescription == "Study of"
    original = read(source)
    for uid in (
        original.SOPInstanceUID,
        original.StudyInstanceUID,
        original.SeriesInstanceUID,
        original.FrameOfReferenceUID,
    ):
        assert uid.encode() not in out


def test_references_are_remapped_with_the_instance() -> None:
    ds = read(deidentify(synthetic_instance(), KEYS).data)
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SOPClassUID == pydicom.uid.MRImageStorage  # well-known UIDs stay


def test_same_patient_same_subject_across_runs_and_studies() -> None:
    a = deidentify(synthetic_instance(patient_id="P1"), ProjectKeys.derive(b"k" * 32, "project-a"))
    b = deidentify(synthetic_instance(patient_id="P1"), ProjectKeys.derive(b"k" * 32, "project-a"))
    c = deidentify(synthetic_instance(patient_id="P2"), KEYS)
    other_project = deidentify(
        synthetic_instance(patient_id="P1"), ProjectKeys.derive(b"k" * 32, "project-b")
    )
    assert a.subject == b.subject != c.subject
    assert other_project.subject != a.subject
    assert read(a.data).PatientID == a.subject


def test_dates_move_together_per_subject() -> None:
    one = read(deidentify(synthetic_instance(patient_id="P1"), KEYS).data)
    two = read(deidentify(synthetic_instance(patient_id="P1"), KEYS).data)
    assert one.StudyDate == two.StudyDate != "20240102"
    assert one.LongitudinalTemporalInformationModified == "MODIFIED"


def test_tcia_series_keeps_no_pseudo_phi(tcia_files) -> None:  # type: ignore[no-untyped-def]
    subjects = set()
    for path in tcia_files:
        source = path.read_bytes()
        original = read(source)
        out = deidentify(source, KEYS)
        subjects.add(out.subject)
        values = [
            str(original.PatientName),
            original.PatientID,
            original.get("PatientBirthDate", ""),
            original.get("AccessionNumber", ""),
            str(original.get("ReferringPhysicianName", "")),
            original.get("PatientAddress", ""),
            original.get("InstitutionName", ""),
        ]
        for value in values:
            if value and len(value) > 3:
                assert value.encode() not in out.data, value
    assert len(subjects) == 1


def test_unreadable_input_is_rejected_with_a_reason() -> None:
    with pytest.raises(Rejected, match="not a well-formed DICOM"):
        deidentify(b"not dicom at all", KEYS)
    with pytest.raises(Rejected, match="missing required"):
        deidentify(pydicom_file("JPEGLSNearLossless_08.dcm").read_bytes(), KEYS)


@given(st.text(min_size=1, max_size=64))
def test_uid_mapping_gives_valid_distinct_uids(original: str) -> None:
    uid = KEYS.uid(original)
    assert len(uid) <= 64
    assert pydicom.uid.UID(uid).is_valid
    assert uid != KEYS.uid(original + ".1")
    assert uid == KEYS.uid(original)


SAMPLE = pydicom_file("MR_small.dcm").read_bytes()


@given(st.integers(min_value=0, max_value=len(SAMPLE) - 1), st.binary(min_size=1, max_size=8))
def test_damaged_files_are_rejected_never_crash(at: int, garbage: bytes) -> None:
    """Either a refusal that says why, or an output a reader takes: never another error."""
    for damaged in (SAMPLE[:at], SAMPLE[:at] + garbage + SAMPLE[at + len(garbage) :]):
        reasons = []
        try:
            out = deidentify(damaged, KEYS).data
        except Rejected as exc:
            reasons.append(exc.reason)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert read(out).PatientIdentityRemoved == "YES"
        assert all(reasons)
