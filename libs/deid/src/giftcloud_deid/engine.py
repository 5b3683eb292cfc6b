"""Interim de-identification: keep only what is known to be safe, replace what identifies.

This is an allow-list: an attribute survives only if it is named here (or is a
numeric/coded attribute of the acquisition, geometry or pixel modules); every
private tag, free text, name, address and ID is dropped or replaced. The complete
PS3.15 Annex E table replaces it (issue 3).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

from giftcloud_deid.keys import ProjectKeys

ENGINE_VERSION = "giftcloud-deid 0.1 (interim allow-list)"

#: groups whose numeric and coded attributes (VRs below) are kept: acquisition, geometry, pixels
_NUMERIC_GROUPS = {0x0018, 0x0020, 0x0028, 0x5200}
_NUMERIC_VRS = {
    "DS",
    "IS",
    "US",
    "SS",
    "UL",
    "SL",
    "FL",
    "FD",
    "CS",
    "AT",
    "OB",
    "OW",
    "OF",
    "OD",
    "OL",
    "UV",
    "SV",
    "SQ",
}
#: identifiers among those groups that the numeric rule would otherwise keep
_DROP = {
    0x00181000,  # DeviceSerialNumber
    0x00181004,  # PlateID
    0x00181005,  # GeneratorID
    0x00181007,  # CassetteID
    0x00181008,  # GantryID
    0x0018700A,  # DetectorID
    0x00184000,  # AcquisitionComments
    0x00204000,  # ImageComments
    0x00280303,  # LongitudinalTemporalInformationModified: set anew
}
#: kept as they are
_KEEP = {
    0x00080005,  # SpecificCharacterSet
    0x00080008,  # ImageType
    0x00080016,  # SOPClassUID
    0x00080060,  # Modality
    0x00080064,  # ConversionType
    0x00080070,  # Manufacturer
    0x00081090,  # ManufacturerModelName
    0x00080030,
    0x00080031,
    0x00080032,
    0x00080033,  # Study/Series/Acquisition/Content time
    0x00100040,  # PatientSex
    0x00101010,  # PatientAge
    0x00101020,  # PatientSize
    0x00101030,  # PatientWeight
    0x00200013,  # InstanceNumber
    0x00200011,  # SeriesNumber
    0x7FE00010,  # PixelData
    0x7FE00008,  # FloatPixelData
    0x7FE00009,  # DoubleFloatPixelData
}
#: dates kept, shifted by the subject's offset
_SHIFTED_DATES = {0x00080020, 0x00080021, 0x00080022, 0x00080023, 0x0008002A}
#: emptied (Type 2 attributes a valid file keeps)
_EMPTIED = {0x00080050, 0x00080090, 0x00100030, 0x00200010}
#: referencing sequences whose items keep their (remapped) UIDs
_REFERENCE_SEQUENCES = {
    0x00081140,  # ReferencedImageSequence
    0x00081115,  # ReferencedSeriesSequence
    0x00081199,  # ReferencedSOPSequence
    0x00081110,  # ReferencedStudySequence
    0x00081250,  # RelatedSeriesSequence
    0x00082112,  # SourceImageSequence
}
_REQUIRED = ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")


class Rejected(Exception):
    """An instance the engine will not pass on; ``reason`` says why, for the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DeidentifiedInstance:
    data: bytes
    subject: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str


@lru_cache(maxsize=4096)
def _well_known(uid: str) -> bool:
    """Registered in the DICOM dictionary (SOP classes, transfer syntaxes, coding schemes)."""
    parsed = UID(uid)
    return parsed.is_valid and parsed.name != uid


class _Context:
    def __init__(self, keys: ProjectKeys, subject: str) -> None:
        self.keys = keys
        self.shift = timedelta(days=keys.date_shift_days(subject))

    def uid(self, value: str) -> str:
        return value if _well_known(value) else self.keys.uid(value)

    def shift_date(self, value: str) -> str:
        try:
            parsed = datetime.strptime(value.strip()[:8], "%Y%m%d").date()
        except ValueError:
            return ""
        return (parsed + self.shift).strftime("%Y%m%d")


