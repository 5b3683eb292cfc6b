"""A segmentation rendered for a PACS that cannot display SEG: one secondary capture per
source image it segments, the image (windowed) with the segments' outline and a light fill
burned in, labelled "NOT FOR DIAGNOSIS" in the pixels and in the header. The header is the
re-identified result's (patient, study); the source pixels are the site's own de-identified
copies (the same pixels the hub segmented). Pure: the caller reads the sources."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pydicom
from giftcloud_deid import ProjectKeys
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, SecondaryCaptureImageStorage

LABEL = "NOT FOR DIAGNOSIS"
#: renderings are made at least this many pixels across, so the label can be read
MIN_SIDE = 256
#: at most this many source images are rendered for one segmentation
MAX_RENDERINGS = 500
OUTLINE = np.array([255, 40, 40], dtype=np.uint8)
#: the patient and study, from the result mapped back
COPIED = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


class CannotRender(ValueError):
    """Why a segmentation has no rendering (it is still delivered as SEG)."""


#: what is rendered as secondary captures for a PACS that cannot show it
SEGMENTATIONS = frozenset({"1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7"})


@dataclass(frozen=True)
class Plan:
    """What a segmentation's rendering needs, read from it as the hub made it (before it is
    mapped back): the mask over each source image, and where each source is archived."""

    masks: dict[tuple[str, int], np.ndarray]
    #: source SOP Instance UID → (study, series), the pseudonymised ones
    sources: dict[str, tuple[str, str]]

    @classmethod
    def of(cls, seg: Dataset) -> Plan:
        masks = masks_by_source(seg)
        study = str(seg.StudyInstanceUID)
        series_of = {
            str(instance.ReferencedSOPInstanceUID): str(series.SeriesInstanceUID)
            for series in seg.get("ReferencedSeriesSequence", [])
            for instance in series.get("ReferencedInstanceSequence", [])
        }
        missing = sorted({sop for sop, _ in masks} - set(series_of))
        if missing:
            raise CannotRender(f"its source image {missing[0]} is not in its referenced series")
        return cls(masks, {sop: (study, series_of[sop]) for sop, _ in masks})


def masks_by_source(seg: Dataset) -> dict[tuple[str, int], np.ndarray]:
    """Each source image (SOP Instance UID, frame number) the segmentation's frames name,
    with the union of its segments there (any non-zero value: binary, fractional, label)."""
    groups = seg.get("PerFrameFunctionalGroupsSequence")
    if not groups:
        raise CannotRender("the segmentation has no per-frame functional groups")
    pixels = np.asarray(seg.pixel_array).reshape(-1, int(seg.Rows), int(seg.Columns))
    if len(pixels) != len(groups):
        raise CannotRender("the segmentation's frames and functional groups differ in number")
    masks: dict[tuple[str, int], np.ndarray] = {}
    for frame, group in zip(pixels, groups, strict=True):
        try:
            source = group.DerivationImageSequence[0].SourceImageSequence[0]
        except (AttributeError, IndexError):
            raise CannotRender("a frame names no source image") from None
        number = int(source.get("ReferencedFrameNumber", 1) or 1)
        key = (str(source.ReferencedSOPInstanceUID), number)
        masks[key] = masks.get(key, np.zeros(frame.shape, dtype=bool)) | (frame > 0)
    return {key: mask for key, mask in masks.items() if mask.any()}


def render(
    mapped: Dataset,
    masks: Mapping[tuple[str, int], np.ndarray],
    sources: Mapping[str, bytes],
    originals: Mapping[str, str],
    keys: ProjectKeys,
) -> list[bytes]:
    """The secondary captures (Part 10 bytes) of ``mapped`` (the re-identified SEG) over its
    ``sources`` (pseudonymised SOP UID → the site's copy); ``originals`` maps the sources'
    UIDs back for the captures' references."""
    series = keys.uid(f"rendering\x00{mapped.SOPInstanceUID}")
    out = []
    for n, ((sop, frame), mask) in enumerate(sorted(masks.items())[:MAX_RENDERINGS], start=1):
        if sop not in sources:
            raise CannotRender(f"its source image {sop} is not in this site's archive")
        source = pydicom.dcmread(io.BytesIO(sources[sop]))
        grey = _grey(source, frame)
        if grey.shape != mask.shape:
            raise CannotRender(f"its mask and source image {sop} differ in size")
        rgb = _burn(grey, mask)
        out.append(_capture(mapped, source, rgb, series, n, originals.get(sop, sop), keys))
    return out


def _grey(source: Dataset, frame: int) -> np.ndarray:
    """The frame as 8-bit grey: rescaled, then windowed by its own window (or its range)."""
    try:
        pixels = np.asarray(source.pixel_array, dtype=np.float64)
    except Exception as exc:  # no codec for its transfer syntax, or no pixels
        raise CannotRender(f"its source image's pixels cannot be read: {exc}") from exc
    if pixels.ndim == 3 and "NumberOfFrames" in source and int(source.NumberOfFrames) > 1:
        pixels = pixels[frame - 1]
    if pixels.ndim != 2:
        raise CannotRender("its source image is not greyscale")
    pixels = pixels * float(source.get("RescaleSlope", 1) or 1) + float(
        source.get("RescaleIntercept", 0) or 0
    )
    center, width = source.get("WindowCenter"), source.get("WindowWidth")
    if center is not None and width is not None:
        center = float(center[0] if isinstance(center, pydicom.multival.MultiValue) else center)
        width = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
        low, high = center - width / 2, center + width / 2
    else:
        low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels - low) / max(high - low, 1e-6)
    grey: np.ndarray = (np.clip(scaled, 0, 1) * 255).astype(np.uint8)
    if source.get("PhotometricInterpretation") == "MONOCHROME1":
        grey = 255 - grey
    return grey


