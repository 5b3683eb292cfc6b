from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse
from giftcloud_core.access import Auditor, request_address
from giftcloud_core.dicom import (
    STUDY_UID_MISMATCH,
)
from giftcloud_core.errors import (
    BadRequest,
    Forbidden,
    GiftcloudError,
    PayloadTooLarge,
)
from giftcloud_core.tokens import Principal
from giftcloud_deid.uid import uid_problem
from pydantic import BaseModel, Field

from giftcloud_ingest.dicom_node import DicomRoutes
from giftcloud_ingest.forwarding import Forwarder
from giftcloud_ingest.multipart import PartReader, boundary_of
from giftcloud_ingest.retrieval import Retrievals, check_query, queries_from_csv
from giftcloud_ingest.service import IngestService, StoreResult
from giftcloud_ingest.stow_body import (
    UploadsUnderWay,
    check_declared_length,
    receive_parts,
)

DICOM_JSON = "application/dicom+json"
OWNER = frozenset({"owner"})


#: giftcloud's private block in STOW-RS answers: (0009,0010) names it, (0009,1001) holds a
#: failure's whole reason (ErrorComment is LO: 64 characters), (0009,1002) the request's own
#: refusal, (0009,1003) the part's place in the request (0-based), so a client ties each
#: answer to the file it sent
PRIVATE_CREATOR = {"00090010": {"vr": "LO", "Value": ["GIFTCLOUD"]}}
WHOLE_REASON, REQUEST_REFUSED, PART_INDEX = "00091001", "00091002", "00091003"


def _uid(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def stow_response(
    result: StoreResult,
    base_url: str,
    project: str,
    error: GiftcloudError | None = None,
    first_index: int = 0,
) -> JSONResponse:
    """The PS3.18 STOW-RS response, valid DICOM JSON: 200 all stored, 202 some stored, 400
    (409 for a study conflict) none stored; each stored instance with a RetrieveURL that
    leads to it once it is archived (under its de-identified UIDs), each failure with its
    reason code and its reason. A request refused part way (``error``) answers with its
    status and says what was stored before."""
    status_url = f"{base_url}/ingest/{project}/uploads/{result.upload_id}"
    body: dict[str, Any] = {}
    if result.stored:
        body["00081199"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": _uid(s.sop_class_uid),
                    "00081155": _uid(s.sop_instance_uid),
                    "00081190": {"vr": "UR", "Value": [f"{status_url}/instances/{s.index}"]},
                    **PRIVATE_CREATOR,
                    PART_INDEX: {"vr": "UL", "Value": [s.index - first_index]},
                }
                for s in result.stored
            ],
        }
    if result.failed:
        body["00081198"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": _uid(f.sop_class_uid),
                    "00081155": _uid(f.sop_instance_uid),
                    "00081197": {"vr": "US", "Value": [f.reason]},
                    "00000902": {"vr": "LO", "Value": [f.message[:64]]},
                    **PRIVATE_CREATOR,
                    WHOLE_REASON: {"vr": "UT", "Value": [f.message]},
                    PART_INDEX: {"vr": "UL", "Value": [f.index - first_index]},
                }
                for f in result.failed
            ],
        }
    if error is not None:
        stored = f"{len(result.stored)} instance(s) before it were stored"
        body.update(PRIVATE_CREATOR)
        body[REQUEST_REFUSED] = {"vr": "UT", "Value": [f"{error.message}; {stored}"]}
    body["00081190"] = {"vr": "UR", "Value": [f"{base_url}/dicomweb/{project}/studies"]}
    if error is not None:
        status = error.status
    elif not result.failed:
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
        headers={"X-Giftcloud-Upload": result.upload_id, "Link": f'<{status_url}>; rel="status"'},
    )


class DicomRouteIn(BaseModel):
    """The project's DICOM AE title, and who may send to it (empty lists: anyone)."""

    ae_title: str = Field(min_length=1, max_length=16, examples=["RESEARCH_CT"])
    calling_ae_titles: list[str] = Field(default=[], max_length=256, examples=[["CT_SCANNER1"]])
    networks: list[str] = Field(default=[], max_length=256, examples=[["10.20.0.0/16"]])