def _remap_uids(element: DataElement, ctx: _Context) -> DataElement:
    if element.VM > 1:
        element.value = [ctx.uid(str(v)) for v in element.value]
    elif element.value:
        element.value = ctx.uid(str(element.value))
    return element


def _clean(source: Dataset, ctx: _Context, *, in_reference: bool = False) -> Dataset:
    out = Dataset()
    for element in source:
        tag: BaseTag = element.tag
        tag_int = int(tag)
        if tag.is_private or tag.group & 0xFF00 == 0x6000 or tag_int in _DROP:
            continue
        vr = element.VR
        if vr == "SQ":
            if tag_int in _REFERENCE_SEQUENCES or tag.group in _NUMERIC_GROUPS:
                element.value = [
                    _clean(item, ctx, in_reference=in_reference or tag_int in _REFERENCE_SEQUENCES)
                    for item in element.value
                ]
                out.add(element)
            continue
        if vr == "UI":
            if tag_int == 0x00080016 or in_reference or tag.group in {0x0008, 0x0020}:
                out.add(_remap_uids(element, ctx))
            continue
        if tag_int in _KEEP:
            out.add(element)
        elif tag_int in _SHIFTED_DATES and element.value:
            element.value = ctx.shift_date(str(element.value))
            out.add(element)
        elif tag_int in _EMPTIED:
            out.add(DataElement(tag, vr, ""))
        elif tag.group in _NUMERIC_GROUPS and vr in _NUMERIC_VRS:
            out.add(element)
    return out


def deidentify(data: bytes, keys: ProjectKeys) -> DeidentifiedInstance:
    """De-identify one DICOM Part 10 file; :class:`Rejected` with a reason if it cannot be."""
    try:
        source = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise Rejected(f"not a readable DICOM Part 10 file: {exc}") from exc
    missing = [name for name in _REQUIRED if not source.get(name)]
    if missing:
        raise Rejected(f"missing required attribute(s): {', '.join(missing)}")
    issuer = str(source.get("IssuerOfPatientID", "") or "")
    patient_id = str(source.get("PatientID", "") or "")
    if not patient_id:
        # no ID: group by name and birth date, else the study stands alone
        patient_id = (
            "|".join(
                str(source.get(n, "") or "") for n in ("PatientName", "PatientBirthDate")
            ).strip("|")
            or f"study:{source.StudyInstanceUID}"
        )
    subject = keys.subject(issuer, patient_id)
    ctx = _Context(keys, subject)

    out = _clean(source, ctx)
    out.PatientName = subject
    out.PatientID = subject
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = f"{ENGINE_VERSION}; key {keys.key_id}"
    out.LongitudinalTemporalInformationModified = "MODIFIED"
    age = source.get("PatientAge")
    if age:
        out.PatientAge = _cap_age(str(age))

    transfer_syntax = source.file_meta.get("TransferSyntaxUID") if source.file_meta else None
    if transfer_syntax is None:
        raise Rejected("no TransferSyntaxUID in the file meta information")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = out.SOPClassUID
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out.file_meta = meta
    out.set_original_encoding(
        transfer_syntax.is_implicit_VR,
        transfer_syntax.is_little_endian,
        source.original_character_set,
    )
    buffer = io.BytesIO()
    out.save_as(buffer, enforce_file_format=True)
    return DeidentifiedInstance(
        data=buffer.getvalue(),
        subject=subject,
        study_uid=str(out.StudyInstanceUID),
        series_uid=str(out.SeriesInstanceUID),
        sop_uid=str(out.SOPInstanceUID),
        sop_class_uid=str(out.SOPClassUID),
        transfer_syntax_uid=str(transfer_syntax),
    )


def _cap_age(age: str) -> str:
    """Ages over 89 years are reported as 90Y (HIPAA safe harbour)."""
    if age.endswith("Y") and age[:-1].isdigit() and int(age[:-1]) > 89:
        return "090Y"
    return age
