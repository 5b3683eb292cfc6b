"""STOW-RS into a project, and what became of an upload."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse
from giftcloud_core.access import Auditor
from giftcloud_core.errors import (
    BadRequest,
    GiftcloudError,
)
from giftcloud_core.gates import Gates
from giftcloud_core.settings import Settings
from giftcloud_core.tokens import WRITE_ROLES, Principal
from giftcloud_dicom.multipart import MultipartError, PartReader, boundary_of
from giftcloud_dicom.uid import uid_problem

from giftcloud_ingest.receiving.service import Receiver
from giftcloud_ingest.stow.body import (
    UploadsUnderWay,
    check_declared_length,
    http_error,
    receive_parts,
)
from giftcloud_ingest.stow.response import stow_response
from giftcloud_ingest.stow.schemas import UploadStatus, UploadSummary


def build_router(settings: Settings, receiver: Receiver, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(tags=["STOW-RS and uploads"])
    Writer = Annotated[Principal, Depends(gates.project(WRITE_ROLES))]
    uploads_of = UploadsUnderWay(settings.ingest.max_uploads_per_caller)
    limit = settings.ingest.max_request_bytes
    base_url = settings.public_url.rstrip("/")

    async def stow(
        project: str, request: Request, caller: Principal, study: str | None
    ) -> JSONResponse:
        if study is not None and (problem := uid_problem(study)) is not None:
            raise BadRequest(f"the study UID in the URL is not a valid UID: {problem}")
        check_declared_length(request, limit)
        try:
            boundary = boundary_of(request.headers.get("content-type", ""))
        except MultipartError as exc:
            raise http_error(exc) from None
        reader = PartReader(
            boundary,
            max_part_bytes=settings.limits.max_instance_bytes,
            max_parts=settings.ingest.max_parts,
        )
        async with uploads_of(caller):
            upload = await receiver.open_upload(project, caller, study_uid=study)
            error: GiftcloudError | None = None
            try:
                await receive_parts(request, upload, reader, settings)
            except GiftcloudError as exc:  # what arrived whole before it is kept, and said so
                error = exc
            except Exception:
                await upload.finish()
                raise
            result = await upload.finish()
        await audit.record(
            request,
            "ingest.upload",
            project=project,
            target=f"upload {result.upload_id}" + (f" to study {study}" if study else ""),
            outcome="success" if result.stored else "failure",
            detail=f"stored {len(result.stored)}, refused {len(result.failed)}"
            + (f"; {error.message}" if error else ""),
            # what was stored is stored, and ingest's own upload record names who sent it:
            # an audit trail out of reach does not turn the answer into a failure
            required=False,
        )
        return stow_response(result, base_url, project, error)

    @router.post("/dicomweb/{project}/studies")
    async def store_instances(project: str, request: Request, caller: Writer) -> JSONResponse:
        """STOW-RS: store instances of any study."""
        return await stow(project, request, caller, None)

    @router.post("/dicomweb/{project}/studies/{study}")
    async def store_study_instances(
        project: str, study: str, request: Request, caller: Writer
    ) -> JSONResponse:
        """STOW-RS: store instances of one study (others fail with reason 0xC409)."""
        return await stow(project, request, caller, study)

    @router.get("/ingest/{project}/uploads/{upload_id}")
    async def upload(project: str, upload_id: str, caller: Writer) -> UploadStatus:
        """What became of an upload's instances (the id is in the X-Giftcloud-Upload header)."""
        return UploadStatus.model_validate(await receiver.records.status(project, upload_id))

    @router.get("/ingest/{project}/uploads/{upload_id}/instances/{index}")
    async def archived_instance(
        project: str,
        upload_id: str,
        index: Annotated[int, Path(ge=0, le=10_000_000)],
        caller: Writer,
    ) -> RedirectResponse:
        """The RetrieveURL of a stored instance: leads (303) to its WADO-RS URL once it is
        archived under its de-identified UIDs; 404 saying why before (or if rejected)."""
        return RedirectResponse(
            base_url + await receiver.records.archived_at(project, upload_id, index),
            status_code=303,
        )

    @router.get("/ingest/{project}/uploads")
    async def uploads(project: str, caller: Writer) -> list[UploadSummary]:
        """The project's latest uploads (100), newest first."""
        return [
            UploadSummary.model_validate(u, from_attributes=True)
            for u in await receiver.records.listed(project)
        ]

    return router
