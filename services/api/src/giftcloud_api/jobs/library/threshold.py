"""A segmentation of each series where the pixels lie above a threshold: a derived image
(DICOM SEG, made with highdicom), which stays at the site and goes through its results path
to the hospital, never to the hub."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

#: type 2 attributes a SEG copies from its sources: empty where a de-identified source has none
COPIED = ("StudyID", "AccessionNumber", "ReferringPhysicianName", "PatientBirthDate")


def run(inputs: Path, parameters: dict[str, Any], images: Path) -> dict[str, Any]:
    """Each series segmented where its rescaled pixels exceed a threshold (kept at the site)."""
    threshold = float(parameters.get("threshold", 0))
    algorithm = hd.AlgorithmIdentificationSequence(
        name="giftcloud threshold", version="1", family=codes.cid7162.ArtificialIntelligence
    )
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=f"above {threshold:g}",
        segmented_property_category=codes.cid7150.Tissue,
        segmented_property_type=codes.cid7166.ConnectiveTissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
    )
    for number, series in enumerate(sorted(p for p in inputs.iterdir() if p.is_dir())):
        sources = [pydicom.dcmread(path) for path in sorted(series.glob("*.dcm"))]
        sources = [ds for ds in sources if "PixelData" in ds]
        if not sources:
            continue
        sources.sort(key=lambda ds: int(ds.get("InstanceNumber", 0) or 0))
        for ds in sources:
            for keyword in COPIED:
                if keyword not in ds:
                    setattr(ds, keyword, "")
        mask = np.stack(
            [
                ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1) or 1)
                + float(ds.get("RescaleIntercept", 0) or 0)
                > threshold
                for ds in sources
            ]
        )
        with warnings.catch_warnings():  # a pseudonym is one name component: highdicom warns
            warnings.simplefilter("ignore")
            seg = hd.seg.Segmentation(
                source_images=sources,
                pixel_array=mask,
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=[segment],
                series_instance_uid=generate_uid(),
                series_number=900,
                sop_instance_uid=generate_uid(),
                instance_number=1,
                manufacturer="giftcloud",
                manufacturer_model_name="threshold-segmentation",
                software_versions="1",
                device_serial_number="site",
                series_description=f"pixels above {threshold:g}",
            )
        if "ImageOrientationPatient" not in sources[0]:  # no geometry: type 2C, then 2
            seg.PatientOrientation = sources[0].get("PatientOrientation", "")
        seg.save_as(images / f"segmentation-{number:05d}.dcm")
    return {}
