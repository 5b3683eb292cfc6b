"""Test DICOM files: pydicom's bundled ones, generated ones, files with planted identifiers."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid


def pydicom_file(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom test file {name} missing"
    return Path(str(path))


def bundled_files() -> list[Path]:
    """Every file in pydicom's bundled test data (DICOM or not)."""
    return sorted(p for p in pydicom_file("CT_small.dcm").parent.iterdir() if p.is_file())


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def synthetic_instance(
    patient: str = "Doe^Jane",
    patient_id: str = "MRN0001",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    rows: int = 8,
) -> bytes:
    """A small valid MR image with identifiers planted where a de-identifier must look."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.PatientName = patient
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.PatientAddress = "1 Secret Lane, Leaksville"
    ds.OtherPatientIDs = f"OTHER-{patient_id}"
    ds.AccessionNumber = f"ACC-{patient_id}"
    ds.ReferringPhysicianName = "Who^Doctor"
    ds.InstitutionName = "St Leaky's Hospital"
    ds.StudyDescription = f"Study of {patient}"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101010"
    ds.Modality = "MR"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Rows = rows
    ds.Columns = rows
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(rows * rows * 2)
    ref = Dataset()
    ref.ReferencedSOPClassUID = MRImageStorage
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    ref.PatientName = patient  # a name hiding in a sequence
    ds.ReferencedImageSequence = [ref]
    block = ds.private_block(0x0011, "LEAKY CORP", create=True)
    block.add_new(0x01, "LO", f"private {patient_id}")
    return to_bytes(ds)


def read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def distinct_instances(count: int, tag: str, rows: int = 8) -> list[bytes]:
    """``count`` distinct instances: 20 per patient (2 studies x 2 series x 5 instances).
    ``tag`` (digits) goes into every UID, so separate corpora never share one."""
    files = []
    for i in range(count):
        patient, rest = divmod(i, 20)
        study, rest = divmod(rest, 10)
        series, instance = divmod(rest, 5)
        study_uid = f"1.2.826.0.1.3680043.9.7.{tag}.{patient}.{study}"
        files.append(
            synthetic_instance(
                patient=f"Patient^{tag}{patient}",
                patient_id=f"{tag}-{patient}",
                study_uid=study_uid,
                series_uid=f"{study_uid}.{series}",
                sop_uid=f"{study_uid}.{series}.{instance}",
                rows=rows,
            )
        )
    return files


def with_uids(data: bytes, **uids: str) -> bytes:
    """``data`` with some of its UIDs replaced by any text (valid or not), e.g.
    ``with_uids(data, StudyInstanceUID="2.25.1/../../b")``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the invalid UIDs we plant on purpose
        ds = read(data)
        for keyword, value in uids.items():
            setattr(ds, keyword, value)
            if keyword == "SOPInstanceUID":
                ds.file_meta.MediaStorageSOPInstanceUID = value
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue()


