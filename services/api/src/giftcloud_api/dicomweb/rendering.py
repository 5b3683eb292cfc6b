"""Frames, bulk data and rendered images of an archived instance (PS3.18 §8.7.3-4, §9.5):
pure functions of its bytes, run in a worker thread by the routes."""

from __future__ import annotations

import io
import re
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from giftcloud_core.errors import BadRequest, NotAcceptable, NotFound
from giftcloud_dicom.part10 import undeflate
from giftcloud_dicom.quiet import quiet
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut
from pydicom.pixels.utils import pixel_array
from pydicom.uid import UID

UNCOMPRESSED = "1.2.840.10008.1.2.1"
#: the media type of a frame in each compressed transfer syntax (PS3.18 Table 8.7.3-2)
FRAME_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
RENDERED_TYPES = ("image/jpeg", "image/png")


def read(data: bytes, max_inflated: int) -> Dataset:
    """The instance, parsed once for every function below (a deflated one inflated as a
    stream, never past ``max_inflated``)."""
    with quiet():
        return pydicom.dcmread(io.BytesIO(undeflate(data, max_inflated=max_inflated)))


@dataclass(frozen=True)
class Frames:
    """Frames of an instance as stored: their bytes, media type and transfer syntax."""

    frames: list[bytes]
    media_type: str
    transfer_syntax: str


