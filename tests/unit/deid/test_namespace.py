"""One patient, one subject: the patient namespace decides which PatientIDs are the same
person, whatever issuer a modality writes, or leaves out."""

import pytest
from giftcloud_deid import (
    Deidentifier,
    NamespaceError,
    PatientNamespace,
    Profile,
    ProjectKeys,
    Rejected,
)
from hypothesis import given
from hypothesis import strategies as st
from support.dicom_files import patient_file as ct
from support.dicom_files import read

KEYS = ProjectKeys.derive(b"k" * 32, "proj")
OID = "2.16.840.1.113883.3.1234"

#: a site that receives from two hospitals and refuses issuers it does not know
TWO_HOSPITALS = PatientNamespace.from_mapping(
    {
        "site": "st-elsewhere",
        "issuers": {
            "st-elsewhere": ["HOSP-A", "HOSPA", OID],
            "north-general": ["NGH", "2.16.840.1.113883.3.5678"],
        },
        "unknown_issuer": "refuse",
    }
)


def subjects(files: list[bytes], namespace: PatientNamespace | None = None) -> set[str]:
    engine = Deidentifier(KEYS, namespace=namespace) if namespace else Deidentifier(KEYS)
    return {engine.deidentify(f).subject for f in files}


def test_the_issuer_one_modality_left_out_does_not_split_the_patient() -> None:
    files = [ct(issuer="HOSP-A"), ct(issuer="HOSP-A"), ct()]
    assert len(subjects(files)) == 1  # a one-hospital site: every patient is its own
    assert len(subjects(files, TWO_HOSPITALS)) == 1  # no issuer: the site's namespace


def test_aliases_of_one_namespace_are_one_patient() -> None:
    files = [
        ct(issuer="HOSP-A"),
        ct(issuer=" hospa "),
        ct(universal=OID),
        ct(issuer="st-elsewhere"),
    ]
    assert len(subjects(files, TWO_HOSPITALS)) == 1


def test_two_hospitals_mrn123_are_two_people_and_a_stranger_is_refused() -> None:
    ours, theirs = ct(issuer="HOSP-A"), ct(issuer="NGH")
    assert len(subjects([ours, theirs], TWO_HOSPITALS)) == 2
    with pytest.raises(Rejected, match="'MERCY-7' is not in this site's patient namespace"):
        Deidentifier(KEYS, namespace=TWO_HOSPITALS).deidentify(ct(issuer="MERCY-7"))
    # a one-hospital site takes the stranger as its own
    one = PatientNamespace.from_mapping(
        {"site": "st-elsewhere", "issuers": {"st-elsewhere": ["HOSP-A"]}}
    )
    assert len(subjects([ours, ct(issuer="MERCY-7")], one)) == 1


def test_other_patient_ids_merge_only_when_the_profile_says_so() -> None:
    transfer = ct(patient_id="NG-999", issuer="NGH", others=[("MRN123", "HOSP-A")])
    ours = ct(issuer="HOSP-A")
    assert len(subjects([transfer, ours], TWO_HOSPITALS)) == 2
    merging = PatientNamespace.from_mapping(
        {**TWO_HOSPITALS.description(), "use_other_patient_ids": True}
    )
    assert len(subjects([transfer, ours], merging)) == 1
    key = Deidentifier(KEYS, namespace=merging).patient_key(transfer)
    assert key.from_other_ids and key.namespace == "st-elsewhere" and key.patient == "MRN123"


ALIASES = [(ns, value) for ns, values in TWO_HOSPITALS.issuers.items() for value in (ns, *values)]


@given(
    patient=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12),
    alias=st.sampled_from(ALIASES),
    spelling=st.sampled_from([str.upper, str.lower, lambda s: f"  {s} "]),
    qualified=st.booleans(),
)
def test_the_subject_depends_only_on_namespace_and_patient_id(
    patient: str,
    alias: tuple[str, str],
    spelling,
    qualified: bool,  # type: ignore[no-untyped-def]
) -> None:
    namespace, value = alias
    written = spelling(value)
    data = ct(patient, universal=written) if qualified else ct(patient, issuer=written)
    key = Deidentifier(KEYS, namespace=TWO_HOSPITALS).patient_key(data)
    assert key.namespace == namespace
    assert key.subject == KEYS.subject(namespace, patient)


def test_the_namespace_is_recorded_and_a_change_is_visible() -> None:
    first = Deidentifier(KEYS, namespace=TWO_HOSPITALS).deidentify(ct(issuer="HOSP-A"))
    method = read(first.data).DeidentificationMethod
    assert f"patient namespace {TWO_HOSPITALS.fingerprint}" in method
    assert (first.namespace, first.namespace_id) == ("st-elsewhere", TWO_HOSPITALS.fingerprint)
    changed = PatientNamespace.from_mapping(
        {"site": "st-elsewhere", "issuers": {"st-elsewhere": ["HOSP-A"]}}
    )
    assert changed.fingerprint != TWO_HOSPITALS.fingerprint


def test_a_project_profile_brings_its_own_namespace() -> None:
    profile = Profile.from_mapping(
        {"patient_namespace": {"site": "trial-7", "unknown_issuer": "refuse"}}
    )
    engine = Deidentifier(KEYS, profile, namespace=TWO_HOSPITALS)
    assert engine.namespace.site == "trial-7"
    with pytest.raises(Rejected, match="not in this site's patient namespace"):
        engine.deidentify(ct(issuer="HOSP-A"))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"issuers": {"a": ["X"], "b": ["x"]}}, "listed under both"),
        ({"unknown_issuer": "guess"}, "neither site nor refuse"),
        ({"aliases": {}}, "unknown patient namespace key"),
        ({"issuers": ["X"]}, "a mapping"),
    ],
)
def test_a_namespace_that_cannot_be_used_says_why(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(NamespaceError, match=problem):
        PatientNamespace.from_mapping(raw)