def deflate_bomb(inflated_bytes: int, **uids: str) -> bytes:
    """A Deflated Explicit VR Little Endian MR image whose dataset inflates to about
    ``inflated_bytes`` (pixel data of zeros): built as a stream, never held inflated."""
    import struct
    import zlib

    from pydicom.uid import DeflatedExplicitVRLittleEndian

    def element(tag: int, vr: str, value: bytes) -> bytes:
        if len(value) % 2:
            value += b"\x00" if vr == "UI" else b" "
        group, number = tag >> 16, tag & 0xFFFF
        if vr in ("OB", "OW", "SQ", "UN", "UT"):
            return struct.pack("<HH2s2xI", group, number, vr.encode(), len(value)) + value
        return struct.pack("<HH2sH", group, number, vr.encode(), len(value)) + value

    sop = uids.get("SOPInstanceUID", generate_uid())
    meta_body = b"".join(
        (
            element(0x00020001, "OB", b"\x00\x01"),
            element(0x00020002, "UI", MRImageStorage.encode()),
            element(0x00020003, "UI", sop.encode()),
            element(0x00020010, "UI", DeflatedExplicitVRLittleEndian.encode()),
            element(0x00020012, "UI", b"1.2.3.4"),
        )
    )
    meta = element(0x00020000, "UL", struct.pack("<I", len(meta_body))) + meta_body
    side = 4096
    frames = max(1, inflated_bytes // (side * side * 2))
    head = b"".join(
        (
            element(0x00080016, "UI", MRImageStorage.encode()),
            element(0x00080018, "UI", sop.encode()),
            element(0x00080060, "CS", b"MR"),
            element(0x00100010, "PN", b"Bomb^Bob"),
            element(0x00100020, "LO", b"MRN-BOMB"),
            element(0x0020000D, "UI", uids.get("StudyInstanceUID", generate_uid()).encode()),
            element(0x0020000E, "UI", uids.get("SeriesInstanceUID", generate_uid()).encode()),
            element(0x00280002, "US", struct.pack("<H", 1)),
            element(0x00280004, "CS", b"MONOCHROME2"),
            element(0x00280008, "IS", str(frames).encode()),
            element(0x00280010, "US", struct.pack("<H", side)),
            element(0x00280011, "US", struct.pack("<H", side)),
            element(0x00280100, "US", struct.pack("<H", 16)),
            element(0x00280101, "US", struct.pack("<H", 16)),
            element(0x00280102, "US", struct.pack("<H", 15)),
            element(0x00280103, "US", struct.pack("<H", 0)),
        )
    )
    pixels = frames * side * side * 2
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunks = [compressor.compress(head + struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OW", pixels))]
    zeros = bytes(1024 * 1024)
    for _ in range(pixels // len(zeros)):
        chunks.append(compressor.compress(zeros))
    chunks.append(compressor.compress(bytes(pixels % len(zeros))))
    chunks.append(compressor.flush())
    return b"\x00" * 128 + b"DICM" + meta + b"".join(chunks)


def patient_file(
    patient_id: str = "MRN123",
    issuer: str | None = None,
    universal: str | None = None,
    others: list[tuple[str, str]] | None = None,
) -> bytes:
    """A file of the same patient as written by some modality: with or without issuer."""
    ds = read(synthetic_instance(patient="Same^Patient", patient_id=patient_id))
    if issuer is not None:
        ds.IssuerOfPatientID = issuer
    if universal is not None:
        qualifier = Dataset()
        qualifier.UniversalEntityID = universal
        qualifier.UniversalEntityIDType = "ISO"
        ds.IssuerOfPatientIDQualifiersSequence = [qualifier]
    if others:
        items = []
        for other_id, other_issuer in others:
            item = Dataset()
            item.PatientID = other_id
            item.IssuerOfPatientID = other_issuer
            item.TypeOfPatientID = "TEXT"
            items.append(item)
        ds.OtherPatientIDsSequence = items
    return to_bytes(ds)


def uncleanable_instance(patient_id: str = "MRN-1BIT") -> bytes:
    """An ultrasound image a burned-in text rule covers (GE LOGIQ9: blank the top band), so
    it passes the header checks at STOW time, but 1-bit: its pixels cannot be cleaned, and
    de-identification rejects it."""
    ds = read(synthetic_instance(patient_id=patient_id))
    ds.Modality, ds.Manufacturer, ds.ManufacturerModelName = "US", "GE", "LOGIQ9"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
    ds.PixelData = bytes(ds.Rows * ds.Columns // 8)
    return to_bytes(ds)


def ultrasound(patient_id: str) -> bytes:
    """An ultrasound image that says nothing of burned-in text: refused unless its kind is
    attested or a masking rule covers it."""
    ds = read(synthetic_instance(patient_id=patient_id))
    ds.Modality = "US"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = bytes([200]) * (ds.Rows * ds.Columns)
    if "BurnedInAnnotation" in ds:
        del ds.BurnedInAnnotation
    return to_bytes(ds)
