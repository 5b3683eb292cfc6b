"""QIDO-RS and WADO-RS (PS3.18) over the catalogue and the archive."""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from giftcloud_core.access import Auditor, request_address
from giftcloud_core.errors import NotAcceptable, NotFound
from giftcloud_core.tokens import Principal
from pydantic import BaseModel, Field

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


def _value(tag: str, found: Found, level: Level, root: str) -> dict[str, Any] | None:
    """The attribute of a result, or None when the catalogue does not hold it."""
    study, series, instance = found.study, found.series, found.instance
    computed: dict[str, Any] = {
        "00080056": lambda: element("CS", "ONLINE"),
        "0020000D": lambda: element("UI", study.study_uid),
        "00080061": lambda: element("CS", list(study.modalities)),
        "00201206": lambda: element("IS", study.series_count),
        "00201208": lambda: element("IS", study.instance_count),
        "00100020": lambda: study.attributes.get("00100020") or element("LO", study.subject),
    }
    if series is not None:
        computed["0020000E"] = lambda: element("UI", series.series_uid)
        computed["00201209"] = lambda: element("IS", series.instance_count)
    if instance is not None:
        computed["00080018"] = lambda: element("UI", instance.sop_uid)
        computed["00080016"] = lambda: element("UI", instance.sop_class_uid)
    if tag == "00081190":
        url = f"{root}/studies/{study.study_uid}"
        if series is not None and level != "study":
            url += f"/series/{series.series_uid}"
        if instance is not None and level == "instance":
            url += f"/instances/{instance.sop_uid}"
        return element("UR", url)
    if tag in computed:
        return computed[tag]()  # type: ignore[no-any-return]
    if LEVELS.index(level_of(tag)) > LEVELS.index(level):
        return None  # a study has many series: a series-level attribute has no one value
    sources = [study.attributes]
    if series is not None:
        sources.insert(0, series.attributes)
    if instance is not None and instance.attributes:
        sources.insert(0, instance.attributes)
    for attributes in sources:
        if tag in attributes:
            value: dict[str, Any] = attributes[tag]
            return None if "BulkDataURI" in value or "InlineBinary" in value else value
    # what the catalogue's own columns hold (before an instance's metadata has moved in)
    columns: dict[str, tuple[str, Any]] = {
        "00080020": ("DA", study.study_date),
        "00081030": ("LO", study.description),
    }
    if series is not None:
        columns["00080060"] = ("CS", series.modality)
        columns["0008103E"] = ("LO", series.description)
        columns["00200011"] = ("IS", series.number)
    if instance is not None:
        columns["00200013"] = ("IS", instance.number)
    if tag in columns and columns[tag][1] not in (None, ""):
        return element(*columns[tag])
    return None


def _result(found: Found, search: Search, parents: tuple[Level, ...], root: str) -> dict[str, Any]:
    """A result's DICOM JSON: the required attributes of its level (and of the parent levels
    a search across them returns), what ``includefield`` named, every one for ``all``."""
    tags = set(RETURN_KEYS[search.level]) | search.include
    for parent in parents:
        tags |= set(RETURN_KEYS[parent])
    if search.include_all:
        for attributes in (
            found.study.attributes,
            found.series.attributes if found.series and search.level != "study" else {},
            (found.instance.attributes or {}) if found.instance else {},
        ):
            tags |= set(kept(attributes))
    out = {}
    for tag in sorted(tags):
        out[tag] = _value(tag, found, search.level, root) or empty(tag)
    return out


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

    def base(request: Request, project: str) -> str:
        return f"{str(request.base_url).rstrip('/')}/dicomweb/{project}"

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
        return JSONResponse(
            [_result(f, query, parents, root) for f in found],
            media_type=DICOM_JSON,
            headers=headers,
        )

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

    @router.get("/studies/{study}/series/{series}/instances/{sop}/metadata")
    async def instance_metadata(
        request: Request, project: Project, study: str, series: str, sop: str
    ) -> JSONResponse:
        """WADO-RS: the instance's DICOM JSON metadata (computed at archive time)."""
        instance = await service.instance(project, study, series, sop)
        await record(request, project, "dicomweb.metadata", "1 instance")
        return JSONResponse([await service.metadata(instance)], media_type=DICOM_JSON)

    @router.get("/studies/{study}/metadata")
    async def study_metadata(request: Request, project: Project, study: str) -> JSONResponse:
        """WADO-RS: DICOM JSON metadata of every instance of a study."""
        found = await service.instances(project, study_uid=study)
        if not found:
            raise NotFound(f"no study {study} in project {project!r}")
        await record(request, project, "dicomweb.metadata", f"{len(found)} instance(s)")
        return JSONResponse([await service.metadata(i) for i in found], media_type=DICOM_JSON)

    @router.get("/studies/{study}/series/{series}/metadata")
    async def series_metadata(
        request: Request, project: Project, study: str, series: str
    ) -> JSONResponse:
        """WADO-RS: DICOM JSON metadata of every instance of a series."""
        found = await service.instances(project, study_uid=study, series_uid=series)
        if not found:
            raise NotFound(f"no series {series} of study {study} in project {project!r}")
        await record(request, project, "dicomweb.metadata", f"{len(found)} instance(s)")
        return JSONResponse([await service.metadata(i) for i in found], media_type=DICOM_JSON)

    return router
