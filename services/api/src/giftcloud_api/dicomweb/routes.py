"""QIDO-RS and WADO-RS (PS3.18) over the catalogue and the archive."""

import asyncio
import re
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from giftcloud_core.access import Auditor
from giftcloud_core.errors import NotFound
from pydantic import BaseModel, Field
from pydicom.dataset import Dataset

from giftcloud_api.access import Gates
from giftcloud_api.catalogue.downloads import filename, zip_of, zip_response
from giftcloud_api.catalogue.levels import Level
from giftcloud_api.catalogue.service import CatalogueService
from giftcloud_api.dicomweb import rendering as pixels
from giftcloud_api.dicomweb.delivery import Delivery
from giftcloud_api.dicomweb.negotiation import (
    DICOM_JSON,
    frames_wanted,
    json_accepted,
    negotiate,
    parts_of,
)
from giftcloud_api.dicomweb.params import WARNING_CUT, parse
from giftcloud_api.dicomweb.pictures import build_pictures
from giftcloud_api.dicomweb.results import result, tags_of
from giftcloud_api.dicomweb.search import find
from giftcloud_api.models import Instance


class _QidoParams(BaseModel):
    """QIDO-RS's own parameters (read for the documentation: the search reads the query
    string itself, attribute keys included)."""

    limit: str | None = Field(None, description="results per page (at most the server's maximum)")
    offset: str | None = Field(None, description="results to skip")
    includefield: list[str] = Field(
        default_factory=list, description="attributes to return too (keywords or tags), or 'all'"
    )
    fuzzymatching: str | None = Field(None, description="'true': person names match by word")


QidoParams = Annotated[_QidoParams, Query()]


def _shown(plan: list[tuple[Instance, str | None]]) -> str:
    """What the audit says of a retrieval: how many instances, how many transcoded."""
    moved = {syntax for _, syntax in plan if syntax is not None}
    done = f"{len(plan)} instance(s)"
    return f"{done}, transcoded to {', '.join(sorted(moved))}" if moved else done