def build_router(
    service: IngestService, dicom: DicomRoutes, current: Any, audit: Auditor
) -> APIRouter:
    router = APIRouter(tags=["ingest"])
    Caller = Annotated[Principal, Depends(current)]
    settings = service.settings
    uploads_of = UploadsUnderWay(settings.ingest.max_uploads_per_caller)
    limit = settings.ingest.max_request_bytes
    base_url = settings.public_url.rstrip("/")

    async def stow(
        project: str, request: Request, caller: Principal, study: str | None
    ) -> JSONResponse:
        await service.check_project(project, caller, request_address(request))
        if study is not None and (problem := uid_problem(study)) is not None:
            raise BadRequest(f"the study UID in the URL is not a valid UID: {problem}")
        check_declared_length(request, limit)
        reader = PartReader(
            boundary_of(request.headers.get("content-type", "")),
            max_part_bytes=settings.limits.max_instance_bytes,
            max_parts=settings.ingest.max_parts,
        )
        async with uploads_of(caller):
            upload = await service.open_upload(project, caller, study_uid=study)
            error: GiftcloudError | None = None
            idle = settings.ingest.body_idle_seconds
            try:
                await receive_parts(request, upload, reader, limit, idle)
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
    async def upload(
        project: str, upload_id: str, request: Request, caller: Caller
    ) -> dict[str, Any]:
        """What became of an upload's instances (the id is in the X-Giftcloud-Upload header)."""
        await service.check_project(project, caller, request_address(request))
        return await service.upload(project, upload_id)

    @router.get("/ingest/{project}/uploads/{upload_id}/instances/{index}")
    async def archived_instance(
        project: str,
        upload_id: str,
        index: Annotated[int, Path(ge=0, le=10_000_000)],
        request: Request,
        caller: Caller,
    ) -> RedirectResponse:
        """The RetrieveURL of a stored instance: leads (303) to its WADO-RS URL once it is
        archived under its de-identified UIDs; 404 saying why before (or if rejected)."""
        await service.check_project(project, caller, request_address(request))
        return RedirectResponse(
            base_url + await service.archived_at(project, upload_id, index), status_code=303
        )

    @router.get("/ingest/{project}/uploads")
    async def uploads(project: str, request: Request, caller: Caller) -> list[dict[str, Any]]:
        """The project's latest uploads (100), newest first."""
        await service.check_project(project, caller, request_address(request))
        return [u.model_dump(mode="json") for u in await service.uploads(project)]

    @router.get("/ingest/{project}/dicom")
    async def dicom_route(project: str, request: Request, caller: Caller) -> dict[str, Any]:
        """The project's DICOM AE title: modalities and PACS send to it by C-STORE."""
        await service.check_project(project, caller, request_address(request), OWNER)
        return (await dicom.get(project)).public()

    @router.put("/ingest/{project}/dicom")
    async def set_dicom_route(
        project: str, data: DicomRouteIn, request: Request, caller: Caller
    ) -> dict[str, Any]:
        """Route associations called ``ae_title`` into the project (owner): from the calling
        AE titles and source networks (CIDR) listed, or from anyone when a list is empty.
        409 when another project has the AE title."""
        await service.check_project(project, caller, request_address(request), OWNER)
        route = await dicom.put(
            project, data.ae_title, data.calling_ae_titles, data.networks, caller.name
        )
        await audit.record(
            request,
            "ingest.dicom_route",
            project=project,
            target=f"AE title {route.ae_title}",
            outcome="success",
            detail=f"calling {list(route.calling_ae_titles)}, networks {list(route.networks)}",
        )
        return route.public()

    @router.delete("/ingest/{project}/dicom", status_code=204)
    async def delete_dicom_route(project: str, request: Request, caller: Caller) -> None:
        """Stop routing the project's AE title: associations to it are rejected from now."""
        await service.check_project(project, caller, request_address(request), OWNER)
        await dicom.delete(project)
        await audit.record(
            request,
            "ingest.dicom_route",
            project=project,
            target="AE title",
            outcome="success",
            detail="removed",
        )

    return router


class RemoteNodeIn(BaseModel):
    """A PACS the site retrieves from: its AE title, address, and how many studies it is
    asked to move at once. It must know this node (its AE title, address and port) as a
    C-FIND/C-MOVE caller and each project's AE title as a move destination."""

    ae_title: str = Field(min_length=1, max_length=16, examples=["HOSPITAL_PACS"])
    host: str = Field(min_length=1, max_length=253, examples=["pacs.hospital.local"])
    port: int = Field(ge=1, le=65535, examples=[104])
    tls: bool = False
    max_concurrent: int = Field(default=2, ge=1, le=16)


class RetrievalIn(BaseModel):
    """Queries (each a set of keys: PatientID, AccessionNumber, StudyInstanceUID, StudyDate
    as YYYYMMDD or a range, ModalitiesInStudy) sent to a remote node."""

    node: str = Field(min_length=1, max_length=63, examples=["pacs"])
    queries: list[dict[str, str]] = Field(
        min_length=1,
        max_length=10_000,
        examples=[[{"AccessionNumber": "A1001"}, {"PatientID": "P7", "StudyDate": "2020-"}]],
    )


