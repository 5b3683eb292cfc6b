"""QIDO-RS and WADO-RS (PS3.18) over the catalogue and the archive."""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from giftcloud_core.access import Auditor, request_address
from giftcloud_core.errors import NotFound
from giftcloud_core.tokens import Principal

from giftcloud_api.models import Instance
from giftcloud_api.service import CatalogueService

DICOM_JSON = "application/dicom+json"


def _attr(vr: str, *values: Any) -> dict[str, Any]:
    present = [v for v in values if v not in (None, "")]
    return {"vr": vr, "Value": present} if present else {"vr": vr}


def _pn(value: str) -> dict[str, Any]:
    return {"vr": "PN", "Value": [{"Alphabetic": value}]} if value else {"vr": "PN"}


def _json(items: list[dict[str, Any]]) -> Response:
    if not items:
        return Response(status_code=204)
    return JSONResponse(items, media_type=DICOM_JSON)


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

    @router.get("/studies")
    async def search_studies(
        request: Request,
        project: Project,
        study_uid: Annotated[str | None, Query(alias="StudyInstanceUID")] = None,
        patient_id: Annotated[str | None, Query(alias="PatientID")] = None,
        study_date: Annotated[str | None, Query(alias="StudyDate")] = None,
        modality: Annotated[str | None, Query(alias="ModalitiesInStudy")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    ) -> Response:
        """QIDO-RS: search for studies."""
        rows = await service.studies(
            project,
            study_uid=study_uid,
            subject=patient_id,
            study_date=study_date,
            modality=modality,
            limit=limit,
            offset=offset,
        )
        await record(request, project, "dicomweb.search", f"{len(rows)} study(ies)")
        root = base(request, project)
        return _json(
            [
                {
                    "0020000D": _attr("UI", r.study.study_uid),
                    "00080020": _attr("DA", r.study.study_date),
                    "00081030": _attr("LO", r.study.description),
                    "00080061": _attr("CS", *r.modalities),
                    "00100010": _pn(r.study.subject),
                    "00100020": _attr("LO", r.study.subject),
                    "00201206": _attr("IS", r.series_count),
                    "00201208": _attr("IS", r.instance_count),
                    "00081190": _attr("UR", f"{root}/studies/{r.study.study_uid}"),
                }
                for r in rows
            ]
        )

    async def _series(
        request: Request,
        project: str,
        study: str | None,
        modality: str | None,
        series_uid: str | None,
    ) -> Response:
        rows = await service.series(project, study, modality=modality, series_uid=series_uid)
        await record(request, project, "dicomweb.search", f"{len(rows)} series")
        root = base(request, project)
        return _json(
            [
                {
                    "0020000D": _attr("UI", r.series.study_uid),
                    "0020000E": _attr("UI", r.series.series_uid),
                    "00080060": _attr("CS", r.series.modality),
                    "0008103E": _attr("LO", r.series.description),
                    "00200011": _attr("IS", r.series.number),
                    "00100020": _attr("LO", r.subject),
                    "00201209": _attr("IS", r.instance_count),
                    "00081190": _attr(
                        "UR", f"{root}/studies/{r.series.study_uid}/series/{r.series.series_uid}"
                    ),
                }
                for r in rows
            ]
        )

    @router.get("/series")
    async def search_all_series(
        request: Request,
        project: Project,
        modality: Annotated[str | None, Query(alias="Modality")] = None,
        series_uid: Annotated[str | None, Query(alias="SeriesInstanceUID")] = None,
    ) -> Response:
        """QIDO-RS: search for series in the project."""
        return await _series(request, project, None, modality, series_uid)

    @router.get("/studies/{study}/series")
    async def search_series(
        request: Request,
        project: Project,
        study: str,
        modality: Annotated[str | None, Query(alias="Modality")] = None,
        series_uid: Annotated[str | None, Query(alias="SeriesInstanceUID")] = None,
    ) -> Response:
        """QIDO-RS: search for series of a study."""
        return await _series(request, project, study, modality, series_uid)

    def _instance_json(root: str, i: Instance) -> dict[str, Any]:
        return {
            "0020000D": _attr("UI", i.study_uid),
            "0020000E": _attr("UI", i.series_uid),
            "00080018": _attr("UI", i.sop_uid),
            "00080016": _attr("UI", i.sop_class_uid),
            "00200013": _attr("IS", i.number),
            "00100020": _attr("LO", i.subject),
            "00083002": _attr("UI", i.transfer_syntax_uid),
            "00081190": _attr(
                "UR", f"{root}/studies/{i.study_uid}/series/{i.series_uid}/instances/{i.sop_uid}"
            ),
        }

    @router.get("/instances")
    async def search_all_instances(
        request: Request,
        project: Project,
        sop_uid: Annotated[str | None, Query(alias="SOPInstanceUID")] = None,
    ) -> Response:
        """QIDO-RS: search for instances in the project."""
        rows = await service.instances(project, sop_uid=sop_uid)
        await record(request, project, "dicomweb.search", f"{len(rows)} instance(s)")
        return _json([_instance_json(base(request, project), i) for i in rows])

    @router.get("/studies/{study}/series/{series}/instances")
    async def search_instances(
        request: Request,
        project: Project,
        study: str,
        series: str,
        sop_uid: Annotated[str | None, Query(alias="SOPInstanceUID")] = None,
    ) -> Response:
        """QIDO-RS: search for instances of a series."""
        rows = await service.instances(project, study_uid=study, series_uid=series, sop_uid=sop_uid)
        await record(request, project, "dicomweb.search", f"{len(rows)} instance(s)")
        return _json([_instance_json(base(request, project), i) for i in rows])

    @router.get("/studies/{study}")
    async def retrieve_study(request: Request, project: Project, study: str) -> StreamingResponse:
        """WADO-RS: every instance of a study, multipart/related."""
        found = await service.instances(project, study_uid=study)
        if not found:
            raise NotFound(f"no study {study} in project {project!r}")
        await record(request, project, "dicomweb.retrieve", f"{len(found)} instance(s)")
        return await _multipart(found, service)

    @router.get("/studies/{study}/series/{series}")
    async def retrieve_series(
        request: Request, project: Project, study: str, series: str
    ) -> StreamingResponse:
        """WADO-RS: every instance of a series, multipart/related."""
        found = await service.instances(project, study_uid=study, series_uid=series)
        if not found:
            raise NotFound(f"no series {series} of study {study} in project {project!r}")
        await record(request, project, "dicomweb.retrieve", f"{len(found)} instance(s)")
        return await _multipart(found, service)

    @router.get("/studies/{study}/series/{series}/instances/{sop}")
    async def retrieve_instance(
        request: Request, project: Project, study: str, series: str, sop: str
    ) -> Response:
        """WADO-RS: one instance, multipart/related (or the bare file for Accept: application/dicom)."""
        instance = await service.instance(project, study, series, sop)
        await record(request, project, "dicomweb.retrieve", "1 instance")
        accept = request.headers.get("accept", "")
        if accept.strip().lower().startswith("application/dicom") and "multipart" not in accept:
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
