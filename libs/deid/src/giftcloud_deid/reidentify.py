"""A result made on de-identified images, mapped back to the hospital's originals: the
patient restored from the vault's record of its study, every UID that refers to the
original images (at any depth) replaced by the original, the result's own UIDs new, and its
series marked as research. Pure: the caller opens the vault and keeps the keys.

The map is the engine's own rule run forwards: each original UID the engine replaced was
sealed in the vault, and ``keys.uid(original)`` is the pseudonym the hub's copy carries, so
nothing but the vault's originals can come back. A reference that maps to no original is
not guessed at: the result is held with the attribute's path.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from giftcloud_deid.keys import ProjectKeys
from giftcloud_deid.vault import VaultRecord

#: attributes whose UIDs refer to the images a result derives from: each must map back
REFERENCES = frozenset(
    {
        0x00081155,  # ReferencedSOPInstanceUID
        0x0020000D,  # StudyInstanceUID
        0x0020000E,  # SeriesInstanceUID (in a sequence: a referenced series)
        0x00200052,  # FrameOfReferenceUID
        0x30060024,  # ReferencedFrameOfReferenceUID
        0x300600C2,  # RelatedFrameOfReferenceUID
    }
)
#: the result's own identity, new at the site (at the top level only)
OWN = (0x00080018, 0x0020000E)  # SOPInstanceUID, SeriesInstanceUID
MARK = "RESEARCH RESULT, NOT FOR DIAGNOSIS"
#: what said the instance was de-identified: no longer true
DEIDENTIFIED = ("DeidentificationMethod", "DeidentificationMethodCodeSequence")
#: IODs with the Enhanced General Equipment module, whose attributes are Type 1 though a
#: de-identification profile removes the device's serial number: said to be unknown
ENHANCED_EQUIPMENT = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
        "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation
        "1.2.840.10008.5.1.4.1.1.30",  # Parametric Map
    }
)
EQUIPMENT = ("Manufacturer", "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions")


class Unmappable(ValueError):
    """A result that cannot be mapped back; ``reasons`` says each reference that failed."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def inverse(
    keys: ProjectKeys, records: Iterable[VaultRecord], originals: Iterable[str]
) -> dict[str, str]:
    """Pseudonymised UID → original, for the subject's studies and sealed UIDs."""
    mapped = {keys.uid(original): original for original in originals}
    for record in records:
        mapped[record.pseudonymised_study_uid] = record.study_uid
    return mapped


def read(data: bytes) -> Dataset:
    """A result as pydicom reads it; :class:`Unmappable` for one that cannot be read."""
    try:
        return pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, ValueError, EOFError) as exc:
        raise Unmappable([f"not a readable DICOM file: {exc}"]) from exc


def reidentify(
    ds: Dataset, keys: ProjectKeys, records: list[VaultRecord], mapped: dict[str, str]
) -> bytes:
    """Map the result ``ds`` back, in place, with the subject's vault ``records`` and
    ``mapped`` (:func:`inverse`); its Part 10 bytes. :class:`Unmappable` when any
    reference (or its study) is not the site's."""
    study = str(ds.get("StudyInstanceUID", ""))
    record = next((r for r in records if r.pseudonymised_study_uid == study), None)
    if record is None:
        raise Unmappable([f"its study {study or '(none)'} is no study this site sent"])
    problems: list[str] = []
    # the result's own UIDs: new, and the same each time it is mapped (a redelivery)
    own = {tag: keys.uid(f"result\x00{ds[tag].value}") for tag in OWN if tag in ds}
    _map(ds, mapped, own, problems, "")
    if problems:
        raise Unmappable(problems)
    ds.PatientName = record.name
    ds.PatientID = record.patient_id
    if record.issuer:
        ds.IssuerOfPatientID = record.issuer
    ds.PatientBirthDate = record.birth_date
    ds.PatientIdentityRemoved = "NO"
    for keyword in DEIDENTIFIED:
        if keyword in ds:
            delattr(ds, keyword)
    if str(ds.get("SOPClassUID", "")) in ENHANCED_EQUIPMENT:
        for keyword in EQUIPMENT:
            if not ds.get(keyword):
                setattr(ds, keyword, "UNKNOWN")
    description = str(ds.get("SeriesDescription", "")).strip()
    ds.SeriesDescription = (f"{MARK}: {description}" if description else MARK)[:64]
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _map(
    ds: Dataset, mapped: dict[str, str], own: dict[int, str], problems: list[str], path: str
) -> None:
    for element in ds:
        tag = int(element.tag)
        if element.VR == "SQ":
            for i, item in enumerate(element.value):
                _map(item, mapped, {}, problems, f"{path}{element.keyword}[{i + 1}] > ")
            continue
        if element.VR != "UI" or element.value in (None, ""):
            continue
        if tag in own:
            element.value = own[tag]
            continue
        values = list(element.value) if element.VM > 1 else [str(element.value)]
        out = []
        for value in values:
            if value in mapped:
                out.append(mapped[value])
            elif tag in REFERENCES:
                problems.append(f"{path}{element.keyword} {value} names nothing this site sent")
                out.append(value)
            else:
                out.append(value)
        element.value = out if element.VM > 1 else out[0]