def build_retrieval_router(
    service: IngestService, retrievals: Retrievals, current: Any, audit: Auditor
) -> APIRouter:
    router = APIRouter(tags=["retrieval"])
    Caller = Annotated[Principal, Depends(current)]

    def admin(caller: Principal) -> None:
        if not caller.is_admin:
            raise Forbidden("remote nodes are the site's: an admin sets them")

    @router.get("/ingest/nodes")
    async def nodes(caller: Caller) -> list[dict[str, Any]]:
        """The remote nodes (PACS) cohorts are retrieved from (admin)."""
        admin(caller)
        return await retrievals.nodes()

    @router.put("/ingest/nodes/{name}")
    async def put_node(
        name: str, data: RemoteNodeIn, request: Request, caller: Caller
    ) -> dict[str, Any]:
        """Add or change a remote node (admin)."""
        admin(caller)
        node = await retrievals.put_node(name, data.model_dump(), caller.name)
        await audit.record(
            request, "ingest.node", target=f"node {name}", detail=str(node), outcome="success"
        )
        return node

    @router.delete("/ingest/nodes/{name}", status_code=204)
    async def delete_node(name: str, request: Request, caller: Caller) -> None:
        admin(caller)
        await retrievals.delete_node(name)
        await audit.record(request, "ingest.node", target=f"node {name}", detail="removed")

    @router.post("/ingest/{project}/retrievals", status_code=201)
    async def create(project: str, request: Request, caller: Caller) -> dict[str, Any]:
        """Start a retrieval: JSON ``{"node": ..., "queries": [...]}``, or a CSV body
        (``Content-Type: text/csv``, ``?node=``) whose header row names query keys, one
        query a row (a list of accession numbers or patient IDs)."""
        await service.check_project(project, caller, request_address(request))
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if len(body) > 4 * 1024**2:
            raise PayloadTooLarge("a retrieval's queries take at most 4 MiB")
        if kind == "text/csv":
            node = request.query_params.get("node", "")
            if not node:
                raise BadRequest("name the remote node: ?node=")
            queries = queries_from_csv(body.decode("utf-8", errors="replace"))
        else:
            try:
                data = RetrievalIn.model_validate_json(body)
            except ValueError as exc:
                raise BadRequest(f"the body is not a retrieval: {str(exc)[:300]}") from None
            node = data.node
            queries = [check_query(q, f"query {i + 1}") for i, q in enumerate(data.queries)]
        status = await retrievals.create(project, node, queries, caller.name)
        await audit.record(
            request,
            "ingest.retrieval",
            project=project,
            target=f"retrieval {status['id']} from {node}",
            detail=f"{len(queries)} queries",
        )
        return status

    @router.get("/ingest/{project}/retrievals")
    async def list_retrievals(
        project: str, request: Request, caller: Caller
    ) -> list[dict[str, Any]]:
        """The project's latest retrievals (100), newest first."""
        await service.check_project(project, caller, request_address(request))
        return await retrievals.of_project(project)

    @router.get("/ingest/{project}/retrievals/{retrieval_id}")
    async def status(
        project: str, retrieval_id: str, request: Request, caller: Caller
    ) -> dict[str, Any]:
        """Per query: studies found, instances expected, moved, archived, rejected (with
        reasons) and failed (with the remote node's status)."""
        await service.check_project(project, caller, request_address(request))
        return await retrievals.status(project, retrieval_id)

    @router.post("/ingest/{project}/retrievals/{retrieval_id}/cancel")
    async def cancel(
        project: str, retrieval_id: str, request: Request, caller: Caller
    ) -> dict[str, Any]:
        """Stop: the study being moved finishes, no other is moved (resume takes it up)."""
        await service.check_project(project, caller, request_address(request))
        return await retrievals.set_state(project, retrieval_id, "cancelled")

    @router.post("/ingest/{project}/retrievals/{retrieval_id}/resume")
    async def resume(
        project: str, retrieval_id: str, request: Request, caller: Caller
    ) -> dict[str, Any]:
        await service.check_project(project, caller, request_address(request))
        return await retrievals.set_state(project, retrieval_id, "running")

    return router


class ForwardingIn(BaseModel):
    enabled: bool


def build_forwarding_router(
    service: IngestService, forwarder: Forwarder, current: Any, audit: Auditor
) -> APIRouter:
    router = APIRouter(tags=["forwarding"])
    Caller = Annotated[Principal, Depends(current)]

    @router.get("/ingest/forwarding")
    async def overview(caller: Caller) -> dict[str, Any]:
        """Forwarding to the hub (admin): per project, enabled or not, the backlog, what
        failed and why, the last error and the last success."""
        if not caller.is_admin:
            raise Forbidden("the forwarding overview is for admins; owners see their project's")
        return await forwarder.status()

    @router.get("/ingest/{project}/forwarding")
    async def project_forwarding(project: str, request: Request, caller: Caller) -> dict[str, Any]:
        await service.check_project(project, caller, request_address(request), OWNER)
        return await forwarder.project_status(project)

    @router.put("/ingest/{project}/forwarding")
    async def set_forwarding(
        project: str, data: ForwardingIn, request: Request, caller: Caller
    ) -> dict[str, Any]:
        """Forward the project's archived instances to the hub from now on, or stop (owner).
        409 when this deployment has no hub."""
        await service.check_project(project, caller, request_address(request), OWNER)
        result = await forwarder.set_enabled(project, data.enabled, caller.name)
        await audit.record(
            request,
            "ingest.forwarding",
            project=project,
            target=f"forwarding to {forwarder.hub}",
            detail="enabled" if data.enabled else "disabled",
        )
        return result

    @router.post("/ingest/{project}/forwarding/retry")
    async def retry(project: str, request: Request, caller: Caller) -> dict[str, Any]:
        """Try again what was set aside as failed (owner)."""
        await service.check_project(project, caller, request_address(request), OWNER)
        return await forwarder.retry_failed(project)

    return router
