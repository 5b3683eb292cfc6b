"""Annex E in full: markers planted in every attribute, under the default profile and each option."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import pydicom
import pytest
from giftcloud_deid import Deidentifier, Option, Profile, ProjectKeys, Rejected
from giftcloud_deid.rules import CLEAN, KEEP, descriptor_tags, load_table, resolve, row_action
from pydicom.dataset import Dataset
from support.dicom_files import pydicom_file, read, synthetic_instance, to_bytes
from support.planting import Marker, plant
from support.shared import SHARED, absent

KEYS = ProjectKeys.derive(b"m" * 32, "markers")
#: pydicom files under several transfer syntaxes and IODs (CT, MR, RT, SR, big endian...)
BASES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "rtplan.dcm",
    "waveform_ecg.dcm",
    "JPEG2000.dcm",
]


def planted(base: str) -> tuple[bytes, list[Marker]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(pydicom_file(base))
        markers = plant(ds)
        ds.BurnedInAnnotation = "NO"
        return to_bytes(ds), markers


def survivors(out: bytes, markers: list[Marker]) -> list[Marker]:
    return [m for m in markers if m.value.encode() in out]


def unambiguous(markers: list[Marker], subject: str) -> list[Marker]:
    """The markers whose survival can be told: not a date that another date, moved by the
    subject's shift, happens to land on."""
    shift = timedelta(days=KEYS.date_shift_days(subject))
    moved = set()
    for m in markers:
        if m.vr in ("DA", "DT"):
            moved.add((datetime.strptime(m.value[:8], "%Y%m%d") + shift).strftime("%Y%m%d"))
    return [m for m in markers if not (m.vr in ("DA", "DT") and m.value[:8] in moved)]


def test_the_table_is_complete() -> None:
    table = load_table()
    # 621 rows of rev 2024b less the three repeating-group rows and the private rule, plus 35 added
    assert len(table.rows) == 617 + 35
    assert {hex(v) for _, v, _ in table.repeating} == {"0x50000000", "0x60003000", "0x60004000"}
    assert table.private.basic == "X"
    assert table.private.options == {"retain_safe_private": "C"}
    rows = table.rows
    assert rows[0x00100010].basic == "Z"  # Patient's Name
    assert rows[0x00080050].basic == "Z"  # Accession Number
    assert rows[0x00080018].basic == "U"  # SOP Instance UID
    assert rows[0x00080020].options == {"retain_full_dates": "K", "retain_modified_dates": "C"}
    assert rows[0x00181000].options["retain_device_identity"] == "K"
    assert rows[0x00080080].options["retain_institution_identity"] == "K"
    assert rows[0x0008103E].options["clean_descriptors"] == "C"
    assert rows[0x0040A730].options["clean_structured_content"] == "C"
    assert rows[0x00700001].options["clean_graphics"] == "C"
    assert rows[0x00100012].basic == "X"  # Name to Use, added after 2024b
    assert rows[0x300A0054].basic == "U"  # Table Top Position Alignment UID, added after 2024b


REFERENCE = SHARED / "reference"
ROOT = Path(__file__).resolve().parents[3]


def test_the_tables_regenerate_from_the_reference(tmp_path: Path) -> None:
    if not (REFERENCE / "annex-e").is_dir():
        absent("the reference facts (annex-e)", REFERENCE)
    script = ROOT / "libs" / "deid" / "scripts" / "build_tables.py"
    subprocess.run([sys.executable, str(script), str(REFERENCE), str(tmp_path)], check=True)
    shipped = ROOT / "libs" / "deid" / "src" / "giftcloud_deid" / "data"
    for name in ("annex_e.json", "burned_in.json"):
        assert (tmp_path / name).read_text() == (shipped / name).read_text(), name


def test_compound_actions_follow_the_type() -> None:
    assert resolve("X/Z", "3") == "X"
    assert resolve("X/Z", "2") == "Z"
    assert resolve("X/D", "2") == "D"
    assert resolve("Z/D", "1") == "D"
    assert resolve("Z/D", "3") == "Z"
    assert resolve("X/Z/D", "1") == "D"
    assert resolve("X/Z/U*", "3") == "U"
    assert resolve("X/Z/D", None) == "D"  # unknown Type: present, without its value
    rows = load_table().rows
    assert row_action(rows[0x00080080], frozenset()) == "X"  # Institution Name, Type 3
    assert row_action(rows[0x00100020], frozenset()) == "Z"  # Patient ID, Type 2
    sr = Deidentifier(KEYS).action_map.for_sop_class("1.2.840.10008.5.1.4.1.1.88.22")
    assert sr[0x00080023] == "C"  # Content Date (Type 1 in SR) shifted under Modified Dates
    basic = Deidentifier(KEYS, Profile(options=frozenset())).action_map
    assert basic.for_sop_class("1.2.840.10008.5.1.4.1.1.88.22")[0x00080023] == "D"
    assert basic.for_sop_class("1.2.840.10008.5.1.4.1.1.4")[0x00080023] == "Z"


