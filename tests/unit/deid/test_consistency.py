"""Two patients x two studies x three series, de-identified in two separate runs:
grouping, references and time intervals survive; the runs agree byte for byte."""

from datetime import datetime

import pydicom
from giftcloud_deid import Deidentifier, ProjectKeys
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from support.dicom_files import read, synthetic_instance, to_bytes

SECRET = b"c" * 32


def corpus() -> dict[tuple[int, int, int, int], bytes]:
    files = {}
    for patient in range(2):
        for study in range(2):
            study_uid = f"1.2.826.0.1.3680043.9.7.77.{patient}.{study}"
            for series in range(3):
                series_uid = f"{study_uid}.{series}"
                for instance in range(2):
                    ds = read(
                        synthetic_instance(
                            patient=f"Pat^{patient}",
                            patient_id=f"CONS-{patient}",
                            study_uid=study_uid,
                            series_uid=series_uid,
                            sop_uid=f"{series_uid}.{instance}",
                        )
                    )
                    ds.StudyDate = ["20240101", "20240301"][study]
                    ds.FrameOfReferenceUID = f"{study_uid}.99"
                    ref = Dataset()
                    ref.ReferencedSOPClassUID = ds.SOPClassUID
                    ref.ReferencedSOPInstanceUID = f"{series_uid}.0"  # each refers to the first
                    ds.ReferencedImageSequence = [ref]
                    files[(patient, study, series, instance)] = to_bytes(ds)
    return files


def run(files: dict[tuple[int, int, int, int], bytes]) -> dict[tuple[int, int, int, int], bytes]:
    engine = Deidentifier(ProjectKeys.derive(SECRET, "consistency"))  # a fresh run each time
    return {key: engine.deidentify(data).data for key, data in files.items()}


def test_two_runs_keep_grouping_references_and_intervals() -> None:
    files = corpus()
    first, second = run(files), run(files)
    assert first == second  # a pure function of input and key
    out = {key: read(data) for key, data in first.items()}
    subjects = {p: {ds.PatientID for k, ds in out.items() if k[0] == p} for p in range(2)}
    assert all(len(s) == 1 for s in subjects.values())
    assert subjects[0] != subjects[1]
    for patient in range(2):
        studies = {out[(patient, s, 0, 0)].StudyInstanceUID for s in range(2)}
        assert len(studies) == 2
        series = {out[(patient, s, r, 0)].SeriesInstanceUID for s in range(2) for r in range(3)}
        assert len(series) == 6
        dates = [datetime.strptime(out[(patient, s, 0, 0)].StudyDate, "%Y%m%d") for s in range(2)]
        assert (dates[1] - dates[0]).days == 60  # 2024-01-01 → 2024-03-01
        assert dates[0] != datetime(2024, 1, 1)
    for key, ds in out.items():
        patient, study, series, _ = key
        first_of_series = out[(patient, study, series, 0)]
        assert (
            ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == first_of_series.SOPInstanceUID
        )
        assert ds.StudyInstanceUID == first_of_series.StudyInstanceUID
        assert ds.FrameOfReferenceUID == out[(patient, study, 0, 0)].FrameOfReferenceUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPClassUID == pydicom.uid.MRImageStorage  # well-known UIDs stay


KEYS = ProjectKeys.derive(SECRET, "uids")
UIDS = st.from_regex(r"[1-9][0-9]{0,5}(\.(0|[1-9][0-9]{0,8})){1,8}", fullmatch=True)


@settings(max_examples=300)
@given(st.lists(UIDS, min_size=2, max_size=20, unique=True))
def test_uid_mapping_is_valid_short_and_injective(originals: list[str]) -> None:
    mapped = [KEYS.uid(u) for u in originals]
    assert len(set(mapped)) == len(originals)
    for uid in mapped:
        assert len(uid) <= 64
        assert pydicom.uid.UID(uid).is_valid
        assert uid.startswith("2.25.")
    assert mapped == [KEYS.uid(u) for u in originals]
