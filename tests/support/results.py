"""Results as a research group makes them at a hub, with highdicom on the hub's copy: a CT
series with geometry, and a segmentation of it that a hub's verifier accepts (the sources'
de-identification attributes copied, UIDs of the 2.25 form, no equipment identity)."""

from __future__ import annotations

import io
import warnings

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

MARKERS = (
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
    "LongitudinalTemporalInformationModified",
)


def ct_series(slices: int, patient_id: str, size: int = 16) -> list[bytes]:
    """An identifiable CT series of ``slices`` ``size`` by ``size`` slices (a ramp brighter
    from slice to slice), one frame of reference."""
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    files = []
    for i in range(slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        sop = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID = "Quill^Ada", patient_id
        ds.PatientBirthDate, ds.PatientSex = "19700101", "F"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20200101", "101010", "ACC-1"
        ds.ReferringPhysicianName, ds.StudyID = "", "1"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, i + 1
        ds.Manufacturer, ds.PositionReferenceIndicator = "ACME", ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.BurnedInAnnotation = "NO"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelSpacing, ds.SliceThickness = [1, 1], 1
        ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0, 0, i]
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ramp = (np.arange(size * size) * 256 // (size * size)).reshape(size, size)
        ds.PixelData = (ramp + i).astype(np.uint16).tobytes()
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        files.append(out.getvalue())
    return files


def segmentation(sources: list[bytes]) -> bytes:
    """A binary segmentation of de-identified ``sources`` (a square in every slice, from a
    quarter to half of the rows and columns), made with highdicom as a hub's researcher
    would, then made fit for the hub's verifier."""
    images = [pydicom.dcmread(io.BytesIO(data)) for data in sources]
    size = int(images[0].Rows)
    mask = np.zeros((len(images), size, size), dtype=bool)
    mask[:, size // 4 : size // 2, size // 4 : size // 2] = True
    algorithm = hd.AlgorithmIdentificationSequence(
        name="square-finder", version="1.0", family=codes.cid7162.ArtificialIntelligence
    )
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="lesion",
        segmented_property_category=codes.cid7150.Tissue,
        segmented_property_type=codes.cid7166.ConnectiveTissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
    )
    with warnings.catch_warnings():  # a pseudonym is one name component: highdicom warns
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person")
        seg = _segmentation(images, mask, segment)
    # what a hub verifies of any instance: the declared profile, its UIDs, nothing more
    for keyword in MARKERS:
        if keyword in images[0]:
            setattr(seg, keyword, images[0][keyword].value)
    del seg.DeviceSerialNumber
    if "ContributingEquipmentSequence" in seg:
        del seg.ContributingEquipmentSequence
    organisation = generate_uid(prefix=None)
    for item in [*seg.DimensionOrganizationSequence, *seg.DimensionIndexSequence]:
        item.DimensionOrganizationUID = organisation
    out = io.BytesIO()
    seg.save_as(out)
    return out.getvalue()


def _segmentation(
    images: list[pydicom.Dataset], mask: np.ndarray, segment: hd.seg.SegmentDescription
) -> hd.seg.Segmentation:
    return hd.seg.Segmentation(
        source_images=images,
        pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=generate_uid(prefix=None),
        series_number=90,
        sop_instance_uid=generate_uid(prefix=None),
        instance_number=1,
        manufacturer="giftcloud tests",
        manufacturer_model_name="square-finder",
        software_versions="1.0",
        device_serial_number="0",
        series_description="lesion segmentation",
    )