def _burn(grey: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGB: enlarged to be readable, the segment filled lightly and outlined, the label."""
    scale = max(1, math.ceil(MIN_SIDE / max(grey.shape)))
    grey = np.kron(grey, np.ones((scale, scale), dtype=np.uint8))
    mask = np.kron(mask, np.ones((scale, scale), dtype=bool))
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    rgb[mask] = (0.7 * rgb[mask] + 0.3 * OUTLINE).astype(np.uint8)
    rgb[mask & ~inner] = OUTLINE
    image = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 8 + 6 * len(LABEL), 14), fill=(0, 0, 0))
    draw.text((4, 2), LABEL, fill=(255, 255, 0))
    return np.asarray(image)


def _capture(
    mapped: Dataset,
    source: Dataset,
    rgb: np.ndarray,
    series: str,
    number: int,
    source_uid: str,
    keys: ProjectKeys,
) -> bytes:
    ds = Dataset()
    sop = keys.uid(f"rendering\x00{mapped.SOPInstanceUID}\x00{source_uid}")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop)
    ds.SpecificCharacterSet = mapped.get("SpecificCharacterSet", "ISO_IR 192")
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop
    for keyword in COPIED:
        if keyword in mapped:
            setattr(ds, keyword, mapped[keyword].value)
        elif keyword != "IssuerOfPatientID":  # the rest are Type 2: present, maybe empty
            setattr(ds, keyword, "")
    ds.PatientIdentityRemoved = "NO"
    ds.Modality, ds.SeriesInstanceUID, ds.Laterality = "OT", series, ""
    ds.SeriesNumber = int(mapped.get("SeriesNumber", 0) or 0) + 1
    ds.SeriesDescription = f"{LABEL}: rendering of a research segmentation"[:64]
    ds.ConversionType = "WSD"
    ds.InstanceNumber, ds.PatientOrientation = number, ""
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "YES"
    ds.ImageComments = f"{LABEL}. Overlay of research segmentation {mapped.SOPInstanceUID}."
    ds.DerivationDescription = "segmentation outline burned into its source image"
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source_uid
    ds.SourceImageSequence = [reference]
    ds.Rows, ds.Columns = int(rgb.shape[0]), int(rgb.shape[1])
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.ascontiguousarray(rgb).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
