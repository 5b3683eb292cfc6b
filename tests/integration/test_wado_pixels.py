"""WADO-RS frames, bulk data, rendered images and thumbnails, on pydicom's own test files:
uncompressed, deflated, RLE multi-frame colour, JPEG baseline, JPEG 2000, palette colour."""

import io
import re
import warnings
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from giftcloud_api.app import build as build_api
from giftcloud_api.dicomweb import delivery as delivery_module
from giftcloud_core.app import Runtime
from giftcloud_core.events import ArchivedInstance, InstancesArchived, ProjectCreated
from giftcloud_dicom.metadata import describe
from integration.conftest import eventually, running
from PIL import Image
from pydicom.pixels.utils import pixel_array

Bearer = Callable[..., dict[str, str]]
FILES = Path(pydicom.__file__).parent / "data" / "test_files"
#: name in the catalogue -> pydicom's test file
SAMPLES = {
    "ct": "CT_small.dcm",  # 16-bit MONOCHROME2, uncompressed
    "deflated": "image_dfl.dcm",
    "rle2": "SC_rgb_rle_2frame.dcm",  # two RGB frames, RLE
    "jpeg": "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR
    "j2k": "JPEG2000.dcm",
    "palette": "examples_palette.dcm",
}
STUDY, SERIES = "2.25.500", "2.25.510"
EXPLICIT, RLE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.5"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def _sop(name: str) -> str:
    return f"2.25.51{list(SAMPLES).index(name)}"


def _path(name: str) -> str:
    return f"/dicomweb/pix/studies/{STUDY}/series/{SERIES}/instances/{_sop(name)}"


def _dataset(name: str) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(FILES / SAMPLES[name])


def _parts(response: httpx.Response) -> list[tuple[str, bytes]]:
    """The parts of a multipart/related answer: (content type, body)."""
    assert response.status_code == 200, response.text
    head = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + response.content)
    return [(p.get_content_type(), p.get_payload(decode=True)) for p in message.iter_parts()]


@pytest.fixture
async def wado(runtime: Runtime, bearer: Bearer, tmp_path: Path) -> Any:
    reader = bearer(projects={"pix": "collaborator"})
    runtime.settings.api.transcode_cache_dir = tmp_path / "transcoded"  # this test's own
    archive = runtime.settings.storage.buckets.archive
    async with running(runtime, [build_api(runtime)]) as client:
        await runtime.bus.publish(ProjectCreated(project="pix", title="P", correlation_id="c"))
        instances = []
        for name, file in SAMPLES.items():
            data = (FILES / file).read_bytes()
            key = f"pix/{STUDY}/{SERIES}/{_sop(name)}.dcm"
            await runtime.store.put(archive, key, data)
            attributes, summary = describe(data, f"{_path(name)}/bulk", 2**30)
            instances.append(
                ArchivedInstance(
                    object_key=key,
                    sha256="0" * 64,
                    size=len(data),
                    subject="SUBJ-PIX",
                    study_uid=STUDY,
                    series_uid=SERIES,
                    sop_uid=_sop(name),
                    sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
                    instance_number=list(SAMPLES).index(name) + 1,
                    transfer_syntax_uid=summary.transfer_syntax_uid,
                    attributes=attributes,
                )
            )
        await runtime.bus.publish(
            InstancesArchived(project="pix", correlation_id="u", instances=tuple(instances))
        )

        async def catalogued() -> bool:
            answer = await client.get(f"/dicomweb/pix/studies/{STUDY}/instances", headers=reader)
            return answer.status_code == 200 and len(answer.json()) == len(SAMPLES)

        await eventually(catalogued, what="the catalogue filled")

        async def get(path: str, accept: str = "", **params: str) -> httpx.Response:
            headers = {**reader, **({"Accept": accept} if accept else {})}
            return await client.get(path, headers=headers, params=params)

        yield get


async def test_uncompressed_frames_are_the_pixel_data(wado: Any) -> None:
    ds = _dataset("ct")
    [(kind, body)] = _parts(await wado(f"{_path('ct')}/frames/1"))
    assert kind == "application/octet-stream" and body == ds.PixelData
    missing = await wado(f"{_path('ct')}/frames/2")
    assert missing.status_code == 404 and "has 1" in missing.json()["detail"]
    assert (await wado(f"{_path('ct')}/frames/0")).status_code == 400
    assert (await wado(f"{_path('ct')}/frames/one")).status_code == 400
    # deflated in the archive: frames all the same
    [(_, body)] = _parts(await wado(f"{_path('deflated')}/frames/1"))
    assert body == _dataset("deflated").PixelData