def _count(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def parse_frame_list(text: str) -> list[int]:
    """``1,3,5``: frame numbers from 1, as PS3.18 §8.3.3.1 writes them."""
    try:
        numbers = [int(n) for n in text.split(",")]
    except ValueError:
        raise BadRequest(f"frames {text!r}: a comma-separated list of numbers from 1") from None
    if not numbers or min(numbers) < 1:
        raise BadRequest(f"frames {text!r}: frame numbers start at 1")
    return numbers


def frames(ds: Dataset, numbers: list[int] | None = None) -> Frames:
    """The numbered frames as stored: uncompressed pixel data cut per frame (little endian),
    or each frame's compressed bitstream."""
    if "PixelData" not in ds:
        raise NotFound("this instance has no pixel data")
    count = _count(ds)
    numbers = numbers or list(range(1, count + 1))  # none named: every frame
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise NotFound(f"no frame {beyond[0]}: the instance has {count}")
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if syntax.is_compressed:
        every = list(generate_frames(ds.PixelData, number_of_frames=count))
        media = FRAME_TYPES.get(str(syntax), "application/octet-stream")
        return Frames([every[n - 1] for n in numbers], media, str(syntax))
    if not syntax.is_little_endian:
        raise NotAcceptable("frames of a big-endian instance are not offered")
    bits = int(ds.BitsAllocated)
    if bits % 8:
        raise NotAcceptable(f"frames of {bits}-bit pixel data are not offered")
    size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * bits // 8
    pixels = bytes(ds.PixelData)
    if len(pixels) < size * count:
        raise NotFound(f"the pixel data holds fewer than {count} frames")
    return Frames(
        [pixels[(n - 1) * size : n * size] for n in numbers],
        "application/octet-stream",
        UNCOMPRESSED,
    )


def decoded_frames(ds: Dataset, numbers: list[int] | None = None) -> Frames:
    """The numbered frames (every one when none are named) decoded to native little-endian
    pixels (what a client asking for ``application/octet-stream`` of a compressed instance
    needs)."""
    stored = frames(ds, numbers)  # checks the numbers
    numbers = numbers or list(range(1, _count(ds) + 1))
    if stored.transfer_syntax == UNCOMPRESSED:
        return stored
    out = []
    for number in numbers:
        try:
            with quiet():
                arr = pixel_array(ds, index=number - 1, raw=True)
        except Exception as exc:  # a codec missing or the bitstream broken
            raise NotAcceptable(f"frame {number} cannot be decoded here: {exc}") from None
        out.append(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    return Frames(out, "application/octet-stream", UNCOMPRESSED)


def bulk(ds: Dataset, tag: str) -> bytes:
    """A top-level attribute's value, as stored (the target of a BulkDataURI)."""
    element = ds.get(int(tag, 16))
    if element is None or element.value is None:
        raise NotFound(f"no attribute {tag} in this instance")
    value = element.value
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise NotFound(f"attribute {tag} holds no bulk data")


@dataclass(frozen=True)
class Rendering:
    """How to render: a window (centre, width) or the file's own, a viewport to fit, the
    media type and its JPEG quality."""

    window: tuple[float, float] | None = None
    viewport: tuple[int, int] | None = None
    media_type: str = "image/jpeg"
    quality: int = 90


def rendering(
    params: list[tuple[str, str]], accept: str, thumbnail: bool = False, multipart: bool = False
) -> Rendering:
    """The rendering a query (``window``, ``viewport``, ``quality``) and an Accept header ask
    for (with ``multipart``, a series' or study's: ``multipart/related; type=...`` too);
    anything else is 400, an image type not offered 406."""
    window = viewport = None
    quality = 90
    for name, value in params:
        if name == "window":
            parts = value.split(",")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("linear", "")):
                raise BadRequest("window is 'center,width[,linear]'")
            try:
                window = (float(parts[0]), float(parts[1]))
            except ValueError:
                raise BadRequest("window is 'center,width[,linear]' (numbers)") from None
            if window[1] < 1:
                raise BadRequest("window: the width must be at least 1")
        elif name == "viewport":
            try:
                width, height = (int(v) for v in value.split(",")[:2])
            except ValueError:
                raise BadRequest("viewport is 'width,height' in pixels") from None
            if not (1 <= width <= 4096 and 1 <= height <= 4096):
                raise BadRequest("viewport: each side from 1 to 4096 pixels")
            viewport = (width, height)
        elif name == "quality":
            if not value.isdigit() or not 1 <= int(value) <= 100:
                raise BadRequest("quality is a number from 1 to 100")
            quality = int(value)
        else:
            raise BadRequest(f"{name}: not a parameter of rendered resources here")
    if thumbnail and viewport is None:
        viewport = (128, 128)
    media = None
    for item in (accept or "*/*").split(","):
        kind = item.split(";")[0].strip().lower()
        if multipart and kind == "multipart/related":
            found = re.search(r'type="?([^";]+)', item, re.I)
            kind = found.group(1).strip().lower() if found else "*/*"
        if kind in RENDERED_TYPES:
            media = kind
            break
        if kind in ("*/*", "image/*", ""):
            media = "image/jpeg"
            break
    if media is None:
        raise NotAcceptable(
            'rendered images are image/jpeg or image/png (multipart/related; type="image/jpeg"'
            " for a series or study)"
            if multipart
            else "rendered images are image/jpeg or image/png"
        )
    return Rendering(window, viewport, media, quality)


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        value = value[0] if len(value) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _to_8_bit(ds: Dataset, arr: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    values = apply_modality_lut(arr, ds).astype(np.float64)
    centre_width = window
    if centre_width is None:
        centre, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        if centre is not None and width is not None and width >= 1:
            centre_width = (centre, width)
    if centre_width is None:  # no window anywhere: the full range of the values
        low, high = float(values.min()), float(values.max())
    else:  # linear, PS3.3 C.11.2.1.2.1
        centre, width = centre_width
        low, high = centre - 0.5 - (width - 1) / 2, centre - 0.5 + (width - 1) / 2
    scaled = (values - low) / max(high - low, 1e-9)
    out = np.clip(scaled, 0.0, 1.0) * 255.0
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        out = 255.0 - out
    return out.astype(np.uint8)


def render(ds: Dataset, frame: int, how: Rendering) -> bytes:
    """One frame (from 1) as an 8-bit JPEG or PNG: the modality LUT, then the window from the
    query or the file (else the full range); colour as RGB; fitted into the viewport."""
    if "PixelData" not in ds:
        raise NotFound("this instance has no pixel data to render")
    count = _count(ds)
    if frame > count:
        raise NotFound(f"no frame {frame}: the instance has {count}")
    try:
        with quiet():
            arr = pixel_array(ds, index=frame - 1 if count > 1 else None)
    except Exception as exc:  # a codec missing or the bitstream broken
        raise NotAcceptable(f"the pixel data cannot be decoded here: {exc}") from None
    if arr.ndim == 3 and count > 1 and arr.shape[0] == 1:
        arr = arr[0]
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        if arr.dtype != np.uint8:
            arr = (arr / max(float(arr.max()), 1.0) * 255).astype(np.uint8)
        image = Image.fromarray(arr, "RGB")
    elif arr.ndim == 3:  # RGB (pydicom converts YBR to RGB)
        if arr.dtype != np.uint8:
            arr = (arr.astype(np.float64) / max(float(arr.max()), 1.0) * 255).astype(np.uint8)
        image = Image.fromarray(arr, "RGB")
    else:
        image = Image.fromarray(_to_8_bit(ds, arr, how.window), "L")
    if how.viewport is not None:
        image.thumbnail(how.viewport)
    out = io.BytesIO()
    if how.media_type == "image/png":
        image.save(out, "PNG")
    else:
        image.save(out, "JPEG", quality=how.quality)
    return out.getvalue()


class RenderCache:
    """Rendered images, the most recently used kept up to ``budget`` bytes: a viewer scrolls
    back and forth through the same frames, and decoding is the dear part."""

    def __init__(self, budget: int = 64 * 1024 * 1024) -> None:
        self.budget = budget
        self.used = 0
        self.images: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        image = self.images.get(key)
        if image is not None:
            self.images.move_to_end(key)
        return image

    def put(self, key: Hashable, image: bytes) -> None:
        if len(image) > self.budget // 8 or key in self.images:
            return
        self.images[key] = image
        self.used += len(image)
        while self.used > self.budget:
            _, dropped = self.images.popitem(last=False)
            self.used -= len(dropped)
