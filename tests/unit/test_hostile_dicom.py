"""Files built to hurt: UIDs that reach into another project's keys, deflate bombs. Each
way a UID or a deflated dataset enters is refused with a reason, never trusted."""

import tracemalloc

import pytest
from giftcloud_core.storage import archive_key
from giftcloud_deid import Deidentifier, Option, Profile, ProjectKeys, Rejected, audit
from giftcloud_deid.keys import ProjectKeys as Keys
from giftcloud_dicom.instance import (
    CANNOT_UNDERSTAND,
    TOO_LARGE,
    InvalidInstance,
    inspect_instance,
)
from giftcloud_dicom.part10 import InflateLimit, inflate, undeflate
from giftcloud_dicom.raw import Malformed
from giftcloud_dicom.uid import check_uid, is_valid_uid, uid_problem
from hypothesis import given
from hypothesis import strategies as st
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian
from support.dicom_files import (
    deflate_bomb,
    pydicom_file,
    read,
    synthetic_instance,
    to_bytes,
    with_uids,
)

ESCAPE = "2.25.1/../../b/2.25.77"
MiB = 1024 * 1024


@pytest.mark.parametrize(
    "uid", ["0", "1.2", "2.25.329800735698586629295641978511506172918", "1.2.840.10008.1.2.1"]
)
def test_valid_uids(uid: str) -> None:
    assert is_valid_uid(uid) and check_uid(uid, "X") == uid


@pytest.mark.parametrize(
    ("uid", "problem"),
    [
        ("", "empty"),
        (ESCAPE, "not only digits"),
        ("1.2.03", "starts with a zero"),
        ("1..2", "component 2 is empty"),
        ("1.2.", "component 3 is empty"),
        (".1", "component 1 is empty"),
        ("1.2\x00", "not only digits"),
        ("1.2 ", "not only digits"),
        ("1.٢", "not only digits"),  # a digit, but not an ASCII one
        ("1." + "2" * 63, "at most 64"),
    ],
)
def test_invalid_uids_say_why(uid: str, problem: str) -> None:
    assert problem in (uid_problem(uid) or "")
    with pytest.raises(ValueError, match="not a valid UID"):
        check_uid(uid, "StudyInstanceUID")


@given(st.text(alphabet="0123456789./\\x", max_size=70))
def test_a_valid_uid_is_a_safe_path_segment(uid: str) -> None:
    if is_valid_uid(uid):
        assert "/" not in uid and ".." not in uid and len(uid) <= 64


@given(st.text(max_size=40))
def test_pseudonymised_uids_are_always_valid(original: str) -> None:
    assert is_valid_uid(Keys(project="p", secret=b"k" * 32).uid(original))


def test_archive_keys_are_built_from_valid_parts_only() -> None:
    assert archive_key("pb", "2.25.1", "2.25.2", "2.25.3") == "pb/2.25.1/2.25.2/2.25.3.dcm"
    with pytest.raises(ValueError, match="StudyInstanceUID"):
        archive_key("pa", ESCAPE, "2.25.2", "2.25.3")
    with pytest.raises(ValueError, match="project name"):
        archive_key("../pb", "2.25.1", "2.25.2", "2.25.3")


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
def test_ingest_refuses_an_invalid_uid(keyword: str) -> None:
    data = with_uids(synthetic_instance(), **{keyword: ESCAPE})
    with pytest.raises(InvalidInstance, match=f"{keyword} .* is not a valid UID") as caught:
        inspect_instance(data)
    assert caught.value.reason == CANNOT_UNDERSTAND


def test_the_engine_never_outputs_an_invalid_uid() -> None:
    """Under Retain UIDs the input's UIDs are kept: an invalid one is refused, not kept."""
    keys = ProjectKeys.derive(b"s" * 32, "a")
    retain = Profile(options=frozenset({Option.RETAIN_UIDS}))
    data = with_uids(synthetic_instance(), StudyInstanceUID=ESCAPE)
    with pytest.raises(Rejected, match=r"StudyInstanceUID .* is not a valid UID"):
        Deidentifier(keys, retain).deidentify(data)
    # by default the UID is replaced: the output is valid whatever came in
    result = Deidentifier(keys).deidentify(data)
    assert is_valid_uid(result.study_uid)


def test_a_hub_audit_refuses_a_deidentified_file_with_an_escaping_uid() -> None:
    site = Deidentifier(ProjectKeys.derive(b"s" * 32, "a")).deidentify(synthetic_instance())
    assert audit(site.data) == []
    evil = with_uids(site.data, StudyInstanceUID=f"2.25.1/../../b/{site.study_uid}")
    assert any("StudyInstanceUID" in p and "not a valid UID" in p for p in audit(evil))


def test_inflating_a_bomb_is_refused_without_its_memory() -> None:
    bomb = deflate_bomb(1024 * MiB)
    assert len(bomb) < 1.1 * MiB
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInstance, match="inflates to more than") as caught:
            inspect_instance(bomb, max_inflated=64 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.reason == TOO_LARGE
    assert peak < 8 * MiB, f"refusing the bomb held {peak / MiB:.0f} MiB"


def test_every_reader_of_a_deflated_file_keeps_to_the_ceiling() -> None:
    bomb = deflate_bomb(256 * MiB)
    with pytest.raises(InflateLimit):
        undeflate(bomb, max_inflated=64 * MiB)
    keys = ProjectKeys.derive(b"s" * 32, "a")
    with pytest.raises(Rejected, match="inflates to more than"):
        Deidentifier(keys, max_inflated=64 * MiB).deidentify(bomb)
    assert any("inflates to more than" in p for p in audit(bomb, max_inflated=64 * MiB))


def test_a_real_deflated_file_is_read_within_the_ceiling() -> None:
    data = pydicom_file("image_dfl.dcm").read_bytes()
    info = inspect_instance(data)
    assert info.transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    assert info.inflated_size > len(data)
    plain = undeflate(data)
    assert read(plain).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert read(plain).PixelData == read(data).PixelData
    mr = read(synthetic_instance(rows=64))
    mr.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    deflated = to_bytes(mr)
    result = Deidentifier(ProjectKeys.derive(b"s" * 32, "a")).deidentify(deflated)
    assert read(result.data).PixelData == mr.PixelData
    assert read(result.data).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    with pytest.raises(InvalidInstance, match="inflates to more than"):
        inspect_instance(data, max_inflated=info.inflated_size // 2)


@pytest.mark.parametrize("cut", [10, 100, 1000])
def test_a_cut_deflate_stream_is_malformed(cut: int) -> None:
    data = pydicom_file("image_dfl.dcm").read_bytes()
    with pytest.raises(Malformed, match=r"cut short|cannot be inflated"):
        inflate(data[400 : len(data) - cut], 1 << 30)
