import pytest
from giftcloud_dicom.instance import (
    CANNOT_UNDERSTAND,
    DOES_NOT_MATCH_SOP_CLASS,
    InvalidInstance,
    inspect_instance,
)
from support.dicom_files import pydicom_file, read, synthetic_instance, to_bytes


def test_a_whole_file_is_described() -> None:
    data = pydicom_file("CT_small.dcm").read_bytes()
    info = inspect_instance(data)
    ds = read(data)
    assert info.sop_instance_uid == ds.SOPInstanceUID
    assert info.study_uid == ds.StudyInstanceUID
    assert info.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID


@pytest.mark.parametrize(
    "data", [b"", b"hello world", b"\x00" * 200, b"PK\x03\x04" + b"\x00" * 300]
)
def test_not_dicom(data: bytes) -> None:
    with pytest.raises(InvalidInstance, match="not a DICOM Part 10 file") as caught:
        inspect_instance(data)
    assert caught.value.reason == CANNOT_UNDERSTAND


def test_pydicoms_truncated_file() -> None:
    with pytest.raises(InvalidInstance, match="truncated"):
        inspect_instance(pydicom_file("MR_truncated.dcm").read_bytes())


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"])
def test_every_cut_of_a_file_is_refused(name: str) -> None:
    data = pydicom_file(name).read_bytes()
    accepted = []
    for cut in range(140, len(data), max(1, len(data) // 300)):
        try:
            inspect_instance(data[:cut])
            accepted.append(cut)
        except InvalidInstance:
            pass
    assert accepted == []


def test_missing_sop_instance_uid() -> None:
    ds = read(synthetic_instance())
    del ds.SOPInstanceUID
    with pytest.raises(InvalidInstance, match="SOPInstanceUID") as caught:
        inspect_instance(to_bytes(ds))
    assert caught.value.reason == DOES_NOT_MATCH_SOP_CLASS


def test_missing_transfer_syntax() -> None:
    with pytest.raises(InvalidInstance, match="TransferSyntaxUID"):
        inspect_instance(pydicom_file("meta_missing_tsyntax.dcm").read_bytes())


def test_an_error_comment_keeps_its_decisive_words_within_64_characters() -> None:
    from giftcloud_dicom.instance import error_comment

    short = "instance of 123456789 bytes; the limit is 100000000"
    assert error_comment(short) == short
    burned = (
        "the image may carry burned-in text (modality US without BurnedInAnnotation) and no"
        " burned-in text rule covers it. Next step: a project owner attests..."
    )
    assert error_comment(burned) == "the image may carry burned-in text; see the Uploads page"
    long_head = "the route changed: the AE title DEMO is no longer routed to any project here"
    said = error_comment(long_head)
    assert len(said) == 64 and said.startswith("the route changed: the AE title DEMO")
    assert said.endswith("…")
