"""A job's image outputs: kept only when every file is DICOM, with its UIDs, about a study
of the job's cohort; otherwise none is, and the reason names the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from giftcloud_api.jobs.images import BadImage, checked
from support.dicom_files import synthetic_instance

STUDY = "2.25.4242"


def test_dicom_about_the_cohort_is_taken_with_its_uids(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "seg.dcm").write_bytes(synthetic_instance(study_uid=STUDY, sop_uid="2.25.7"))
    [made] = checked(tmp_path, {STUDY: "SUBJ-1"})
    assert (made.sop, made.study, made.sop_class) == ("2.25.7", STUDY, "1.2.840.10008.5.1.4.1.1.4")


def test_nothing_written_is_nothing_kept(tmp_path: Path) -> None:
    assert checked(tmp_path, {STUDY: "SUBJ-1"}) == []
    assert checked(tmp_path / "absent", {STUDY: "SUBJ-1"}) == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not DICOM at all", "image output bad.dcm is not DICOM"),
        (synthetic_instance(study_uid="2.25.999"), "about a study outside the job's cohort"),
    ],
)
def test_a_file_that_is_not_dicom_of_the_cohort_keeps_none(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    (tmp_path / "good.dcm").write_bytes(synthetic_instance(study_uid=STUDY))
    (tmp_path / "bad.dcm").write_bytes(content)
    with pytest.raises(BadImage, match=reason):
        checked(tmp_path, {STUDY: "SUBJ-1"})
