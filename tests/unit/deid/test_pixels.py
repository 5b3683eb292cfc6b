"""Burned-in text: the rules from the table and the project, the ultrasound rule, the policy."""

import warnings

import numpy as np
import pydicom
import pytest
from giftcloud_deid import Deidentifier, Profile, ProjectKeys, Rejected
from giftcloud_deid.admission import Admission
from giftcloud_deid.pixels import BurnedInRules, dataset_fields
from giftcloud_deid.profile import ProfileError
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless
from support.dicom_files import pydicom_file, read, synthetic_instance, to_bytes

KEYS = ProjectKeys.derive(b"b" * 32, "pixels")


def image(modality: str = "US", size: int = 64) -> Dataset:
    ds = read(synthetic_instance(rows=size))
    ds.Modality = modality
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = bytes([200]) * (size * size)
    for keyword in ("BurnedInAnnotation",):
        if keyword in ds:
            del ds[keyword]
    return ds


def pixels(data: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read(data).pixel_array


def test_an_image_that_may_carry_text_and_matches_no_rule_is_rejected() -> None:
    for modality in ("US", "SC", "OT", "XA"):
        with pytest.raises(Rejected, match="may carry burned-in text"):
            Deidentifier(KEYS).deidentify(to_bytes(image(modality)))
    flagged = image("CT")
    flagged.BurnedInAnnotation = "YES"
    with pytest.raises(Rejected, match="BurnedInAnnotation is YES"):
        Deidentifier(KEYS).deidentify(to_bytes(flagged))
    # a CT image with no flag, or any image marked clean, passes untouched
    assert pixels(Deidentifier(KEYS).deidentify(to_bytes(image("CT"))).data).min() == 200
    clean = image("US")
    clean.BurnedInAnnotation = "NO"
    assert pixels(Deidentifier(KEYS).deidentify(to_bytes(clean)).data).min() == 200


def test_every_refusal_names_its_way_out_and_an_attestation_opens_it() -> None:
    with pytest.raises(Rejected) as refused:
        Deidentifier(KEYS).deidentify(to_bytes(image("US")))
    assert "Next step: a project owner attests that the project's ultrasound images" in str(
        refused.value
    )
    assert "masking rule" in str(refused.value)
    attested = Profile.from_mapping({"burned_in_attested": ["us"]})
    assert attested.attested == frozenset({"US"})
    out = Deidentifier(KEYS, attested).deidentify(to_bytes(image("US")))
    assert pixels(out.data).min() == 200  # passed as it is: the owner's word, recorded
    # an attestation for ultrasound says nothing of secondary captures...
    with pytest.raises(Rejected, match="the project's secondary captures"):
        Deidentifier(KEYS, attested).deidentify(to_bytes(image("SC")))
    # ...nor of an image whose header says it carries text: only a masking rule helps
    flagged = image("US")
    flagged.BurnedInAnnotation = "YES"
    with pytest.raises(Rejected, match="Next step: add a masking rule"):
        Deidentifier(KEYS, attested).deidentify(to_bytes(flagged))
    # ingest's check at arrival applies the same attestation
    Admission(attested).check(to_bytes(image("US")))
    with pytest.raises(Rejected, match="ultrasound images carry no burned-in text"):
        Admission().check(to_bytes(image("US")))
    with pytest.raises(ProfileError, match="burned_in_attested: CT is not one of"):
        Profile.from_mapping({"burned_in_attested": ["CT"]})


def test_ultrasound_is_blanked_outside_its_regions() -> None:
    ds = image("US")
    region = Dataset()
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 10, 20
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = 39, 49
    ds.SequenceOfUltrasoundRegions = [region]
    out = Deidentifier(KEYS).deidentify(to_bytes(ds))
    assert out.pixels_cleaned == "Clean Ultrasound Regions"
    array = pixels(out.data)
    assert (array[20:50, 10:40] == 200).all()
    assert array[:20].max() == 0 and array[:, :10].max() == 0 and array[50:].max() == 0
    result = read(out.data)
    assert result.BurnedInAnnotation == "NO"
    assert "113101" in [i.CodeValue for i in result.DeidentificationMethodCodeSequence]


PROJECT_RULE = """
burned_in:
  - label: console captures
    match: {Modality: SC, Rows: 64, Columns: 64}
    regions: [{x: 0, y: 0, width: 64, height: 8}]
"""


def test_a_project_rule_blanks_its_region_uncompressed_and_rle() -> None:
    profile = Profile.from_yaml(PROJECT_RULE)
    ds = image("SC")
    plain = Deidentifier(KEYS, profile).deidentify(to_bytes(ds))
    assert plain.pixels_cleaned == "console captures"
    array = pixels(plain.data)
    assert array[:8].max() == 0 and array[8:].min() == 200
    assert plain.transfer_syntax_uid == ExplicitVRLittleEndian

    ds.compress(RLELossless, encoding_plugin="pydicom")
    rle = Deidentifier(KEYS, profile).deidentify(to_bytes(ds))
    assert read(rle.data).file_meta.TransferSyntaxUID == RLELossless
    array = pixels(rle.data)
    assert array[:8].max() == 0 and array[8:].min() == 200


def test_jpeg_is_decoded_masked_and_written_losslessly() -> None:
    source = pydicom.dcmread(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))
    rows, columns = int(source.Rows), int(source.Columns)
    profile = Profile.from_yaml(
        f"burned_in: [{{label: top band, match: {{Modality: OT, Rows: {rows}}},"
        f" regions: [{{x: 0, y: 0, width: {columns}, height: 10}}]}}]"
    )
    out = Deidentifier(KEYS, profile).deidentify(pydicom_file("SC_rgb_jpeg_dcmtk.dcm").read_bytes())
    result = read(out.data)
    assert result.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert result.PhotometricInterpretation == "RGB"
    array = pixels(out.data)
    assert array[:10].max() == 0 and array[10:].max() > 0


def test_pixel_data_that_cannot_be_decoded_is_rejected() -> None:
    ds = pydicom.dcmread(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))
    data = bytearray(to_bytes(ds))
    start = data.rfind(b"\xff\xd8")  # the JPEG stream: break it
    data[start : start + 200] = bytes(200)
    profile = Profile.from_yaml(
        "burned_in: [{label: any OT, match: {Modality: OT}, regions: [{x: 0, y: 0, width: 4, height: 4}]}]"
    )
    with pytest.raises(Rejected, match="cannot be"):
        Deidentifier(KEYS, profile).deidentify(bytes(data))


def test_the_table_rules_match_by_manufacturer_and_model() -> None:
    rules = BurnedInRules.default()
    ds = image("CT", size=512)
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.ManufacturerModelName = "LightSpeed VCT"
    ds.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    rule = rules.needs_cleaning(dataset_fields(ds))
    assert rule is not None and rule.label == "LightSpeed Dose Report"
    assert rule.regions == ((0, 0, 512, 121),)
