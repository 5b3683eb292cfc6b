"""The hub's audit: content judged against the profile a file declares, not its markers."""

from __future__ import annotations

import warnings

import pydicom
import pytest
from giftcloud_deid import Deidentifier, Option, Profile, ProjectKeys, audit
from giftcloud_deid.policy import Policy
from giftcloud_deid.rules import BASIC_CODE, DEFAULT_OPTIONS, KEEP, OPTION_CODES, load_table
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from support.dicom_files import bundled_files, pydicom_file, read, synthetic_instance, to_bytes
from support.planting import ENGINE_SET, STRUCTURAL, Planter, plant, plant_reported_pid

KEYS = ProjectKeys.derive(b"h" * 32, "hub-audit")
LABEL = "SUBJ-ABCDEFGHIJK2"
PROFILES = {
    "default": Profile(),
    "basic": Profile(name="basic", options=frozenset()),
    "descriptors": Profile(options=DEFAULT_OPTIONS | {Option.CLEAN_DESCRIPTORS}),
    "everything": Profile(
        options=frozenset(Option) - {Option.RETAIN_FULL_DATES}, name="everything"
    ),
    "full dates": Profile(options=frozenset({Option.RETAIN_FULL_DATES})),
}


#: the default without Clean Descriptors: a description present is then a finding
NO_DESCRIPTIONS = DEFAULT_OPTIONS - {Option.CLEAN_DESCRIPTORS}


def marked(ds: Dataset, options: frozenset[Option] = NO_DESCRIPTIONS) -> bytes:
    """A file carrying every marker a de-identified file carries, whatever else it holds."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "by hand"
    items = []
    for value, meaning in [BASIC_CODE, *(OPTION_CODES[o] for o in sorted(options))]:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    ds.PatientName = ds.PatientID = LABEL
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        setattr(ds, keyword, generate_uid(prefix="2.25."))
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "FrameOfReferenceUID" in ds:
        ds.FrameOfReferenceUID = generate_uid(prefix="2.25.")
    return to_bytes(ds)


def clean() -> Dataset:
    return read(Deidentifier(KEYS).deidentify(synthetic_instance()).data)


def planted_file(base: str = "CT_small.dcm") -> tuple[Dataset, list[object]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(pydicom_file(base))
        markers = plant(ds)
        ds.BurnedInAnnotation = "NO"
    return ds, list(markers)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_what_the_engine_makes_conforms_to_what_it_declares(name: str) -> None:
    profile = PROFILES[name]
    deidentifier = Deidentifier(KEYS, profile)
    planted, _ = planted_file()
    files = [synthetic_instance(), to_bytes(planted)]
    for path in bundled_files():
        try:
            files.append(deidentifier.deidentify(path.read_bytes()).data)
        except Exception:
            continue
    outputs = [deidentifier.deidentify(f).data for f in files[:2]] + files[2:]
    assert len(outputs) > 20
    for output in outputs:
        assert audit(output, accepted=profile) == []


def test_the_reported_file_is_refused_with_every_attribute_named() -> None:
    ds = read(marked(clean()))
    expected = plant_reported_pid(ds)
    problems = " | ".join(audit(to_bytes(ds)))
    for named in expected:
        assert named in problems, named


@pytest.mark.parametrize(
    ("keyword", "value", "named"),
    [
        ("PatientName", "Doe^Jane", "PatientName is not a subject label"),
        ("PatientID", "MRN0012345", "PatientID is not a subject label"),
        ("AccessionNumber", "ACC778899", "AccessionNumber has a value"),
        ("InstitutionName", "St Leaky's Hospital", "InstitutionName"),
        ("ReferringPhysicianName", "Who^Doctor", "ReferringPhysicianName has a value"),
        ("StudyDescription", "Jane Doe", "StudyDescription is present"),
        ("ImageComments", "born 19700101", "ImageComments is present"),
        ("PatientBirthDate", "19700101", "PatientBirthDate has a value"),
        ("StudyID", "S1234", "StudyID has a value"),
        ("FrameOfReferenceUID", "1.2.3.4.5", "FrameOfReferenceUID holds a UID"),
    ],
)
def test_each_identifying_attribute_alone_is_refused_and_named(
    keyword: str, value: str, named: str
) -> None:
    ds = read(marked(clean()))
    setattr(ds, keyword, value)
    data = to_bytes(ds)
    problems = audit(data)
    assert any(named in p for p in problems), problems


def test_every_annex_e_attribute_planted_alone_is_refused() -> None:
    """The held-out style, one attribute at a time: each row the default profile removes,
    empties, replaces or gives a new UID, planted with the markers set, is refused by name."""
    table = load_table()
    base = clean()
    policy = Policy.of(Profile(options=NO_DESCRIPTIONS), str(base.SOPClassUID), frozenset())
    planter = Planter()
    tried = 0
    for tag, row in table.rows.items():
        if tag in ENGINE_SET or tag in STRUCTURAL or tag >> 16 in (0x0000, 0x0002):
            continue
        action = policy.action(tag, {})
        if action in (KEEP, "C"):
            continue
        try:
            vr = str(pydicom.datadict.dictionary_VR(tag))
        except KeyError:
            continue
        ds = read(marked(clean()))
        if vr == "SQ":
            item = Dataset()
            item.add_new(0x00081030, "LO", "Jane Doe's study")
            ds.add_new(tag, vr, Sequence([item]))
        else:
            value = planter.value(vr, row.name, tag) if " or " not in vr else None
            if value is None:
                continue
            ds.add_new(tag, vr, value)
        problems = audit(to_bytes(ds))
        where = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        assert any(p.startswith(where) for p in problems), (row.name, problems)
        tried += 1
    assert tried > 250


def test_a_file_full_of_planted_identifiers_with_the_markers_set_is_refused() -> None:
    ds, _ = planted_file()
    problems = audit(marked(ds))
    text = " | ".join(problems)
    assert len(problems) > 200
    for named in (
        "(0008,0090) ReferringPhysicianName has a value",
        "(0008,1140)[0] > (0010,0010) PatientName has a value",  # in a kept sequence
        "(0040,A730) ContentSequence has items",
        "(0019,0010) private attribute is present",
        "(6000,3000) OverlayData is present",
        "(0010,0030) PatientBirthDate has a value",
    ):
        assert named in text, named
    deep = "(0008,2218)[0] > (0008,2218)[0] > (0010,0010) PatientName has a value"
    assert deep in text, "a name two sequences down is found"


def test_options_beyond_the_projects_profile_are_refused() -> None:
    full = Profile(options=frozenset({Option.RETAIN_FULL_DATES}))
    data = Deidentifier(KEYS, full).deidentify(synthetic_instance()).data
    problems = audit(data)  # the hub's project accepts the default profile only
    assert problems and "retain_full_dates" in problems[0] and "does not accept" in problems[0]
    assert audit(data, accepted=full) == []


def test_a_file_that_declares_no_profile_is_refused() -> None:
    ds = clean()
    del ds.DeidentificationMethodCodeSequence
    problems = audit(to_bytes(ds))
    assert any(
        "does not declare the Basic Application Confidentiality Profile" in p for p in problems
    )
    assert audit(b"junk")[0].startswith("not a readable")


def test_dates_are_refused_where_the_declared_profile_removes_them() -> None:
    basic = Profile(options=frozenset())
    ds = read(Deidentifier(KEYS, basic).deidentify(synthetic_instance()).data)
    assert audit(to_bytes(ds), accepted=basic) == []
    ds.ContentDate = "20240102"
    problems = audit(to_bytes(ds), accepted=basic)
    assert any("ContentDate" in p for p in problems), problems
