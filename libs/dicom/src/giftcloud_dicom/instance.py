"""Checks on received DICOM Part 10 files, shared by every way in (STOW-RS, upload, DIMSE)."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import pydicom
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag
from pydicom.uid import UID

from giftcloud_dicom.part10 import (
    DEFAULT_MAX_INFLATED,
    InflateLimit,
    is_deflated,
    transfer_syntax_of,
    undeflate,
)
from giftcloud_dicom.quiet import quiet
from giftcloud_dicom.raw import Malformed
from giftcloud_dicom.uid import uid_problem

#: PS3.18 / PS3.7 failure reasons used in STOW-RS responses
CANNOT_UNDERSTAND = 0xC000
DOES_NOT_MATCH_SOP_CLASS = 0xA900
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
SOP_CLASS_NOT_SUPPORTED = 0x0122
#: refused: the sender may not store here (any more)
NOT_AUTHORIZED = 0x0124
#: refused for now (a store or the broker failed): a sender may try again
OUT_OF_RESOURCES = 0xA700
#: refused for good (over a size limit, a deflate bomb): an error of the Cxxx class, which
#: senders do not retry, unlike A700 (out of resources), which makes them retry forever
TOO_LARGE = 0xC001
STUDY_UID_MISMATCH = 0xC409  # the instance is not of the study named in the URL
#: refused by the project's de-identification profile (burned-in text, the patient
#: namespace): an error of the Cxxx class PS3.4 defines for C-STORE ("cannot understand":
#: dcmtk names it), where 0x0110, a general DIMSE status, reads "Unknown Status"
REFUSED_BY_PROFILE = 0xC210
#: an ErrorComment is an LO: 64 characters
_COMMENT = 64


def error_comment(message: str) -> str:
    """A refusal's reason as an ErrorComment: whole when it fits in 64 characters, else its
    decisive words (up to the first bracket or sentence end) and where the rest is."""
    if len(message) <= _COMMENT:
        return message
    cut = min((i for i in (message.find(" ("), message.find(". ")) if i > 0), default=len(message))
    head = message[:cut].rstrip(" .;,")
    rest = "; see the Uploads page"
    if len(head) + len(rest) <= _COMMENT:
        return head + rest
    return head[: _COMMENT - 1].rstrip() + "…"


_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
#: deflated instances inflated at once in one process: each may take its ceiling twice over
_INFLATING = threading.BoundedSemaphore(2)


class InvalidInstance(ValueError):
    """A file giftcloud does not accept; ``reason`` is a PS3.18 failure reason code."""

    def __init__(
        self,
        message: str,
        reason: int = CANNOT_UNDERSTAND,
        sop_class_uid: str = "",
        sop_instance_uid: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.sop_class_uid = sop_class_uid
        self.sop_instance_uid = sop_instance_uid


@dataclass(frozen=True)
class InstanceInfo:
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax_uid: str
    #: what a deflated instance inflates to (0: not deflated)
    inflated_size: int = 0


def inspect_instance(data: bytes, *, max_inflated: int = DEFAULT_MAX_INFLATED) -> InstanceInfo:
    """Check that ``data`` is a whole DICOM Part 10 file with valid identifying UIDs; say what
    it is. A deflated dataset is inflated as a stream, refused past ``max_inflated`` bytes.

    Raises :class:`InvalidInstance` naming what is wrong (not DICOM, truncated, a missing tag,
    an invalid UID, a deflate bomb).
    """
    if len(data) < 132 or data[128:132] != b"DICM":
        raise InvalidInstance(
            "not a DICOM Part 10 file: no 'DICM' prefix after the 128-byte preamble"
        )
    try:
        if is_deflated(data):
            with _INFLATING:
                readable = undeflate(data, max_inflated=max_inflated)
        else:
            readable = data
    except InflateLimit as exc:
        raise InvalidInstance(f"refused: {exc}", TOO_LARGE) from exc
    except Malformed as exc:
        raise InvalidInstance(f"not a readable DICOM file: {exc}") from exc
    with quiet():
        # odd values (an IS of '1A') are the archive's to keep, not a reason to refuse a file
        info = _inspect(readable)
    if readable is not data:  # the syntax it came in, not the one it was read in
        info = InstanceInfo(
            info.sop_class_uid,
            info.sop_instance_uid,
            info.study_uid,
            info.series_uid,
            transfer_syntax_of(data),
            inflated_size=len(readable),
        )
    return info


def _inspect(data: bytes) -> InstanceInfo:
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except InvalidDicomError as exc:
        raise InvalidInstance(f"not a readable DICOM file: {exc}") from exc
    except Exception as exc:  # pydicom raises struct.error, EOFError, ValueError... on broken input
        raise InvalidInstance(f"not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    sop_class = str(ds.get("SOPClassUID", "") or "")
    sop_uid = str(ds.get("SOPInstanceUID", "") or "")
    transfer_syntax = ds.file_meta.get("TransferSyntaxUID")
    if not transfer_syntax or not transfer_syntax.is_transfer_syntax:
        raise InvalidInstance(
            f"no valid TransferSyntaxUID in the file meta information ({transfer_syntax!r})",
            TRANSFER_SYNTAX_NOT_SUPPORTED,
            sop_class,
            sop_uid,
        )
    _check_ends_at_last_element(ds, len(data), sop_class, sop_uid)
    _check_complete(ds, transfer_syntax.is_encapsulated, sop_class, sop_uid)
    _check_text(ds, sop_class, sop_uid)
    missing = [name for name in _REQUIRED if not ds.get(name)]
    if missing:
        raise InvalidInstance(
            f"missing required attribute(s) {', '.join(missing)}",
            DOES_NOT_MATCH_SOP_CLASS,
            sop_class,
            sop_uid,
        )
    for name in _REQUIRED:  # they become object keys and URLs: PS3.5 §9.1 or nothing
        value = str(ds.get(name))
        problem = uid_problem(value)
        if problem is not None:
            raise InvalidInstance(
                f"{name} {value[:80]!r} is not a valid UID (PS3.5 §9.1): {problem}",
                CANNOT_UNDERSTAND,
                sop_class if name != "SOPClassUID" else "",
                sop_uid if name != "SOPInstanceUID" else "",
            )
    return InstanceInfo(
        sop_class,
        sop_uid,
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(transfer_syntax),
    )


def _check_complete(ds: Dataset, encapsulated: bool, sop_class: str, sop_uid: str) -> None:
    """pydicom reads a truncated file without complaint: compare declared and read lengths."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if (
            isinstance(raw, RawDataElement)
            and raw.length != 0xFFFFFFFF
            and raw.value is not None
            and len(raw.value) < raw.length
        ):
            raise InvalidInstance(
                f"truncated file: element {tag} declares {raw.length} bytes, {len(raw.value)} present",
                CANNOT_UNDERSTAND,
                sop_class,
                sop_uid,
            )
    image_class = "Image Storage" in UID(sop_class).name
    has_pixels = any(t in ds for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    if (image_class or ("Rows" in ds and "BitsAllocated" in ds)) and not has_pixels:
        raise InvalidInstance(
            "truncated file: image attributes but no pixel data",
            CANNOT_UNDERSTAND,
            sop_class,
            sop_uid,
        )
    if "PixelData" in ds and not encapsulated:
        try:
            expected = _native_pixel_bytes(ds)
        except (AttributeError, TypeError, ValueError):
            return
        if len(ds.PixelData) < expected:
            raise InvalidInstance(
                f"truncated file: pixel data has {len(ds.PixelData)} bytes, {expected} expected",
                CANNOT_UNDERSTAND,
                sop_class,
                sop_uid,
            )


#: VRs whose values are text, where a NUL is no character (UI pads with one at the end)
_TEXT_VRS = frozenset(
    [
        "AE",
        "AS",
        "CS",
        "DA",
        "DS",
        "DT",
        "IS",
        "LO",
        "LT",
        "PN",
        "SH",
        "ST",
        "TM",
        "UC",
        "UI",
        "UR",
        "UT",
    ]
)


def _check_text(ds: Dataset, sop_class: str, sop_uid: str) -> None:
    """A NUL inside a text value is not DICOM (PS3.5 §6.1) and no database keeps it."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if not isinstance(raw, RawDataElement) or not isinstance(raw.value, bytes):
            continue
        vr = raw.VR or _dictionary_vr(tag)
        if vr in _TEXT_VRS and b"\x00" in raw.value.rstrip(b"\x00 "):
            name = keyword_for_tag(tag) or "attribute"
            raise InvalidInstance(
                f"({tag.group:04X},{tag.element:04X}) {name} holds a NUL character, which no"
                " text value may (PS3.5 §6.1)",
                CANNOT_UNDERSTAND,
                sop_class,
                sop_uid,
            )


def _dictionary_vr(tag: BaseTag) -> str:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return ""


def _check_ends_at_last_element(ds: Dataset, size: int, sop_class: str, sop_uid: str) -> None:
    """A file cut between two elements reads cleanly: its last element must end the file."""
    if not len(ds):
        return
    last = ds.get_item(max(ds.keys()))
    if not isinstance(last, RawDataElement) or last.length == 0xFFFFFFFF or last.value_tell is None:
        return
    end = last.value_tell + last.length
    if end != size:
        raise InvalidInstance(
            f"truncated or corrupt file: the last element ends at byte {end} of {size}",
            CANNOT_UNDERSTAND,
            sop_class,
            sop_uid,
        )


def _native_pixel_bytes(ds: Dataset) -> int:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.BitsAllocated)
    pixels = int(ds.Rows) * int(ds.Columns) * samples * frames
    if ds.get("PhotometricInterpretation") == "YBR_FULL_422":
        pixels = pixels * 2 // 3  # chroma subsampled two to one horizontally
    return (pixels * bits + 7) // 8


def ae_title_problem(text: str) -> str | None:
    """What makes ``text`` no AE title (PS3.5 §6.2, VR AE), or None: at most 16 characters
    of the default repertoire, no backslash, no control character, not only spaces."""
    if not text.strip(" "):
        return "an AE title may not be empty or only spaces"
    if len(text) > 16:
        return f"an AE title has at most 16 characters; {text[:20]!r} has {len(text)}"
    if "\\" in text:
        return "an AE title may not hold a backslash"
    if any(ord(c) < 0x20 or ord(c) > 0x7E for c in text):
        return "an AE title holds printable ASCII only (no control or non-ASCII character)"
    return None