async def test_compressed_frames_as_stored_or_decoded(wado: Any) -> None:
    stored = _parts(await wado(f"{_path('rle2')}/frames/2,1", "multipart/related; type=*/*"))
    assert [k for k, _ in stored] == ["image/dicom-rle"] * 2
    decoded = _parts(
        await wado(
            f"{_path('rle2')}/frames/2,1", 'multipart/related; type="application/octet-stream"'
        )
    )
    ds = _dataset("rle2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [pixel_array(ds, index=i, raw=True).tobytes() for i in (1, 0)]
    assert [b for _, b in decoded] == expected

    [(kind, body)] = _parts(
        await wado(f"{_path('jpeg')}/frames/1", 'multipart/related; type="image/jpeg"')
    )
    assert kind == "image/jpeg" and body.startswith(b"\xff\xd8")
    [(kind, body)] = _parts(
        await wado(f"{_path('j2k')}/frames/1", 'multipart/related; type="image/jp2"')
    )
    assert kind == "image/jp2" and body.startswith(b"\xff\x4f")
    # no type named: native pixels (PS3.18's default), as Orthanc answers
    [(kind, body)] = _parts(await wado(f"{_path('j2k')}/frames/1", "*/*"))
    j2k = _dataset("j2k")
    assert kind == "application/octet-stream" and body == pixel_array(j2k, raw=True).tobytes()
    # a lossy instance is never given as a lossless bitstream
    refused = await wado(f"{_path('jpeg')}/frames/1", 'multipart/related; type="image/jp2"')
    assert refused.status_code == 406
    assert "(lossy) cannot be given in the lossless" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("kind", "syntax", "named"),
    [
        ("image/dicom-rle", "1.2.840.10008.1.2.5", False),  # each type's default syntax
        ("image/jls", "1.2.840.10008.1.2.4.80", False),
        ("image/jp2", "1.2.840.10008.1.2.4.90", False),
        ("image/jpeg", "1.2.840.10008.1.2.4.70", True),  # JPEG lossless, by GDCM
    ],
)
async def test_frames_transcoded_to_a_lossless_bitstream_decode_to_the_pixels(
    wado: Any, kind: str, syntax: str, named: bool
) -> None:
    for name, numbers in (("ct", [1]), ("rle2", [2, 1])):
        answer = await wado(
            f"{_path(name)}/frames/{','.join(map(str, numbers))}",
            f'multipart/related; type="{kind}"' + (f"; transfer-syntax={syntax}" if named else ""),
        )
        parts = _parts(answer)
        assert [k for k, _ in parts] == [kind] * len(numbers)
        assert f"transfer-syntax={syntax}" in answer.text.split("\r\n\r\n")[0]
        ds = _dataset(name)
        # the instance in that syntax tells how its frames are to be decoded
        whole = await wado(_path(name), f"application/dicom; transfer-syntax={syntax}")
        moved = pydicom.dcmread(io.BytesIO(whole.content))
        assert moved.file_meta.TransferSyntaxUID == syntax
        for (_, body), number in zip(parts, numbers, strict=True):
            # the frame as a one-frame instance of the asked syntax, decoded by pydicom
            one = pydicom.Dataset()
            one.file_meta = pydicom.dataset.FileMetaDataset()
            one.file_meta.TransferSyntaxUID = syntax
            for keyword in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated",
                            "BitsStored", "HighBit", "PixelRepresentation",
                            "PhotometricInterpretation", "PlanarConfiguration"):  # fmt: skip
                if keyword in moved:
                    setattr(one, keyword, moved.data_element(keyword).value)
            one.PixelData = pydicom.encaps.encapsulate([body])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = pixel_array(ds, index=number - 1)
                assert np.array_equal(pixel_array(one), expected), (name, number)


async def test_metadata_points_at_bulk_data_that_can_be_fetched(
    wado: Any, runtime: Runtime
) -> None:
    [metadata] = (await wado(f"{_path('ct')}/metadata")).json()
    uri = metadata["7FE00010"]["BulkDataURI"]
    public = runtime.settings.public_url.rstrip("/")  # the address people use
    assert uri.startswith(f"{public}/dicomweb/pix/studies/")
    [(_, pixels)] = _parts(await wado(uri.removeprefix(public)))
    assert pixels == _dataset("ct").PixelData
    assert (await wado(f"{_path('ct')}/bulk/7FE0001")).status_code == 404
    assert (await wado(f"{_path('ct')}/bulk/00091099")).status_code == 404


