"""A study's results, and files attached to a project, a subject, a study or a series: read
by those who may read the project, attached by those who may send to it, removed by its
owners; every one audited as every catalogue read is."""

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from giftcloud_core.access import Auditor
from giftcloud_core.db import Database
from giftcloud_core.errors import PayloadTooLarge
from giftcloud_core.gates import OWNER
from giftcloud_core.tokens import WRITE_ROLES, Principal

from giftcloud_api.access import Gates
from giftcloud_api.results import service
from giftcloud_api.results.files import Files
from giftcloud_api.results.schemas import FileOut, ProjectResult, ResultOut


async def _read_bounded(upload: UploadFile, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the file passed the limit of {limit} bytes (GIFTCLOUD_LIMITS__MAX_FILE_BYTES)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def build_router(
    db: Database, files: Files, gates: Gates, audit: Auditor, max_file_bytes: int
) -> APIRouter:
    router = APIRouter(prefix="/api/projects/{project}", tags=["results"])
    Readable = Annotated[str, Depends(gates.project())]
    Writable = Annotated[str, Depends(gates.project(WRITE_ROLES))]
    Owned = Annotated[str, Depends(gates.project(OWNER))]
    Caller = Annotated[Principal, Depends(gates.caller)]

    @router.get("/studies/{study}/results")
    async def study_results(project: Readable, study: str, request: Request) -> list[ResultOut]:
        """What was derived from the study's images (segmentations, structured reports, RT
        structure sets, parametric maps), each with the series it derives from."""
        await audit.record(request, "api.results", project=project, target=f"study {study}")
        return await service.of_study(db, project, study)

    @router.get("/results")
    async def project_results(
        project: Readable,
        request: Request,
        since: Annotated[
            datetime | None, Query(description="only what was archived or attached since")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> list[ProjectResult]:
        """The project's results -- instances derived from its images, and attached files --
        oldest first (what a site pulls back to re-identify and deliver)."""
        found = await service.of_project(db, project, since, limit)
        if found:  # a site asks every few seconds: an answer with nothing in it reveals nothing
            await audit.record(
                request, "api.results", project=project, target=f"{len(found)} project results"
            )
        return found

    @router.post("/files", status_code=201)
    async def attach(
        project: Writable,
        caller: Caller,
        request: Request,
        file: Annotated[UploadFile, File(description="the file")],
        subject: Annotated[str, Form(max_length=64)] = "",
        study: Annotated[str, Form(max_length=64)] = "",
        series: Annotated[str, Form(max_length=64)] = "",
        inputs: Annotated[
            str, Form(max_length=20000, description="UIDs or file ids, space- or comma-separated")
        ] = "",
        tool: Annotated[str, Form(max_length=200)] = "",
        tool_version: Annotated[str, Form(max_length=100)] = "",
        description: Annotated[str, Form(max_length=1000)] = "",
    ) -> FileOut:
        """Attach a file that is not DICOM (a NIfTI mask, a CSV table, a PDF) to the project,
        a subject, a study or a series, with what it was made from and by which tool."""
        data = await _read_bounded(file, max_file_bytes)
        attached = await files.attach(
            project,
            caller.name,
            file.filename or "",
            file.content_type or "",
            data,
            (subject, study, series),
            (inputs.replace(",", " ").split(), tool, tool_version, description),
        )
        await audit.record(
            request,
            "api.file.attach",
            project=project,
            target=f"file {attached.id}",
            detail=f"{attached.name} ({attached.size} bytes, sha256 {attached.sha256[:16]}…)",
        )
        return attached

    @router.get("/files")
    async def listed(
        project: Readable,
        request: Request,
        subject: Annotated[str | None, Query(max_length=64)] = None,
        study: Annotated[str | None, Query(max_length=64)] = None,
        series: Annotated[str | None, Query(max_length=64)] = None,
    ) -> list[FileOut]:
        """The files attached within the project, a subject, a study or a series."""
        await audit.record(request, "api.files", project=project, target=request.url.path)
        return await files.listed(project, subject, study, series)

    @router.get("/files/{ident}", response_class=Response)
    async def fetched(project: Readable, ident: str, request: Request) -> Response:
        """The file, as an attachment (never shown by the browser on this site)."""
        row = await files.one(project, ident)
        data = await files.content(row)
        await audit.record(request, "api.file.download", project=project, target=f"file {ident}")
        return Response(
            data,
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.name)}",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
                "X-Giftcloud-SHA256": row.sha256,
                "X-Giftcloud-Media-Type": row.media_type,
            },
        )

    @router.delete("/files/{ident}")
    async def removed(project: Owned, ident: str, request: Request) -> FileOut:
        """Remove an attached file for good (owners)."""
        gone = await files.remove(project, ident)
        await audit.record(
            request, "api.file.remove", project=project, target=f"file {ident}", detail=gone.name
        )
        return gone

    return router
