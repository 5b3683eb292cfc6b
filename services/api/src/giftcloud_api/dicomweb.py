"""QIDO-RS and WADO-RS (PS3.18) over the catalogue and the archive."""

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from giftcloud_core.access import Auditor, request_address
from giftcloud_core.errors import BadRequest, NotAcceptable, NotFound
from giftcloud_core.tokens import Principal
from pydantic import BaseModel, Field
from pydicom.dataset import Dataset

from giftcloud_api import pixels
from giftcloud_api.downloads import filename, zip_of, zip_response
from giftcloud_api.models import Instance
from giftcloud_api.qido import (
    LEVELS,
    RETURN_KEYS,
    WARNING_CUT,
    Level,
    Search,
    element,
    empty,
    kept,
    level_of,
    parse,
)
from giftcloud_api.repository import Found
from giftcloud_api.service import CatalogueService

DICOM_JSON = "application/dicom+json"


class _Values:
    """The attributes of one result, looked up where the catalogue keeps them."""

    def __init__(self, found: Found, level: Level, root: str) -> None:
        study, series, instance = found.study, found.series, found.instance
        self.level = level
        url = f"{root}/studies/{study.study_uid}"
        known: dict[str, dict[str, Any]] = {
            "00080056": element("CS", "ONLINE"),
            "0020000D": element("UI", study.study_uid),
            "00080061": element("CS", list(study.modalities)),
            "00201206": element("IS", study.series_count),
            "00201208": element("IS", study.instance_count),
            "00100020": study.attributes.get("00100020") or element("LO", study.subject),
        }
        # what the catalogue's own columns hold (before an instance's metadata moved in)
        self.columns: dict[str, tuple[str, Any]] = {
            "00080020": ("DA", study.study_date),
            "00081030": ("LO", study.description),
        }
        self.sources = [study.attributes]
        if series is not None:
            known["0020000E"] = element("UI", series.series_uid)
            known["00201209"] = element("IS", series.instance_count)
            self.sources.insert(0, series.attributes)
            self.columns["00080060"] = ("CS", series.modality)
            self.columns["0008103E"] = ("LO", series.description)
            self.columns["00200011"] = ("IS", series.number)
            if level != "study":
                url += f"/series/{series.series_uid}"
        if instance is not None:
            known["00080018"] = element("UI", instance.sop_uid)
            known["00080016"] = element("UI", instance.sop_class_uid)
            if instance.attributes:
                self.sources.insert(0, instance.attributes)
            self.columns["00200013"] = ("IS", instance.number)
            if level == "instance":
                url += f"/instances/{instance.sop_uid}"
        known["00081190"] = element("UR", url)
        self.known = known

    def __call__(self, tag: str) -> dict[str, Any]:
        value = self.known.get(tag)
        if value is not None:
            return value
        if LEVELS.index(level_of(tag)) > LEVELS.index(self.level):
            return empty(tag)  # a study has many series: a series attribute has no one value
        for attributes in self.sources:
            found: dict[str, Any] | None = attributes.get(tag)
            if found is not None:
                bulk = "BulkDataURI" in found or "InlineBinary" in found
                return empty(tag) if bulk else found
        column = self.columns.get(tag)
        if column is not None and column[1] not in (None, ""):
            return element(*column)
        return empty(tag)


def _tags(search: Search, parents: tuple[Level, ...]) -> set[str]:
    """The attributes every result of a search carries: the required ones of its level (and
    of the parent levels a search across them returns) and what ``includefield`` named."""
    tags = set(RETURN_KEYS[search.level]) | search.include
    for parent in parents:
        tags |= set(RETURN_KEYS[parent])
    return tags


def _result(found: Found, search: Search, tags: set[str], root: str) -> dict[str, Any]:
    """A result's DICOM JSON: ``tags``, and every attribute kept for ``includefield=all``."""
    if search.include_all:
        tags = set(tags)
        for attributes in (
            found.study.attributes,
            found.series.attributes if found.series and search.level != "study" else {},
            (found.instance.attributes or {}) if found.instance else {},
        ):
            tags |= set(kept(attributes))
    value = _Values(found, search.level, root)
    return {tag: value(tag) for tag in sorted(tags)}


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