def _image(response: httpx.Response, kind: str) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == kind
    return Image.open(io.BytesIO(response.content))


async def test_rendered_and_thumbnails(wado: Any) -> None:
    ds = _dataset("ct")
    jpeg = _image(await wado(f"{_path('ct')}/rendered"), "image/jpeg")
    assert jpeg.size == (ds.Columns, ds.Rows) and jpeg.mode == "L"
    png = _image(await wado(f"{_path('ct')}/rendered", "image/png"), "image/png")
    assert png.size == jpeg.size
    # the window changes what is seen: a narrow one saturates more of the image
    wide = np.asarray(
        _image(await wado(f"{_path('ct')}/rendered", "image/png", window="40,4000"), "image/png")
    )
    narrow = np.asarray(
        _image(await wado(f"{_path('ct')}/rendered", "image/png", window="40,10"), "image/png")
    )
    assert (narrow == 255).sum() > (wide == 255).sum()
    small = _image(await wado(f"{_path('ct')}/rendered", viewport="32,32"), "image/jpeg")
    assert max(small.size) == 32
    thumb = _image(await wado(f"{_path('ct')}/thumbnail"), "image/jpeg")
    assert max(thumb.size) <= 128

    second = _image(await wado(f"{_path('rle2')}/frames/2/rendered", "image/png"), "image/png")
    assert second.mode == "RGB"
    frames = _dataset("rle2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.array_equal(np.asarray(second), pixel_array(frames, index=1))
    assert _image(await wado(f"{_path('palette')}/rendered"), "image/jpeg").mode == "RGB"
    assert _image(await wado(f"{_path('jpeg')}/thumbnail"), "image/jpeg").mode == "RGB"
    assert _image(await wado(f"{_path('j2k')}/rendered"), "image/jpeg")
    series = _image(
        await wado(f"/dicomweb/pix/studies/{STUDY}/series/{SERIES}/thumbnail"), "image/jpeg"
    )
    study = _image(await wado(f"/dicomweb/pix/studies/{STUDY}/thumbnail"), "image/jpeg")
    assert max(series.size) <= 128 and max(study.size) <= 128


@pytest.mark.parametrize(
    ("path", "accept", "params", "status", "reason"),
    [
        ("/rendered", "", {"window": "abc"}, 400, "window"),
        ("/rendered", "", {"window": "40,0"}, 400, "width"),
        ("/rendered", "", {"window": "40,400,sigmoid"}, 400, "linear"),
        ("/rendered", "", {"viewport": "0,10"}, 400, "viewport"),
        ("/rendered", "", {"quality": "101"}, 400, "quality"),
        ("/rendered", "", {"annotation": "patient"}, 400, "not a parameter"),
        ("/rendered", "image/gif", {}, 406, "image/jpeg or image/png"),
        ("/frames/1,2/rendered", "", {}, 400, "one frame"),
        ("/frames/3/rendered", "", {}, 404, "no frame 3"),
    ],
)
async def test_rendering_refusals(
    wado: Any, path: str, accept: str, params: dict[str, str], status: int, reason: str
) -> None:
    answer = await wado(_path("rle2") + path, accept, **params)
    assert answer.status_code == status and reason in answer.json()["detail"], answer.text


def _syntaxes(response: httpx.Response) -> list[str]:
    """The transfer syntax each part of a multipart answer says, and its file holds."""
    found = []
    for kind, body in _parts(response):
        assert kind == "application/dicom"
        found.append(str(pydicom.dcmread(io.BytesIO(body)).file_meta.TransferSyntaxUID))
    said = re.findall(r"transfer-syntax=([0-9.]+)", response.content.decode("latin-1"))
    assert said == found, (said, found)
    return found


async def test_instances_go_in_explicit_vr_little_endian_unless_asked_otherwise(
    wado: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = []
    real = delivery_module.transcode

    def counting(data: bytes, syntax: str, ceiling: int) -> bytes:
        counted.append(syntax)
        return real(data, syntax, ceiling)

    monkeypatch.setattr(delivery_module, "transcode", counting)
    study = f"/dicomweb/pix/studies/{STUDY}"
    # no transfer syntax named: every instance in Explicit VR Little Endian (PS3.18 §8.7.3)
    default = await wado(study, 'multipart/related; type="application/dicom"')
    assert _syntaxes(default) == [EXPLICIT] * len(SAMPLES)
    moved = len(counted)
    stored_otherwise = [n for n in SAMPLES if _dataset(n).file_meta.TransferSyntaxUID != EXPLICIT]
    assert moved == len(stored_otherwise) >= 4  # deflated, RLE, JPEG, JPEG 2000
    # read again: from the transcoding cache, nothing transcoded twice
    again = await wado(study, 'multipart/related; type="application/dicom"')
    assert _syntaxes(again) == [EXPLICIT] * len(SAMPLES) and len(counted) == moved
    # the pixels and the UIDs are the stored instance's
    [(_, body)] = _parts(await wado(_path("j2k"), 'multipart/related; type="application/dicom"'))
    j2k = pydicom.dcmread(io.BytesIO(body))
    assert j2k.SOPInstanceUID == _dataset("j2k").SOPInstanceUID
    assert j2k.LossyImageCompression == "01"
    assert np.array_equal(j2k.pixel_array, _dataset("j2k").pixel_array)
    # * : as stored, byte for byte
    stored = _parts(
        await wado(_path("j2k"), 'multipart/related; type="application/dicom"; transfer-syntax=*')
    )
    assert stored[0][1] == (FILES / SAMPLES["j2k"]).read_bytes()
    bare = await wado(_path("rle2"), "application/dicom")
    assert pydicom.dcmread(io.BytesIO(bare.content)).file_meta.TransferSyntaxUID == EXPLICIT


async def test_a_series_in_a_lossless_syntax_or_406_with_the_reason(wado: Any) -> None:
    series = f"/dicomweb/pix/studies/{STUDY}/series/{SERIES}"
    rle = f'multipart/related; type="application/dicom"; transfer-syntax={RLE}'
    # the lossy ones (JPEG baseline, JPEG 2000 lossy) cannot be made lossless: nothing goes
    refused = await wado(series, rle)
    assert refused.status_code == 406
    assert "(lossy) cannot be given in the lossless 1.2.840.10008.1.2.5" in refused.json()["detail"]
    ct = await wado(_path("ct"), rle)
    assert _syntaxes(ct) == [RLE]
    [(_, body)] = _parts(ct)
    assert np.array_equal(pydicom.dcmread(io.BytesIO(body)).pixel_array, _dataset("ct").pixel_array)
    extended = "1.2.840.10008.1.2.4.51"  # JPEG extended: no encoder here
    unoffered = await wado(_path("ct"), f"application/dicom; transfer-syntax={extended}")
    assert unoffered.status_code == 406
    assert f"{extended} is not offered" in unoffered.json()["detail"]
    # JPEG baseline, lossy, asked for by name: 8-bit pixels only (the CT is 16-bit)
    baseline = f"application/dicom; transfer-syntax={JPEG_BASELINE}"
    sixteen = await wado(_path("ct"), baseline)
    assert sixteen.status_code == 406 and "no encoding of 16-bit" in sixteen.json()["detail"]
    colour = pydicom.dcmread(io.BytesIO((await wado(_path("rle2"), baseline)).content))
    assert colour.file_meta.TransferSyntaxUID == JPEG_BASELINE
    assert colour.LossyImageCompression == "01"
    zipped = await wado(series, f"application/zip; transfer-syntax={RLE}")
    assert zipped.status_code == 406 and "zip holds the instances as stored" in zipped.text


async def test_a_rendered_series_and_study_are_every_frame_rendered_in_order(
    wado: Any, runtime: Runtime
) -> None:
    series = f"/dicomweb/pix/studies/{STUDY}/series/{SERIES}/rendered"
    answer = await wado(series, 'multipart/related; type="image/png"')
    parts = _parts(answer)
    # six instances in instance-number order, the RLE one with two frames: seven renderings
    assert [kind for kind, _ in parts] == ["image/png"] * 7
    second = await wado(f"{_path('rle2')}/frames/2/rendered", "image/png")
    assert parts[3][1] == second.content  # the same rendering as the frame's own
    study = _parts(await wado(f"/dicomweb/pix/studies/{STUDY}/rendered", "image/jpeg"))
    assert len(study) == 7 and all(body.startswith(b"\xff\xd8") for _, body in study)
    small = _parts(await wado(series, "", viewport="16,16"))
    assert all(max(Image.open(io.BytesIO(body)).size) == 16 for _, body in small)
    refused = await wado(series, 'multipart/related; type="image/gif"')
    assert refused.status_code == 406 and "image/jpeg or image/png" in refused.json()["detail"]
    missing = await wado(f"/dicomweb/pix/studies/{STUDY}/series/2.25.999/rendered")
    assert missing.status_code == 404
    runtime.settings.api.rendered_max_frames = 6
    capped = await wado(series)
    assert capped.status_code == 400 and "has 7 frames" in capped.json()["detail"]
