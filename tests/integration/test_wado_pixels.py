"""WADO-RS frames, bulk data, rendered images and thumbnails, on pydicom's own test files:
uncompressed, deflated, RLE multi-frame colour, JPEG baseline, JPEG 2000, palette colour."""

import io
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
async def wado(runtime: Runtime, bearer: Bearer) -> Any:
    reader = bearer(projects={"pix": "collaborator"})
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
    [(kind, body)] = _parts(await wado(f"{_path('j2k')}/frames/1", "*/*"))
    assert kind == "image/jp2"
    refused = await wado(f"{_path('jpeg')}/frames/1", 'multipart/related; type="image/jp2"')
    assert refused.status_code == 406 and "image/jpeg" in refused.json()["detail"]


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
