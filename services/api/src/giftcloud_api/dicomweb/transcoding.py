"""Transfer syntaxes a WADO-RS answer is given in (PS3.18 §8.7.3): as stored, or
transcoded -- decoded by pydicom and its codecs (pylibjpeg's libjpeg and openjpeg,
pyjpegls), encoded by pydicom (RLE, JPEG-LS, JPEG 2000) or GDCM (JPEG lossless and
baseline; pydicom has no JPEG encoder). A lossy image is never relabelled lossless; the one
lossy encoding, JPEG baseline, is done only when asked for by name and is marked lossy.
Transcoded instances are kept on disk, the most recently used up to a bound, so a series
read twice is transcoded once."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from pathlib import Path

import pydicom
from giftcloud_core.errors import NotAcceptable
from pydicom import uid
from pydicom.dataset import Dataset

from giftcloud_api.dicomweb.rendering import read

#: what a client gets when it names no transfer syntax (PS3.18 §8.7.3.5.2, since 2016c)
DEFAULT = uid.ExplicitVRLittleEndian
#: transcoding to these is offered: the uncompressed syntaxes, the lossless encodings, and
#: JPEG baseline (8-bit pixels; lossy: only when asked for by name)
UNCOMPRESSED = (
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
)
LOSSLESS = (
    uid.RLELossless,
    uid.JPEGLSLossless,
    uid.JPEG2000Lossless,
    uid.JPEGLossless,
    uid.JPEGLosslessSV1,
)
OFFERED = (*UNCOMPRESSED, *LOSSLESS, uid.JPEGBaseline8Bit)
#: what GDCM encodes (the rest pydicom does)
BY_GDCM = (uid.JPEGLossless, uid.JPEGLosslessSV1, uid.JPEGBaseline8Bit)
#: the syntaxes whose pixels may have lost information (JPEG 2000 "Image Compression" may
#: be either: without Lossy Image Compression "00" it is taken as lossy)
LOSSY = (
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLSNearLossless,
    uid.JPEG2000,
    uid.HTJ2K,
    uid.JPEG2000MC,
)


def offered_list() -> str:
    return ", ".join(OFFERED)


def target(asked: str, stored: str) -> str | None:
    """The syntax to send an instance stored in ``stored`` in when ``asked`` was asked
    (``""`` when the client named none, ``*`` for any): None means as stored. Raises
    NotAcceptable, with the reason, for what is not offered."""
    wanted = asked or DEFAULT
    if wanted == "*" or wanted == stored:
        return None
    if wanted not in OFFERED:
        raise NotAcceptable(
            f"transfer syntax {wanted} is not offered for an instance stored in {stored}: "
            f"ask for * (as stored) or one of {offered_list()}"
        )
    if wanted in LOSSLESS and stored in LOSSY:
        raise NotAcceptable(
            f"an instance stored in {stored} (lossy) cannot be given in the lossless {wanted}:"
            f" ask for * (as stored) or an uncompressed syntax ({', '.join(UNCOMPRESSED)})"
        )
    return wanted


def _lossy(ds: Dataset) -> bool:
    syntax = ds.file_meta.TransferSyntaxUID
    if ds.get("LossyImageCompression") == "01":
        return True
    return syntax in LOSSY and not (
        syntax == uid.JPEG2000 and ds.get("LossyImageCompression") == "00"
    )


def transcode(data: bytes, syntax: str, max_inflated: int) -> bytes:
    """``data`` (a Part 10 file) in ``syntax``; NotAcceptable with the codec's reason when
    its pixels cannot be."""
    ds = read(data, max_inflated)
    lossy = _lossy(ds)
    if lossy and syntax in LOSSLESS:
        raise NotAcceptable(
            f"instance {ds.get('SOPInstanceUID', '?')} holds lossy pixels: it cannot be given"
            f" in the lossless {syntax}"
        )
    try:
        if "PixelData" in ds and ds.file_meta.TransferSyntaxUID.is_compressed:
            # the same instance in another encoding: its UID stays (pydicom makes a new one
            # unless told)
            ds.decompress(generate_instance_uid=False)
            if lossy:
                ds.LossyImageCompression = "01"
        if "PixelData" in ds and syntax in BY_GDCM:
            ds = _by_gdcm(ds, syntax)
        elif "PixelData" in ds and uid.UID(syntax).is_compressed:
            ds.compress(syntax, generate_instance_uid=False)
        else:
            # no pixels to encode: a compressed syntax encodes the rest as explicit VR LE
            ds.file_meta.TransferSyntaxUID = uid.UID(syntax)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
    except (ValueError, RuntimeError, NotImplementedError) as error:
        reason = " ".join(str(error).split())
        raise NotAcceptable(
            f"instance {ds.get('SOPInstanceUID', '?')} cannot be given in {syntax}: {reason}"
        ) from error
    return out.getvalue()


def _by_gdcm(ds: Dataset, syntax: str) -> Dataset:
    """``ds`` (native pixels) encoded by GDCM in ``syntax``: through files, GDCM's way in."""
    import gdcm

    codes: dict[str, object] = {
        uid.JPEGLossless: gdcm.TransferSyntax.JPEGLosslessProcess14,
        uid.JPEGLosslessSV1: gdcm.TransferSyntax.JPEGLosslessProcess14_1,
        uid.JPEGBaseline8Bit: gdcm.TransferSyntax.JPEGBaselineProcess1,
    }
    with tempfile.TemporaryDirectory(prefix="giftcloud-gdcm-") as folder:
        source, encoded = Path(folder) / "in.dcm", Path(folder) / "out.dcm"
        ds.save_as(source, enforce_file_format=True)
        size = source.stat().st_size
        reader = gdcm.ImageReader()
        reader.SetFileName(str(source))
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(codes[syntax]))
        if not reader.Read():
            raise ValueError("GDCM cannot read the decoded instance")
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise ValueError(
                f"GDCM has no encoding of {ds.get('BitsAllocated')}-bit"
                f" {ds.get('PhotometricInterpretation')} pixels"
                f" ({ds.get('Rows')} x {ds.get('Columns')}) in this syntax"
            )
        writer = gdcm.ImageWriter()
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        writer.SetFileName(str(encoded))
        if not writer.Write():
            raise ValueError("GDCM cannot write the encoded instance")
        out = pydicom.dcmread(encoded)
        if syntax == uid.JPEGBaseline8Bit:  # lossy: said so in the instance (PS3.3 C.7.6.1.1.5)
            out.LossyImageCompression = "01"
            out.LossyImageCompressionMethod = "ISO_10918_1"
            out.LossyImageCompressionRatio = f"{size / max(encoded.stat().st_size, 1):.4g}"
            if int(out.get("SamplesPerPixel", 1)) == 3:
                # GDCM's encoder turns RGB into YCbCr yet leaves "RGB" in the header; lossy
                # JPEG colour is YBR_FULL_422 (PS3.5 §8.2.1)
                out.PhotometricInterpretation = "YBR_FULL_422"
        return out


