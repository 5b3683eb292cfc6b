"""A small catalogue of de-identified instances, as the archive announces them: two
subjects, three studies, CT and MR, one study without an AccessionNumber."""

import io

import pydicom
from giftcloud_core.events import ArchivedInstance
from giftcloud_core.storage import archive_key
from giftcloud_dicom.metadata import describe

from support.dicom_files import synthetic_instance

#: (subject, study, date, accession, series: (uid, modality, number, instances))
CATALOGUE = [
    ("SUBJ-ALPHA", "2.25.100", "20200101", "ACC1", [("2.25.110", "CT", 1, 3)]),
    (
        "SUBJ-ALPHA",
        "2.25.200",
        "20210615",
        "",
        [("2.25.210", "MR", 1, 2), ("2.25.220", "MR", 2, 2), ("2.25.230", "CT", 3, 1)],
    ),
    ("SUBJ-BETA", "2.25.300", "20220301", "ACC3", [("2.25.310", "MR", 1, 4)]),
]


#: each instance's file, by SOP Instance UID, as made by ``archived_instance``
FILES: dict[str, bytes] = {}


def archived_instance(
    subject: str, study: str, date: str, accession: str, series: tuple[str, str, int, int], n: int
) -> ArchivedInstance:
    series_uid, modality, number, _ = series
    sop = f"{series_uid}.{n}"
    ds = pydicom.dcmread(
        io.BytesIO(synthetic_instance(study_uid=study, series_uid=series_uid, sop_uid=sop))
    )
    ds.PatientID = subject
    ds.PatientName = subject.replace("-", "^")
    ds.StudyDate = date
    ds.Modality = modality
    ds.SeriesNumber = number
    ds.InstanceNumber = n
    ds.Manufacturer = "ACME"
    if accession:
        ds.AccessionNumber = accession
    else:
        del ds.AccessionNumber
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    FILES[sop] = out.getvalue()
    attributes, summary = describe(out.getvalue(), "/bulk", 2**30)
    return ArchivedInstance(
        object_key=archive_key("proj", study, series_uid, sop),
        sha256="0" * 64,
        size=len(out.getvalue()),
        subject=subject,
        study_uid=study,
        series_uid=series_uid,
        sop_uid=sop,
        sop_class_uid=str(ds.SOPClassUID),
        modality=modality,
        study_date=date,
        series_number=number,
        instance_number=n,
        transfer_syntax_uid=summary.transfer_syntax_uid,
        attributes=attributes,
    )


def catalogue() -> list[ArchivedInstance]:
    return [
        archived_instance(subject, study, date, accession, series, n)
        for subject, study, date, accession, all_series in CATALOGUE
        for series in all_series
        for n in range(1, series[3] + 1)
    ]
