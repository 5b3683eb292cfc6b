"""WADO-RS transcoding on pydicom's own test files: every offered syntax from every stored
one gives the same pixels (a lossy image only uncompressed, marked lossy), what cannot be
done is refused in one line, and dcmtk (a real peer) decodes what we encode to the same
pixels. The transcoding cache keeps the most recently used within its bound."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from giftcloud_api.dicomweb.transcoding import (
    BY_GDCM,
    LOSSLESS,
    UNCOMPRESSED,
    TranscodeCache,
    transcode,
)
from giftcloud_core.errors import NotAcceptable
from pydicom import uid
from pydicom.data import get_testdata_file

CEILING = 64 * 1024 * 1024
LOSSLESS_SOURCES = [
    "MR_small.dcm",  # explicit VR LE
    "CT_small.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless, RGB
    "SC_rgb_rle_16bit_2frame.dcm",  # two frames
]
LOSSY_SOURCES = ["JPEG2000.dcm", "SC_rgb_small_odd_jpeg.dcm"]


def _file(name: str) -> bytes:
    return Path(str(get_testdata_file(name))).read_bytes()


def _pixels(data: bytes) -> np.ndarray:
    return pydicom.dcmread(io.BytesIO(data)).pixel_array


@pytest.mark.parametrize("name", LOSSLESS_SOURCES)
@pytest.mark.parametrize("syntax", [*UNCOMPRESSED, *LOSSLESS])
def test_every_offered_lossless_syntax_keeps_the_pixels(name: str, syntax: str) -> None:
    data = _file(name)
    if name == "SC_rgb_rle_16bit_2frame.dcm" and syntax in BY_GDCM:
        # GDCM cannot write 16-bit colour as JPEG lossless: refused, in one line
        with pytest.raises(NotAcceptable, match="GDCM cannot write"):
            transcode(data, syntax, CEILING)
        return
    out = transcode(data, syntax, CEILING)
    ds = pydicom.dcmread(io.BytesIO(out))
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(ds.pixel_array, _pixels(data))
    assert ds.SOPInstanceUID == pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID


@pytest.mark.parametrize("name", LOSSY_SOURCES)
def test_a_lossy_image_goes_uncompressed_marked_lossy_and_never_lossless(name: str) -> None:
    data = _file(name)
    out = pydicom.dcmread(io.BytesIO(transcode(data, uid.ExplicitVRLittleEndian, CEILING)))
    assert out.file_meta.TransferSyntaxUID == uid.ExplicitVRLittleEndian
    assert out.LossyImageCompression == "01"
    assert np.array_equal(out.pixel_array, _pixels(data))
    for lossless in LOSSLESS:
        with pytest.raises(NotAcceptable, match="holds lossy pixels"):
            transcode(data, lossless, CEILING)


@pytest.mark.parametrize("name", ["SC_rgb_rle_2frame.dcm", "SC_rgb_jpeg_gdcm.dcm", "JPEG2000.dcm"])
def test_jpeg_baseline_when_asked_by_name_is_close_and_marked_lossy(name: str) -> None:
    data = _file(name)
    original = pydicom.dcmread(io.BytesIO(data))
    if original.BitsAllocated != 8:
        with pytest.raises(NotAcceptable, match="no encoding of 16-bit"):
            transcode(data, uid.JPEGBaseline8Bit, CEILING)
        return
    out = pydicom.dcmread(io.BytesIO(transcode(data, uid.JPEGBaseline8Bit, CEILING)))
    assert out.file_meta.TransferSyntaxUID == uid.JPEGBaseline8Bit
    assert out.LossyImageCompression == "01"
    assert out.LossyImageCompressionMethod == "ISO_10918_1"
    assert out.SOPInstanceUID == original.SOPInstanceUID
    error = np.abs(out.pixel_array.astype(int) - _pixels(data).astype(int))
    assert error.mean() < 3 and out.pixel_array.shape == _pixels(data).shape


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("rtdose.dcm", uid.JPEG2000Lossless),  # 32 bits stored: beyond JPEG 2000 here
        ("JPEG-lossy.dcm", uid.ExplicitVRLittleEndian),  # a 12-bit JPEG no decoder here reads
    ],
)
def test_what_a_codec_cannot_do_is_refused_in_one_line(name: str, syntax: str) -> None:
    with pytest.raises(NotAcceptable) as refused:
        transcode(_file(name), syntax, CEILING)
    assert f"cannot be given in {syntax}: " in refused.value.message
    assert "\n" not in refused.value.message


def test_an_instance_without_pixels_is_relabelled_and_keeps_its_content() -> None:
    data = _file("reportsi.dcm")  # a structured report
    out = pydicom.dcmread(io.BytesIO(transcode(data, uid.JPEG2000Lossless, CEILING)))
    assert out.file_meta.TransferSyntaxUID == uid.JPEG2000Lossless
    original = pydicom.dcmread(io.BytesIO(data))
    assert out.ContentSequence == original.ContentSequence


@pytest.mark.parametrize(
    ("syntax", "decoder"),
    [
        (uid.RLELossless, "dcmdrle"),
        (uid.JPEGLSLossless, "dcmdjpls"),
        (uid.JPEGLossless, "dcmdjpeg"),
        (uid.JPEGLosslessSV1, "dcmdjpeg"),
    ],
)
@pytest.mark.parametrize("name", ["CT_small.dcm", "SC_rgb_rle_2frame.dcm"])
def test_dcmtk_decodes_what_we_encode_to_the_same_pixels(
    name: str, syntax: str, decoder: str, tmp_path: Path
) -> None:
    tool = shutil.which(decoder)
    if tool is None:
        pytest.fail(f"dcmtk's {decoder} is missing: scripts/test installs dcmtk")
    encoded, decoded = tmp_path / "encoded.dcm", tmp_path / "decoded.dcm"
    encoded.write_bytes(transcode(_file(name), syntax, CEILING))
    subprocess.run([tool, encoded, decoded], check=True, capture_output=True)
    theirs = pydicom.dcmread(decoded)
    assert theirs.file_meta.TransferSyntaxUID == uid.ExplicitVRLittleEndian
    assert np.array_equal(theirs.pixel_array, _pixels(_file(name)))


def test_the_cache_keeps_the_most_recently_used_within_its_bound(tmp_path: Path) -> None:
    cache = TranscodeCache(tmp_path, budget=4000)
    assert cache.get("a", uid.RLELossless) is None
    for name in "abc":
        cache.put(name, uid.RLELossless, name.encode() * 1000)
    assert cache.get("a", uid.RLELossless) == b"a" * 1000
    assert cache.get("a", uid.JPEGLSLossless) is None  # another syntax, another entry
    cache.put("d", uid.RLELossless, b"d" * 1000)
    cache.put("e", uid.RLELossless, b"e" * 1000)  # 5000 bytes: the least recent goes
    kept = {n for n in "abcde" if cache.get(n, uid.RLELossless) is not None}
    assert "b" not in kept and {"a", "e"} <= kept
    assert sum(f.stat().st_size for f in tmp_path.iterdir()) <= 4000
    cache.put("big", uid.RLELossless, b"x" * 1500)  # over a quarter of the bound: not kept
    assert cache.get("big", uid.RLELossless) is None


def test_the_cache_lists_its_folder_once_not_on_every_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TranscodeCache(tmp_path, budget=100_000)
    listed = []
    real = os.scandir

    def counting(path: object) -> object:
        listed.append(path)
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", counting)
    for n in range(20):
        cache.put(f"s{n}", uid.RLELossless, b"x" * 1000)  # 20 kB, under the bound
    assert len(listed) == 1
    for n in range(20, 120):
        cache.put(f"s{n}", uid.RLELossless, b"x" * 1000)  # past it: trimmed as it goes
    assert 1 < len(listed) < 100
    assert sum(f.stat().st_size for f in tmp_path.iterdir()) <= 100_000