class TranscodeCache:
    """Transcoded instances as files in ``folder``, keyed by the stored file (its object
    key and SHA-256: a changed file is a new entry) and the syntax, the least recently used removed past ``budget`` bytes. Shared by the
    process's requests (a lock around the bookkeeping); a file is written whole, then
    renamed, so a reader never sees half of one."""

    def __init__(self, folder: Path | None, budget: int) -> None:
        self.folder = folder or Path(tempfile.gettempdir()) / "giftcloud-transcoded"
        self.budget = budget
        self.lock = threading.Lock()
        #: bytes believed in the folder: counted once, then kept up by each put; the
        #: folder is listed again only when this passes the budget (not on every put)
        self.used: int | None = None

    def _path(self, stored: str, syntax: str) -> Path:
        name = hashlib.sha256(f"{stored}|{syntax}".encode()).hexdigest()
        return self.folder / name

    def get(self, stored: str, syntax: str) -> bytes | None:
        path = self._path(stored, syntax)
        try:
            data = path.read_bytes()
            os.utime(path)  # used now: the last to go
        except FileNotFoundError:
            return None
        return data

    def put(self, stored: str, syntax: str, data: bytes) -> None:
        if len(data) > self.budget // 4:
            return  # one instance never pushes out most of the others
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(stored, syntax)
        partial = path.with_suffix(f".{threading.get_ident()}.part")
        partial.write_bytes(data)
        partial.replace(path)
        with self.lock:
            if self.used is None:
                self.used = self._trim()
            else:
                self.used += len(data)
                if self.used > self.budget:
                    self.used = self._trim()

    def _trim(self) -> int:
        """Remove the least recently used past the budget; the bytes left."""
        entries = []
        for entry in os.scandir(self.folder):
            if entry.name.endswith(".part"):
                continue
            try:
                status = entry.stat()
            except FileNotFoundError:
                continue
            entries.append((status.st_mtime, status.st_size, entry.path))
        used = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if used <= self.budget:
                break
            Path(path).unlink(missing_ok=True)
            used -= size
        return used