def _media_ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    """An Accept header's media ranges, most preferred first (by q, then as written)."""
    ranges = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        values = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip().lower()] = value.strip().strip('"')
        if media:
            ranges.append((media.lower(), values))

    def weight(entry: tuple[str, dict[str, str]]) -> float:
        try:
            return -float(entry[1].get("q", "1"))
        except ValueError:
            return 0.0

    return sorted(ranges, key=weight) or [("*/*", {})]


def negotiate(accept: str, instances: list[Instance], single: bool) -> str:
    """How to send instances as PS3.18 §8.7.3 asks: 'multipart', 'bare' (one instance,
    ``Accept: application/dicom``) or 'zip' (a study or series, ``Accept: application/zip``). They go as stored: a transfer syntax other than each
    one's own (or ``*``) cannot be met (406, with the reason)."""
    stored = sorted({i.transfer_syntax_uid for i in instances if i.transfer_syntax_uid})
    asked = []
    for media, params in _media_ranges(accept):
        if media == "application/zip" and not single:
            return "zip"  # the instances as stored, in a zip (PS3.18 §8.7.3.5.3)
        if media not in ("*/*", "multipart/*", "multipart/related", "application/dicom"):
            continue
        if media == "multipart/related" and params.get("type", "application/dicom") not in (
            "application/dicom",
            "*/*",
        ):
            continue
        syntax = params.get("transfer-syntax", "*")
        asked.append(syntax)
        if syntax != "*" and stored != [syntax]:
            continue
        return "bare" if media == "application/dicom" and single else "multipart"
    if asked:
        raise NotAcceptable(
            f"instances are returned as stored (transfer syntax {', '.join(stored) or 'unknown'};"
            f" ask for transfer-syntax=* or that); transcoding to {', '.join(asked)} is not offered"
        )
    raise NotAcceptable(
        'WADO-RS returns DICOM instances here: Accept multipart/related; type="application/dicom"'
        " (or application/dicom for one instance, application/zip for a study or series)"
    )


def _parts(chunks: list[bytes], media_type: str, part_type: str) -> Response:
    """A multipart/related answer of ``chunks``, each of ``part_type``."""
    boundary = uuid.uuid4().hex
    body = bytearray()
    for chunk in chunks:
        body += (
            f"--{boundary}\r\nContent-Type: {part_type}\r\nContent-Length: {len(chunk)}\r\n\r\n"
        ).encode()
        body += chunk + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return Response(
        bytes(body), media_type=f'multipart/related; type="{media_type}"; boundary={boundary}'
    )


def frames_wanted(accept: str, stored_type: str, stored_syntax: str) -> str:
    """'stored' or 'decoded': what the Accept header of a frames request can be met with.
    Frames go as stored; a client asking for application/octet-stream of a compressed
    instance gets them decoded. Anything else is 406 with the reason."""
    for media, params in _media_ranges(accept):
        kind = (
            params.get("type", "application/octet-stream")
            if media == "multipart/related"
            else media
        )
        syntax = params.get("transfer-syntax", "*")
        if kind in ("*/*", "multipart/*"):
            return "stored"
        if kind == stored_type and syntax in ("*", stored_syntax):
            return "stored"
        if kind == "application/octet-stream" and syntax in ("*", pixels.UNCOMPRESSED):
            return "decoded"
    raise NotAcceptable(
        f"frames of this instance are {stored_type} (transfer syntax {stored_syntax}),"
        " or application/octet-stream decoded"
    )


