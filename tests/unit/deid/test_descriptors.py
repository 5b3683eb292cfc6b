"""Clean Descriptors, the default: descriptions kept, with the patient and whatever the engine
cannot vouch for taken out of them — at the top level and in nested sequences; narrative
text removed; the hub refuses a kept description that still holds a date or an ID."""

from __future__ import annotations

import pytest
from giftcloud_deid import Deidentifier, Option, Profile, ProjectKeys, audit
from giftcloud_deid.descriptors import unvouched
from giftcloud_deid.rules import DEFAULT_OPTIONS
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from support.dicom_files import read, synthetic_instance, to_bytes

KEYS = ProjectKeys.derive(b"d" * 32, "descriptors")

# (patient name, patient ID, description naming them) → words that must go
NAMING = [
    ("SMITH^JOHN", "MRN0042", "Brain MRI John Smith", ["john", "smith"]),
    ("SMITH^JOHN", "MRN0042", "Smith, John - CT head", ["john", "smith"]),
    ("SMITH^JOHN^^MR", "MRN0042", "MR brain for SMITHJOHN", ["smith", "john"]),
    ("LI^WEI", "P77", "CT chest Li Wei follow-up", [" li ", "wei"]),
    ("NG^BO", "P77", "Ng Bo knee", ["ng", "bo "]),
    ("DOE^JANE", "MRN0042", "CT abdomen MRN0042", ["mrn0042"]),
    ("DOE^JANE", "X1", "Head CT 1970-01-01", ["1970"]),
    ("DOE^JANE", "X1", "Head CT born 01/01/1970", ["1970", "01/01"]),
    ("DOE^JANE", "X1", "Follow-up 3rd March 2021", ["march", "2021"]),
    ("DOE^JANE", "X1", "Referral Dr. Gregory House", ["gregory", "house"]),
    ("DOE^JANE", "X1", "Hospital no 4455667 MRI", ["4455667"]),
    ("DOE^JANE", "X1", "call 020 7679 2000 after", ["7679"]),
    ("DOE^JANE", "X1", "jane.doe@example.org CT", ["jane", "example"]),
]
NEUTRAL = [
    "T1 MPRAGE SAG",
    "CT HEAD WO CONTRAST",
    "AX T2 FLAIR 5mm",
    "Chest 1.25mm B31f",
    "DWI b1000 ADC",
    "MR Brain",
]


def _instance(name: str, patient_id: str, description: str) -> bytes:
    ds = read(synthetic_instance(patient=name, patient_id=patient_id))
    ds.StudyDescription = description
    ds.SeriesDescription = description
    ds.ImageComments = f"narrative about {name}: no pattern vouches for a paragraph"
    item = Dataset()
    item.RequestedProcedureDescription = description
    ds.RequestAttributesSequence = Sequence([item])
    return to_bytes(ds)


@pytest.mark.parametrize(("name", "patient_id", "description", "gone"), NAMING)
def test_a_description_that_names_the_patient_is_cleaned(
    name: str, patient_id: str, description: str, gone: list[str]
) -> None:
    out = read(Deidentifier(KEYS).deidentify(_instance(name, patient_id, description)).data)
    nested = out.RequestAttributesSequence[0].RequestedProcedureDescription
    for kept in (out.StudyDescription, out.SeriesDescription, nested):
        padded = f" {kept.lower()} "
        for word in gone:
            assert word not in padded, (description, kept)
        assert kept  # a description, not an empty value: the neutral words stay
    assert "ImageComments" not in out  # narrative text is removed, not cleaned


@pytest.mark.parametrize("description", NEUTRAL)
def test_a_description_without_identifiers_is_kept_as_it_is(description: str) -> None:
    out = read(Deidentifier(KEYS).deidentify(_instance("DOE^JANE", "X1", description)).data)
    assert out.StudyDescription == description
    assert out.SeriesDescription == description
    assert audit(to_bytes(out)) == []


def test_without_the_option_descriptions_are_removed() -> None:
    profile = Profile(options=DEFAULT_OPTIONS - {Option.CLEAN_DESCRIPTORS})
    data = _instance("DOE^JANE", "X1", "CT HEAD")
    out = read(Deidentifier(KEYS, profile).deidentify(data).data)
    assert "StudyDescription" not in out and "SeriesDescription" not in out


def test_a_device_serial_number_keeps_its_digits_under_retain_device_identity() -> None:
    ds = read(synthetic_instance())
    ds.DeviceSerialNumber = "SN 4455667"
    profile = Profile(options=DEFAULT_OPTIONS | {Option.RETAIN_DEVICE_IDENTITY})
    out = read(Deidentifier(KEYS, profile).deidentify(to_bytes(ds)).data)
    assert out.DeviceSerialNumber == "SN 4455667"


@pytest.mark.parametrize(
    "description", ["CT 2021-03-04", "Follow-up 12 Jan 2020", "ACC 99887766", "Dr Who review"]
)
def test_the_hub_refuses_a_kept_description_holding_what_no_one_vouches_for(
    description: str,
) -> None:
    out = read(Deidentifier(KEYS).deidentify(_instance("DOE^JANE", "X1", "CT")).data)
    out.StudyDescription = description
    problems = audit(to_bytes(out))
    assert any(p.startswith("(0008,1030) StudyDescription holds a date") for p in problems)
    assert unvouched(description)
