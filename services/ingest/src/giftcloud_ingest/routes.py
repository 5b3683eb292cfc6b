from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from giftcloud_core.dicom import STUDY_UID_MISMATCH
from giftcloud_core.errors import PayloadTooLarge
from giftcloud_core.tokens import Principal

from giftcloud_ingest.multipart import boundary_of, split_parts
from giftcloud_ingest.service import IngestService, StoreResult

DICOM_JSON = "application/dicom+json"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the request passed the limit of {limit} bytes")
    return bytes(body)


def stow_response(result: StoreResult, base_url: str, project: str) -> JSONResponse:
    """The PS3.18 STOW-RS response: 200 all stored, 202 some stored, 400 (409 for a study
    conflict) none stored; each failure with its reason code and a readable reason."""
    body: dict[str, Any] = {}
    if result.stored:
        body["00081199"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": {"vr": "UI", "Value": [s.sop_class_uid]},
                    "00081155": {"vr": "UI", "Value": [s.sop_instance_uid]},
                }
                for s in result.stored
            ],
        }
    if result.failed:
        body["00081198"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": {"vr": "UI", "Value": [f.sop_class_uid]}
                    if f.sop_class_uid
                    else {"vr": "UI"},
                    "00081155": {"vr": "UI", "Value": [f.sop_instance_uid]}
                    if f.sop_instance_uid
                    else {"vr": "UI"},
                    "00081197": {"vr": "US", "Value": [f.reason]},
                    "00000902": {"vr": "LO", "Value": [f.message[:64]]},
                }
                for f in result.failed
            ],
        }
        body["giftcloud:reasons"] = [
            f.message for f in result.failed
        ]  # the whole text, untruncated
    body["00081190"] = {"vr": "UR", "Value": [f"{base_url}/dicomweb/{project}/studies"]}
    if not result.failed:
        status = 200
    elif result.stored:
        status = 202
    elif all(f.reason == STUDY_UID_MISMATCH for f in result.failed):
        status = 409  # well-formed, but in conflict with the study named in the URL
    else:
        status = 400
    return JSONResponse(
        body,
        status_code=status,
        media_type=DICOM_JSON,
        headers={"X-Giftcloud-Upload": result.upload_id},
    )


def build_router(service: IngestService, current: Any) -> APIRouter:
    router = APIRouter(tags=["ingest"])
    Caller = Annotated[Principal, Depends(current)]
    limit = service.settings.ingest.max_request_bytes
    base_url = service.settings.ingest.public_url.rstrip("/")

    async def stow(
        project: str, request: Request, caller: Principal, study: str | None
    ) -> JSONResponse:
        await service.check_project(project, caller)
        boundary = boundary_of(request.headers.get("content-type", ""))
        parts = split_parts(await read_body(request, limit), boundary)
        result = await service.receive(project, caller, [p.body for p in parts], study_uid=study)
        return stow_response(result, base_url, project)

    @router.post("/dicomweb/{project}/studies")
    async def store_instances(project: str, request: Request, caller: Caller) -> JSONResponse:
        """STOW-RS: store instances of any study."""
        return await stow(project, request, caller, None)

    @router.post("/dicomweb/{project}/studies/{study}")
    async def store_study_instances(
        project: str, study: str, request: Request, caller: Caller
    ) -> JSONResponse:
        """STOW-RS: store instances of one study (others fail with reason 0xC409)."""
        return await stow(project, request, caller, study)

    @router.get("/ingest/{project}/uploads/{upload_id}")
    async def upload(project: str, upload_id: str, caller: Caller) -> dict[str, Any]:
        """What became of an upload's instances (the id is in the X-Giftcloud-Upload header)."""
        await service.check_project(project, caller)
        return await service.upload(project, upload_id)

    @router.get("/ingest/{project}/uploads")
    async def uploads(project: str, caller: Caller) -> list[dict[str, Any]]:
        await service.check_project(project, caller)
        return [u.model_dump(mode="json") for u in await service.uploads(project)]

    return router