def expected_to_survive(marker: Marker, options: frozenset[Option]) -> bool:
    """What the table says of a marker's attribute (and of the sequence holding it).

    Kept (K) values survive; cleaned (C) dates move, cleaned times stay, cleaned free
    text survives minus the input's identifiers (a marker identifies no one); removed,
    emptied, dummied and replaced values never survive. Private data, overlays and
    curves never survive (none of these blocks is on the safe list).
    """
    rows = load_table().rows
    if marker.where in ("overlay comments", "curve description"):
        return Option.CLEAN_GRAPHICS in options
    if marker.tag not in rows:
        return marker.tag == 0x0040A160 and _survives(marker.container, "UT", options)
    if marker.container != -1 and not _container_opened(marker.container, options):
        return False
    return _survives(marker.tag, marker.vr, options)


def _survives(tag: int, vr: str, options: frozenset[Option]) -> bool:
    rows = load_table().rows
    if tag not in rows:
        return True
    action = row_action(rows[tag], options)
    return action == KEEP or (action == CLEAN and vr not in ("DA", "DT"))


def _container_opened(tag: int, options: frozenset[Option]) -> bool:
    rows = load_table().rows
    return tag not in rows or row_action(rows[tag], options) in (KEEP, CLEAN, "U")


@pytest.mark.parametrize("base", BASES)
def test_no_marker_survives_the_default_profile(base: str) -> None:
    source, markers = planted(base)
    assert len(markers) > 500
    assert all(m.value.encode() in source for m in markers)
    deidentifier = Deidentifier(KEYS)
    out = deidentifier.deidentify(source)
    options = deidentifier.profile.options
    markers = unambiguous(markers, out.subject)
    leaked = [m for m in survivors(out.data, markers) if not expected_to_survive(m, options)]
    assert not leaked, [(m.where, m.value) for m in leaked[:10]]
    ds = read(out.data)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.PatientName == ds.PatientID == out.subject
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not any(e.tag.is_private for e in ds.iterall())
        assert not any(e.tag.group & 0xFF00 in (0x5000, 0x6000) for e in ds)
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113105", "113107", "113108"]
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert "key " + KEYS.key_id in ds.DeidentificationMethod


def test_the_default_profile_keeps_only_characteristics_times_and_descriptions() -> None:
    source, markers = planted("CT_small.dcm")
    out = Deidentifier(KEYS).deidentify(source).data
    survived = survivors(out, markers)
    assert {0x00081030, 0x0008103E} <= {m.tag for m in survived}  # study, series description
    kept = {(m.tag, m.vr) for m in survived if m.tag not in descriptor_tags()}
    names = sorted({load_table().rows[t].name for t, _ in kept if t in load_table().rows})
    # patient characteristics (sex, smoking status, ...), times and time zones: nothing else
    times = {load_table().rows[t].name for t, vr in kept if vr == "TM" and t in load_table().rows}
    for name in names:
        assert name in times or any(
            w in name
            for w in (
                "Sex",
                "Time",
                "Smoking",
                "Allerg",
                "Pregnancy",
                "Ethnic",
                "Patient State",
                "Special Needs",
                "Medical Alerts",
                "Pre-Medication",
                "Size",
                "Weight",
                "Occupation",
                "Additional Patient History",
            )
        ), name


OPTIONS = [o for o in Option if o is not Option.CLEAN_PIXEL_DATA]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.value)
def test_each_option_keeps_exactly_what_it_should(option: Option) -> None:
    source, markers = planted("CT_small.dcm")
    options = frozenset({option})
    result = Deidentifier(KEYS, Profile(name=option.value, options=options)).deidentify(source)
    out = result.data
    markers = unambiguous(markers, result.subject)
    kept = {m.value for m in survivors(out, markers)}
    wrong = [
        (m.where, "kept" if m.value in kept else "lost")
        for m in markers
        if (m.value in kept) != expected_to_survive(m, options)
    ]
    assert not wrong, wrong[:10]


