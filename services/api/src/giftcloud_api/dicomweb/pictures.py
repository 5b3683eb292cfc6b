"""WADO-RS rendered resources and thumbnails (PS3.18 §9.5, §10.4.1.1.4): an instance, a
frame, and a whole series or study as a multipart of renderings, kept in a bounded cache."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from giftcloud_core.errors import BadRequest, NotFound
from pydicom.dataset import Dataset

from giftcloud_api.access import Gates
from giftcloud_api.catalogue.service import CatalogueService
from giftcloud_api.dicomweb import rendering as pixels
from giftcloud_api.dicomweb.negotiation import parts_of
from giftcloud_api.models import Instance

Record = Callable[[Request, str, str, str], Awaitable[None]]
Parsed = Callable[[Instance], Awaitable[Dataset]]
PIXEL_DATA = ("7FE00010", "7FE00008", "7FE00009")
#: an archived instance never changes under its UID: the browser may keep the image
KEEP = {"Cache-Control": "private, max-age=3600"}


def _frame_count(instance: Instance) -> int:
    """How many frames the catalogue says the instance has (0 without pixel data)."""
    if not any(tag in instance.attributes for tag in PIXEL_DATA):
        return 0
    values = instance.attributes.get("00280008", {}).get("Value") or [1]
    try:
        return max(int(values[0]), 1)
    except (TypeError, ValueError):
        return 1


def build_pictures(
    service: CatalogueService, gates: Gates, record: Record, parsed: Parsed
) -> APIRouter:
    router = APIRouter()
    renderings = pixels.RenderCache()
    Project = Annotated[str, Depends(gates.project())]

    async def images(
        project: str, instance: Instance, frames: list[int], thumbnail: bool, how: pixels.Rendering
    ) -> list[bytes]:
        """The frames of one instance rendered: from the cache, else its file read once."""
        keys = [(project, instance.sop_uid, frame, thumbnail, how) for frame in frames]
        found = [renderings.get(key) for key in keys]
        missing = [frame for frame, image in zip(frames, found, strict=True) if image is None]
        if missing:
            ds = await parsed(instance)
            made = await asyncio.to_thread(lambda: [pixels.render(ds, f, how) for f in missing])
            for frame, image in zip(missing, made, strict=True):
                renderings.put((project, instance.sop_uid, frame, thumbnail, how), image)
                found[frames.index(frame)] = image
        return [image for image in found if image is not None]

    async def one(
        request: Request, project: str, instance: Instance, frame: int, thumbnail: bool
    ) -> Response:
        how = pixels.rendering(
            list(request.query_params.multi_items()),
            request.headers.get("accept", ""),
            thumbnail=thumbnail,
        )
        [image] = await images(project, instance, [frame], thumbnail, how)
        what = "thumbnail" if thumbnail else "rendered"
        await record(request, project, "dicomweb.retrieve", f"{what} frame {frame}")
        return Response(image, media_type=how.media_type, headers=KEEP)

    async def many(request: Request, project: str, found: list[Instance], what: str) -> Response:
        """Every frame of every image of ``found``, in order, as a multipart of renderings;
        instances without pixel data (reports, documents) are not rendered."""
        how = pixels.rendering(
            list(request.query_params.multi_items()),
            request.headers.get("accept", ""),
            multipart=True,
        )
        counts = [(instance, _frame_count(instance)) for instance in found]
        frames = sum(count for _, count in counts)
        most = service.settings.api.rendered_max_frames
        if not frames:
            raise NotFound(f"{what} holds no images to render")
        if frames > most:
            raise BadRequest(
                f"{what} has {frames} frames; a rendered series or study here is at most {most}"
                " (GIFTCLOUD_API__RENDERED_MAX_FRAMES): ask for each series or instance"
            )
        rendered: list[bytes] = []
        for instance, count in counts:
            if count:
                rendered += await images(project, instance, list(range(1, count + 1)), False, how)
        shown = sum(1 for _, count in counts if count)
        await record(
            request, project, "dicomweb.retrieve", f"rendered {frames} frame(s) of {shown} image(s)"
        )
        return parts_of(rendered, how.media_type, how.media_type)

    async def of_instance(
        request: Request,
        project: str,
        study: str,
        series: str,
        sop: str,
        numbers: str,
        thumbnail: bool,
    ) -> Response:
        """An instance's (or one of its frames') rendering or thumbnail."""
        wanted = pixels.parse_frame_list(numbers)
        if len(wanted) != 1:
            raise BadRequest("rendered frames here: one frame at a time")
        instance = await service.instance(project, study, series, sop)
        return await one(request, project, instance, wanted[0], thumbnail)

    @router.get("/studies/{study}/series/{series}/instances/{sop}/rendered")
    @router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}/rendered")
    async def rendered(
        request: Request, project: Project, study: str, series: str, sop: str, numbers: str = "1"
    ) -> Response:
        """WADO-RS: an instance (its first frame) or one frame rendered, image/jpeg or
        image/png; ``window=center,width``, ``viewport=width,height``, ``quality``."""
        return await of_instance(request, project, study, series, sop, numbers, False)

    @router.get("/studies/{study}/series/{series}/rendered")
    async def rendered_series(
        request: Request, project: Project, study: str, series: str
    ) -> Response:
        """WADO-RS: every frame of the series' images rendered, a multipart/related of
        image/jpeg (or image/png) in instance order; the same parameters."""
        found = await service.instances(project, study_uid=study, series_uid=series)
        if not found:
            raise NotFound(f"no series {series} of study {study} in project {project!r}")
        return await many(request, project, found, f"series {series}")

    @router.get("/studies/{study}/rendered")
    async def rendered_study(request: Request, project: Project, study: str) -> Response:
        """WADO-RS: every frame of the study's images rendered, series by series."""
        found = await service.instances(project, study_uid=study)
        if not found:
            raise NotFound(f"no study {study} in project {project!r}")
        return await many(request, project, found, f"study {study}")

    @router.get("/studies/{study}/series/{series}/instances/{sop}/thumbnail")
    @router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}/thumbnail")
    async def thumbnail(
        request: Request, project: Project, study: str, series: str, sop: str, numbers: str = "1"
    ) -> Response:
        """WADO-RS: a small rendering of an instance or a frame (128 pixels unless a
        viewport is given)."""
        return await of_instance(request, project, study, series, sop, numbers, True)

    @router.get("/studies/{study}/series/{series}/thumbnail")
    async def thumbnail_series(
        request: Request, project: Project, study: str, series: str
    ) -> Response:
        """WADO-RS: the series' thumbnail: its middle instance."""
        middle = await service.middle_instance(project, study, series)
        if middle is None:
            raise NotFound(f"no series {series} of study {study} in project {project!r}")
        return await one(request, project, middle, 1, thumbnail=True)

    @router.get("/studies/{study}/thumbnail")
    async def thumbnail_study(request: Request, project: Project, study: str) -> Response:
        """WADO-RS: the study's thumbnail: the middle instance of its first series."""
        middle = await service.middle_instance(project, study)
        if middle is None:
            raise NotFound(f"no study {study} in project {project!r}")
        return await one(request, project, middle, 1, thumbnail=True)

    return router