def build_router(
    service: CatalogueService, gates: Gates, audit: Auditor, delivery: Delivery
) -> APIRouter:
    router = APIRouter(prefix="/dicomweb/{project}", tags=["dicomweb"])

    async def record(request: Request, project: str, action: str, detail: str = "") -> None:
        """Every search and retrieval is in the audit before its answer goes out."""
        query = f"?{request.url.query}" if request.url.query else ""
        await audit.record(
            request, action, project=project, target=request.url.path + query, detail=detail
        )

    Project = Annotated[str, Depends(gates.project())]

    # links in answers (RetrieveURL, BulkDataURI) are built on the address people use, as
    # STOW-RS's are: a Host header can lie (dicomweb-client drops the port from it)
    public_url = service.settings.public_url.rstrip("/")

    def base(request: Request, project: str) -> str:
        return f"{public_url}/dicomweb/{project}"

    async def qido(
        request: Request,
        project: str,
        level: Level,
        parents: tuple[Level, ...],
        study: str | None = None,
        series: str | None = None,
    ) -> Response:
        json_accepted(request.headers.get("accept", ""))
        query = parse(
            list(request.query_params.multi_items()), level, service.settings.api.qido_max_limit
        )
        found, more = await find(service.db, project, query, study, series)
        await record(request, project, "dicomweb.search", f"{len(found)} {level} result(s)")
        root = base(request, project)
        headers = {"Warning": WARNING_CUT} if more and query.capped else None
        tags = tags_of(query, parents)
        body = orjson.dumps([result(f, query, tags, root) for f in found])
        return Response(body, media_type=DICOM_JSON, headers=headers)

    @router.get("/studies")
    async def search_studies(request: Request, project: Project, params: QidoParams) -> Response:
        """QIDO-RS: search for studies (PS3.18 §10.6). Any Patient or Study attribute,
        by keyword or tag, matches; see the README's DICOMweb table."""
        return await qido(request, project, "study", ())

    @router.get("/series")
    async def search_all_series(request: Request, project: Project, params: QidoParams) -> Response:
        """QIDO-RS: search for series in the project (results carry their study's attributes)."""
        return await qido(request, project, "series", ("study",))

    @router.get("/studies/{study}/series")
    async def search_series(
        request: Request, project: Project, study: str, params: QidoParams
    ) -> Response:
        """QIDO-RS: search for series of a study."""
        return await qido(request, project, "series", (), study)

    @router.get("/instances")
    async def search_all_instances(
        request: Request, project: Project, params: QidoParams
    ) -> Response:
        """QIDO-RS: search for instances in the project (with their study's and series'
        attributes)."""
        return await qido(request, project, "instance", ("study", "series"))

    @router.get("/studies/{study}/instances")
    async def search_study_instances(
        request: Request, project: Project, study: str, params: QidoParams
    ) -> Response:
        """QIDO-RS: search for instances of a study (with their series' attributes)."""
        return await qido(request, project, "instance", ("series",), study)

    @router.get("/studies/{study}/series/{series}/instances")
    async def search_instances(
        request: Request, project: Project, study: str, series: str, params: QidoParams
    ) -> Response:
        """QIDO-RS: search for instances of a series."""
        return await qido(request, project, "instance", (), study, series)

    async def _zip(project: str, study: str, series: str | None = None) -> StreamingResponse:
        found = await service.entries(project, study_uid=study, series_uid=series)
        stream = zip_of(service.store, service.archive, found)
        return zip_response(stream, filename(project, study, series))

    @router.get("/studies/{study}")
    async def retrieve_study(request: Request, project: Project, study: str) -> StreamingResponse:
        """WADO-RS: every instance of a study, multipart/related."""
        found = await service.instances(project, study_uid=study)
        if not found:
            raise NotFound(f"no study {study} in project {project!r}")
        answer = negotiate(request.headers.get("accept", ""), found, single=False)
        if answer.how == "zip":
            await record(request, project, "dicomweb.retrieve", f"{len(found)} instance(s), zip")
            return await _zip(project, study)
        plan = await delivery.prepared(found, answer)
        await record(request, project, "dicomweb.retrieve", _shown(plan))
        return await delivery.multipart(plan)

    @router.get("/studies/{study}/series/{series}")
    async def retrieve_series(
        request: Request, project: Project, study: str, series: str
    ) -> StreamingResponse:
        """WADO-RS: every instance of a series, multipart/related."""
        found = await service.instances(project, study_uid=study, series_uid=series)
        if not found:
            raise NotFound(f"no series {series} of study {study} in project {project!r}")
        answer = negotiate(request.headers.get("accept", ""), found, single=False)
        if answer.how == "zip":
            await record(request, project, "dicomweb.retrieve", f"{len(found)} instance(s), zip")
            return await _zip(project, study, series)
        plan = await delivery.prepared(found, answer)
        await record(request, project, "dicomweb.retrieve", _shown(plan))
        return await delivery.multipart(plan)

    @router.get("/studies/{study}/series/{series}/instances/{sop}")
    async def retrieve_instance(
        request: Request, project: Project, study: str, series: str, sop: str
    ) -> Response:
        """WADO-RS: one instance, multipart/related (or the bare file for Accept: application/dicom)."""
        instance = await service.instance(project, study, series, sop)
        answer = negotiate(request.headers.get("accept", ""), [instance], single=True)
        plan = await delivery.prepared([instance], answer)
        await record(request, project, "dicomweb.retrieve", _shown(plan))
        if answer.how == "bare":
            [(_, syntax)] = plan
            return Response(await delivery.file(instance, syntax), media_type="application/dicom")
        return await delivery.multipart(plan)

    async def metadata(
        request: Request,
        project: str,
        study: str,
        series: str | None = None,
        sop: str | None = None,
    ) -> Response:
        json_accepted(request.headers.get("accept", ""))
        found = await service.metadata_json(project, study, series, sop)
        if found is None:
            what = (
                f"instance {sop} in series {series} of study {study}"
                if sop
                else f"series {series} of study {study}"
                if series
                else f"study {study}"
            )
            raise NotFound(f"no {what} in project {project!r}")
        body, count = found
        await record(request, project, "dicomweb.metadata", f"{count} instance(s)")
        return Response(body, media_type=DICOM_JSON)

    @router.get("/studies/{study}/series/{series}/instances/{sop}/metadata")
    async def instance_metadata(
        request: Request, project: Project, study: str, series: str, sop: str
    ) -> Response:
        """WADO-RS: the instance's DICOM JSON metadata (bulk data as BulkDataURIs)."""
        return await metadata(request, project, study, series, sop)

    @router.get("/studies/{study}/metadata")
    async def study_metadata(request: Request, project: Project, study: str) -> Response:
        """WADO-RS: DICOM JSON metadata of every instance of a study."""
        return await metadata(request, project, study)

    @router.get("/studies/{study}/series/{series}/metadata")
    async def series_metadata(
        request: Request, project: Project, study: str, series: str
    ) -> Response:
        """WADO-RS: DICOM JSON metadata of every instance of a series."""
        return await metadata(request, project, study, series)

    async def parsed(instance: Instance) -> Dataset:
        """The archived file, read and parsed once for whatever is made of its pixels."""
        data = await service.file(instance)
        ceiling = service.settings.limits.inflated_ceiling
        return await asyncio.to_thread(pixels.read, data, ceiling)

    async def _frames(
        request: Request, instance: Instance, wanted: list[int] | None = None
    ) -> pixels.Frames:
        """The frames (every one when none are named) in what the Accept header asks for:
        as stored, decoded, or transcoded (through the transcoding cache)."""
        ds = await parsed(instance)
        stored = await asyncio.to_thread(pixels.frames, ds, wanted)
        how = frames_wanted(
            request.headers.get("accept", ""), stored.media_type, stored.transfer_syntax
        )
        if how == "stored":
            return stored
        if how == "decoded":
            return await asyncio.to_thread(pixels.decoded_frames, ds, wanted)
        ceiling = service.settings.limits.inflated_ceiling
        moved = await asyncio.to_thread(pixels.read, await delivery.file(instance, how), ceiling)
        return await asyncio.to_thread(pixels.frames, moved, wanted)

    def _parts(frames: pixels.Frames) -> Response:
        part = f"{frames.media_type}; transfer-syntax={frames.transfer_syntax}"
        return parts_of(frames.frames, frames.media_type, part)

    @router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}")
    async def retrieve_frames(
        request: Request, project: Project, study: str, series: str, sop: str, numbers: str
    ) -> Response:
        """WADO-RS: frames (numbered from 1, comma-separated): native pixels
        (application/octet-stream, also when no type is named), as stored (the stored
        frame's media type, or ``transfer-syntax=*``), or transcoded (image/jls, image/jp2,
        image/dicom-rle, lossless)."""
        wanted = pixels.parse_frame_list(numbers)
        instance = await service.instance(project, study, series, sop)
        found = await _frames(request, instance, wanted)
        await record(request, project, "dicomweb.retrieve", f"{len(wanted)} frame(s)")
        return _parts(found)

    @router.get("/studies/{study}/series/{series}/instances/{sop}/bulk/{tag}")
    async def retrieve_bulk(
        request: Request, project: Project, study: str, series: str, sop: str, tag: str
    ) -> Response:
        """WADO-RS: the bulk data a metadata BulkDataURI points at (pixel data: every frame,
        negotiated as frames are)."""
        if not re.fullmatch(r"[0-9A-Fa-f]{8}", tag):
            raise NotFound(f"no bulk data {tag!r}: a BulkDataURI ends in an attribute's tag")
        instance = await service.instance(project, study, series, sop)
        if tag.upper() in ("7FE00010", "7FE00008", "7FE00009"):
            every = await _frames(request, instance)
            await record(request, project, "dicomweb.retrieve", f"bulk data {tag.upper()}")
            return _parts(every)
        ds = await parsed(instance)
        await record(request, project, "dicomweb.retrieve", f"bulk data {tag.upper()}")
        value = pixels.bulk(ds, tag)
        return parts_of([value], "application/octet-stream", "application/octet-stream")

    router.include_router(build_pictures(service, gates, record, parsed))

    return router