def test_structured_content_is_cleaned_not_dropped_with_its_option() -> None:
    ds = read(synthetic_instance(patient="Quill^Ada", patient_id="ZX-9911"))
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.TextValue = "Ada Quill (ZX-9911) seen for follow-up"
    item.add_new(0x0040A123, "PN", "Watson^John")
    item.add_new(0x0040A121, "DA", "20240105")
    ds.ContentSequence = [item]
    profile = Profile(
        options=frozenset({Option.CLEAN_STRUCTURED_CONTENT, Option.RETAIN_MODIFIED_DATES})
    )
    out = read(Deidentifier(KEYS, profile).deidentify(to_bytes(ds)).data)
    cleaned = out.ContentSequence[0]
    assert "seen for follow-up" in cleaned.TextValue
    assert "ZX-9911" not in cleaned.TextValue and "Quill" not in cleaned.TextValue
    assert cleaned.get((0x0040, 0xA123)).value == "ANONYMIZED"
    # the default drops the content instead
    default = read(Deidentifier(KEYS).deidentify(to_bytes(ds)).data)
    assert len(default.ContentSequence) == 0


def test_safe_private_attributes_are_kept_by_creator_not_raw_tag() -> None:
    ds = read(synthetic_instance())
    safe = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    safe.add_new(0x0C, "IS", "1000")  # B value
    safe.add_new(0x01, "LO", "unsafe note")
    impostor = ds.private_block(0x0043, "NOT GE", create=True)
    impostor.add_new(0x39, "IS", "777")  # same element byte as GEMS_PARM_01 b-value
    profile = Profile(options=frozenset({Option.RETAIN_SAFE_PRIVATE}))
    out = read(Deidentifier(KEYS, profile).deidentify(to_bytes(ds)).data)
    kept = out.private_block(0x0019, "SIEMENS MR HEADER")
    assert kept[0x0C].value == "1000"
    assert 0x00191001 not in out and (0x0019, 0x1001) not in out
    assert not any(e.tag.group == 0x0043 for e in out)
    assert not any(e.tag.group == 0x0011 for e in out)  # LEAKY CORP block


def test_retained_uids_and_full_dates() -> None:
    source = synthetic_instance()
    original = read(source)
    profile = Profile(options=frozenset({Option.RETAIN_UIDS, Option.RETAIN_FULL_DATES}))
    out = read(Deidentifier(KEYS, profile).deidentify(source).data)
    assert out.SOPInstanceUID == original.SOPInstanceUID
    assert out.StudyDate == original.StudyDate
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert not out.PatientBirthDate


def test_ages_are_capped() -> None:
    ds = read(synthetic_instance())
    ds.PatientAge = "093Y"
    out = read(Deidentifier(KEYS).deidentify(to_bytes(ds)).data)
    assert out.PatientAge == "090Y"
    ds.PatientAge = "045Y"
    assert read(Deidentifier(KEYS).deidentify(to_bytes(ds)).data).PatientAge == "045Y"


def test_every_bundled_pydicom_file_is_deidentified_or_rejected_with_a_reason() -> None:
    from support.dicom_files import bundled_files

    outcomes = {"ok": 0, "rejected": 0}
    for path in bundled_files():
        try:
            out = Deidentifier(KEYS).deidentify(path.read_bytes())
        except Rejected as exc:
            reason = exc.reason
            assert reason, path.name
            outcomes["rejected"] += 1
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(out.data))
            list(ds.iterall())  # every element decodes
        assert ds.PatientIdentityRemoved == "YES", path.name
        outcomes["ok"] += 1
    assert outcomes["ok"] >= 25, outcomes


def test_outputs_are_read_by_dcmtk(tmp_path: Path) -> None:
    """A second, independent toolkit reads every output (dcmdump +E: errors are fatal)."""
    import shutil

    from support.dicom_files import bundled_files

    dcmdump = shutil.which("dcmdump")
    if dcmdump is None:
        pytest.skip("dcmtk is not installed (scripts/test installs it)")
    written = 0
    for path in bundled_files():
        try:
            out = Deidentifier(KEYS).deidentify(path.read_bytes())
        except Rejected:
            continue
        target = tmp_path / f"{path.stem}.dcm"
        target.write_bytes(out.data)
        result = subprocess.run([dcmdump, "-q", "+E", str(target)], capture_output=True, text=True)
        assert result.returncode == 0, (path.name, result.stderr[:500])
        written += 1
    assert written >= 25
