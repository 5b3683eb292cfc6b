"""Which instances are results, and which instances a result says it derives from (the
catalogue keeps a result only when the project holds every one of them)."""

import io

import pydicom
from giftcloud_api.catalogue.derived import GRACE_SECONDS, grace, kind_of, sources
from giftcloud_core.settings import BusSettings
from giftcloud_deid import Deidentifier, ProjectKeys
from support.results import ct_series, segmentation


def seq(*items: dict) -> dict:
    return {"vr": "SQ", "Value": list(items)}


def uid(value: str) -> dict:
    return {"vr": "UI", "Value": [value]}


def test_kinds_of_result() -> None:
    assert kind_of("1.2.840.10008.5.1.4.1.1.66.4") == "segmentation"
    assert kind_of("1.2.840.10008.5.1.4.1.1.88.34") == "structured report"  # Comprehensive 3D
    assert kind_of("1.2.840.10008.5.1.4.1.1.481.3") == "RT structure set"
    assert kind_of("1.2.840.10008.5.1.4.1.1.2") is None  # a CT image is no result


def test_a_structured_reports_evidence_and_nested_sources_are_found() -> None:
    report = {
        "0040A375": seq(  # CurrentRequestedProcedureEvidenceSequence
            {"00081115": seq({"00081199": seq({"00081155": uid("1.1"), "00081150": uid("x")})})}
        ),
        "0040A730": seq(  # content: an image reference is not a claim of derivation
            {"00081199": seq({"00081155": uid("9.9")})}
        ),
        "52009230": seq(  # per-frame functional groups
            {"00089124": seq({"00082112": seq({"00081155": uid("2.2")})})}
        ),
        "00081111": seq({"00081155": uid("3.3")}),  # a procedure step: no source
    }
    assert sources(report) == {"1.1", "2.2"}
    assert sources({}) == set()


def test_a_highdicom_segmentation_names_every_source_image() -> None:
    site = Deidentifier(ProjectKeys.derive(b"s" * 32, "p"))
    images = [site.deidentify(f).data for f in ct_series(3, "U-1")]
    seg = pydicom.dcmread(io.BytesIO(segmentation(images)))
    expected = {pydicom.dcmread(io.BytesIO(i)).SOPInstanceUID for i in images}
    assert sources(seg.to_json_dict()) == expected


def test_a_result_waits_half_of_what_the_bus_retries_allow_at_most_ten_seconds() -> None:
    # 0.2 + 0.4 + 0.8 + 1.6 + 3.2: the last retry comes after 6.2 s and judges
    assert grace(BusSettings(max_retries=5, retry_base_seconds=0.2)) == 3.1
    assert grace(BusSettings(max_retries=5, retry_base_seconds=0.5)) == 7.75
    assert grace(BusSettings(max_retries=12, retry_base_seconds=1.0)) == GRACE_SECONDS