async def _multipart(instances: list[Instance], service: CatalogueService) -> StreamingResponse:
    boundary = uuid.uuid4().hex

    async def parts() -> AsyncIterator[bytes]:
        for instance in instances:
            data = await service.file(instance)
            yield (
                f"--{boundary}\r\nContent-Type: application/dicom\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            yield data
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return StreamingResponse(
        parts(), media_type=f'multipart/related; type="application/dicom"; boundary={boundary}'
    )


def build_router(service: CatalogueService, current: Any, audit: Auditor) -> APIRouter:
    router = APIRouter(prefix="/dicomweb/{project}", tags=["dicomweb"])
    renderings = pixels.RenderCache()

    async def reader(
        project: str, request: Request, caller: Annotated[Principal, Depends(current)]
    ) -> str:
        await service.check(project, caller, request_address(request))
        return project

    async def record(request: Request, project: str, action: str, detail: str = "") -> None:
        """Every search and retrieval is in the audit before its answer goes out."""
        query = f"?{request.url.query}" if request.url.query else ""
        await audit.record(
            request, action, project=project, target=request.url.path + query, detail=detail
        )

    Project = Annotated[str, Depends(reader)]

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
        query = parse(
            list(request.query_params.multi_items()), level, service.settings.api.qido_max_limit
        )
        found, more = await service.search(project, query, study, series)
        await record(request, project, "dicomweb.search", f"{len(found)} {level} result(s)")
        root = base(request, project)
        headers = {"Warning": WARNING_CUT} if more and query.capped else None
        tags = _tags(query, parents)
        body = orjson.dumps([_result(f, query, tags, root) for f in found])
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
        how = negotiate(request.headers.get("accept", ""), found, single=False)
        await record(request, project, "dicomweb.retrieve", f"{len(found)} instance(s), {how}")
        if how == "zip":
            return await _zip(project, study)
        return await _multipart(found, service)

    @router.get("/studies/{study}/series/{series}")
    async def retrieve_series(
        request: Request, project: Project, study: str, series: str
    ) -> StreamingResponse:
        """WADO-RS: every instance of a series, multipart/related."""
        found = await service.instances(project, study_uid=study, series_uid=series)
        if not found:
            raise NotFound(f"no series {series} of study {study} in project {project!r}")
        how = negotiate(request.headers.get("accept", ""), found, single=False)
        await record(request, project, "dicomweb.retrieve", f"{len(found)} instance(s), {how}")
        if how == "zip":
            return await _zip(project, study, series)
        return await _multipart(found, service)

    @router.get("/studies/{study}/series/{series}/instances/{sop}")
    async def retrieve_instance(
        request: Request, project: Project, study: str, series: str, sop: str
    ) -> Response:
        """WADO-RS: one instance, multipart/related (or the bare file for Accept: application/dicom)."""
        instance = await service.instance(project, study, series, sop)
        how = negotiate(request.headers.get("accept", ""), [instance], single=True)
        await record(request, project, "dicomweb.retrieve", "1 instance")
        if how == "bare":
            return Response(await service.file(instance), media_type="application/dicom")
        return await _multipart([instance], service)

    async def metadata(
        request: Request,
        project: str,
        study: str,
        series: str | None = None,
        sop: str | None = None,
    ) -> Response:
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

    @router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}")
    async def retrieve_frames(
        request: Request, project: Project, study: str, series: str, sop: str, numbers: str
    ) -> Response:
        """WADO-RS: frames (numbered from 1, comma-separated), as stored (each compressed
        frame's bitstream, or uncompressed pixels), or decoded for application/octet-stream."""
        wanted = pixels.parse_frame_list(numbers)
        ds = await parsed(await service.instance(project, study, series, sop))
        stored = await asyncio.to_thread(pixels.frames, ds, wanted)
        how = frames_wanted(
            request.headers.get("accept", ""), stored.media_type, stored.transfer_syntax
        )
        if how == "decoded":
            stored = await asyncio.to_thread(pixels.decoded_frames, ds, wanted)
        await record(request, project, "dicomweb.retrieve", f"{len(wanted)} frame(s)")
        part = f"{stored.media_type}; transfer-syntax={stored.transfer_syntax}"
        return _parts(stored.frames, stored.media_type, part)

    @router.get("/studies/{study}/series/{series}/instances/{sop}/bulk/{tag}")
    async def retrieve_bulk(
        request: Request, project: Project, study: str, series: str, sop: str, tag: str
    ) -> Response:
        """WADO-RS: the bulk data a metadata BulkDataURI points at (pixel data: every frame,
        as stored)."""
        if not re.fullmatch(r"[0-9A-Fa-f]{8}", tag):
            raise NotFound(f"no bulk data {tag!r}: a BulkDataURI ends in an attribute's tag")
        ds = await parsed(await service.instance(project, study, series, sop))
        await record(request, project, "dicomweb.retrieve", f"bulk data {tag.upper()}")
        if tag.upper() in ("7FE00010", "7FE00008", "7FE00009"):
            every = await asyncio.to_thread(pixels.frames, ds)
            part = f"{every.media_type}; transfer-syntax={every.transfer_syntax}"
            return _parts(every.frames, every.media_type, part)
        value = pixels.bulk(ds, tag)
        return _parts([value], "application/octet-stream", "application/octet-stream")

    async def _rendered(
        request: Request,
        project: str,
        instance: Instance,
        frame: int,
        thumbnail: bool,
    ) -> Response:
        how = pixels.rendering(
            list(request.query_params.multi_items()),
            request.headers.get("accept", ""),
            thumbnail=thumbnail,
        )
        key = (project, instance.sop_uid, frame, thumbnail, how)
        image = renderings.get(key)
        if image is None:
            image = await asyncio.to_thread(pixels.render, await parsed(instance), frame, how)
            renderings.put(key, image)
        what = "thumbnail" if thumbnail else "rendered"
        await record(request, project, "dicomweb.retrieve", f"{what} frame {frame}")
        # an archived instance never changes under its UID: the browser may keep the image
        return Response(
            image, media_type=how.media_type, headers={"Cache-Control": "private, max-age=3600"}
        )

    def _one_frame(numbers: str) -> int:
        wanted = pixels.parse_frame_list(numbers)
        if len(wanted) != 1:
            raise BadRequest("rendered frames here: one frame at a time")
        return wanted[0]

    @router.get("/studies/{study}/series/{series}/instances/{sop}/rendered")
    @router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}/rendered")
    async def rendered(
        request: Request, project: Project, study: str, series: str, sop: str, numbers: str = "1"
    ) -> Response:
        """WADO-RS: an instance (its first frame) or one frame rendered, image/jpeg or
        image/png; ``window=center,width``, ``viewport=width,height``, ``quality``."""
        frame = _one_frame(numbers)
        instance = await service.instance(project, study, series, sop)
        return await _rendered(request, project, instance, frame, thumbnail=False)

    @router.get("/studies/{study}/series/{series}/instances/{sop}/thumbnail")
    @router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}/thumbnail")
    async def thumbnail(
        request: Request, project: Project, study: str, series: str, sop: str, numbers: str = "1"
    ) -> Response:
        """WADO-RS: a small rendering of an instance or a frame (128 pixels unless a
        viewport is given)."""
        frame = _one_frame(numbers)
        instance = await service.instance(project, study, series, sop)
        return await _rendered(request, project, instance, frame, thumbnail=True)

    @router.get("/studies/{study}/series/{series}/thumbnail")
    async def thumbnail_series(
        request: Request, project: Project, study: str, series: str
    ) -> Response:
        """WADO-RS: the series' thumbnail: its middle instance."""
        middle = await service.middle_instance(project, study, series)
        if middle is None:
            raise NotFound(f"no series {series} of study {study} in project {project!r}")
        return await _rendered(request, project, middle, 1, thumbnail=True)

    @router.get("/studies/{study}/thumbnail")
    async def thumbnail_study(request: Request, project: Project, study: str) -> Response:
        """WADO-RS: the study's thumbnail: the middle instance of its first series."""
        middle = await service.middle_instance(project, study)
        if middle is None:
            raise NotFound(f"no study {study} in project {project!r}")
        return await _rendered(request, project, middle, 1, thumbnail=True)

    return router
