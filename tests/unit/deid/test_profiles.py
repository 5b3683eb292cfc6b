"""Per-project profiles in YAML: options, extra rules, the SOP-class allow-list, dry runs."""

import pytest
from giftcloud_deid import Deidentifier, Option, Profile, ProfileError, ProjectKeys, Rejected
from support.dicom_files import read, synthetic_instance, to_bytes

KEYS = ProjectKeys.derive(b"p" * 32, "profiles")

PROFILE = """
name: brain-study
options: [retain_modified_dates, clean_descriptors]
rules:
  StudyDescription: keep
  "(0008,0080)": {replace: "Site A"}
  ReferringPhysicianName: hash
  "0018,1030": empty
  PatientSex: remove
sop_classes: [1.2.840.10008.5.1.4.1.1.4]
"""


def test_a_yaml_profile_sets_options_and_rules() -> None:
    profile = Profile.from_yaml(PROFILE)
    assert profile.options == {Option.RETAIN_MODIFIED_DATES, Option.CLEAN_DESCRIPTORS}
    source = read(synthetic_instance(patient="Kim^Lee", patient_id="KL-1"))
    source.ProtocolName = "t1 mprage"
    # kept on purpose, but it names the patient: the verifier refuses to pass it on
    with pytest.raises(Rejected, match="verification found identifiers"):
        Deidentifier(KEYS, profile).deidentify(to_bytes(source))
    source.StudyDescription = "Brain MRI"
    out = read(Deidentifier(KEYS, profile).deidentify(to_bytes(source)).data)
    assert out.StudyDescription == "Brain MRI"  # kept on purpose by the project
    assert out.InstitutionName == "Site A"
    assert len(out.ReferringPhysicianName.original_string) == 16  # a keyed hash
    assert out.ReferringPhysicianName.original_string != b"Who^Doctor"
    assert out.ProtocolName == ""
    assert "PatientSex" not in out
    codes = [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113105", "113107"]
    assert "brain-study" in str(out.DeidentificationMethod)


def test_the_allow_list_rejects_other_sop_classes() -> None:
    profile = Profile.from_yaml("sop_classes: [1.2.840.10008.5.1.4.1.1.2]")
    with pytest.raises(Rejected, match="not in this project's allow-list"):
        Deidentifier(KEYS, profile).deidentify(synthetic_instance())


def test_a_dry_run_reports_changes_without_values_and_writes_nothing() -> None:
    source = synthetic_instance(patient="Dry^Run", patient_id="DRY-1")
    changes = Deidentifier(KEYS).dry_run(source)
    by_keyword = {c.keyword: c.action for c in changes}
    assert by_keyword["PatientAddress"] == "X"
    assert by_keyword["AccessionNumber"] == "Z"
    assert by_keyword["SOPInstanceUID"] == "U"
    assert by_keyword["StudyDate"] == "C"
    assert any(c.path.startswith("(0008,1140)[0]") for c in changes)  # inside a sequence
    assert "DRY-1" not in repr(changes) and "Dry" not in repr(changes)
    dry = Profile.from_yaml("dry_run: true")
    result = Deidentifier(KEYS, dry).deidentify(source)
    assert result.data == b"" and result.changes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("options: [retain_everything]", "retain_everything"),
        ("rules: {NotAKeyword: keep}", "neither a tag nor a DICOM keyword"),
        ("rules: {PatientName: shred}", "is not one of"),
        ("colour: blue", "unknown profile key"),
        ("options: [retain_full_dates, retain_modified_dates]", "exclude each other"),
        ("[1, 2", "not valid YAML"),
        ("burned_in: [{label: x}]", "needs match and regions"),
    ],
)
def test_bad_profiles_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        Profile.from_yaml(text)
