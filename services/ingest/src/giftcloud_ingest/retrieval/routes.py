"""Remote nodes (admins) and retrievals (a project's writers) over HTTP."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from giftcloud_core.access import Auditor
from giftcloud_core.errors import (
    BadRequest,
    PayloadTooLarge,
)
from giftcloud_core.gates import Gates
from giftcloud_core.tokens import WRITE_ROLES, Principal
from pydantic import BaseModel, Field

from giftcloud_ingest.retrieval.queries import check_query, queries_from_csv
from giftcloud_ingest.retrieval.schemas import RemoteNodeOut, RetrievalStatus, RetrievalSummary
from giftcloud_ingest.retrieval.service import Retrievals


class RemoteNodeIn(BaseModel):
    """A hospital node (a PACS) the site retrieves from and delivers results to: its AE
    title, address, and how many studies it is asked to move at once. To retrieve, it must
    know this node (its AE title, address and port) as a C-FIND/C-MOVE caller and each
    project's AE title as a move destination."""

    ae_title: str = Field(min_length=1, max_length=16, examples=["HOSPITAL_PACS"])
    host: str = Field(min_length=1, max_length=253, examples=["pacs.hospital.local"])
    port: int = Field(ge=1, le=65535, examples=[104])
    tls: bool = False
    max_concurrent: int = Field(default=2, ge=1, le=16)
    #: results delivered to it (results back to the clinic) come with a rendering as
    #: secondary captures, overlay burned in and labelled not for diagnosis: for a PACS
    #: that cannot display a segmentation
    renderings: bool = False


class RetrievalIn(BaseModel):
    """Queries (each a set of keys: PatientID, AccessionNumber, StudyInstanceUID, StudyDate
    as YYYYMMDD or a range, ModalitiesInStudy) sent to a remote node."""

    node: str = Field(min_length=1, max_length=63, examples=["pacs"])
    queries: list[dict[str, str]] = Field(
        min_length=1,
        max_length=10_000,
        examples=[[{"AccessionNumber": "A1001"}, {"PatientID": "P7", "StudyDate": "2020-"}]],
    )


def build_router(retrievals: Retrievals, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(tags=["retrieval"])
    Admin = Annotated[
        Principal, Depends(gates.admin("remote nodes are the site's: an admin sets them"))
    ]
    Writer = Annotated[Principal, Depends(gates.project(WRITE_ROLES))]

    @router.get("/ingest/nodes")
    async def nodes(caller: Admin) -> list[RemoteNodeOut]:
        """The remote nodes (PACS) cohorts are retrieved from (admin)."""
        return [RemoteNodeOut.model_validate(n) for n in await retrievals.nodes()]

    @router.put("/ingest/nodes/{name}")
    async def put_node(
        name: str, data: RemoteNodeIn, request: Request, caller: Admin
    ) -> RemoteNodeOut:
        """Add or change a remote node (admin)."""
        node = await retrievals.put_node(name, data.model_dump(), caller.name)
        await audit.record(
            request, "ingest.node", target=f"node {name}", detail=str(node), outcome="success"
        )
        return RemoteNodeOut.model_validate(node)

    @router.delete("/ingest/nodes/{name}", status_code=204)
    async def delete_node(name: str, request: Request, caller: Admin) -> None:
        await retrievals.delete_node(name)
        await audit.record(request, "ingest.node", target=f"node {name}", detail="removed")

    @router.post("/ingest/{project}/retrievals", status_code=201)
    async def create(project: str, request: Request, caller: Writer) -> RetrievalStatus:
        """Start a retrieval: JSON ``{"node": ..., "queries": [...]}``, or a CSV body
        (``Content-Type: text/csv``, ``?node=``) whose header row names query keys, one
        query a row (a list of accession numbers or patient IDs)."""
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
        return RetrievalStatus.model_validate(status)

    @router.get("/ingest/{project}/retrievals")
    async def list_retrievals(
        project: str, request: Request, caller: Writer
    ) -> list[RetrievalSummary]:
        """The project's latest retrievals (100), newest first."""
        return [RetrievalSummary.model_validate(r) for r in await retrievals.of_project(project)]

    @router.get("/ingest/{project}/retrievals/{retrieval_id}")
    async def status(
        project: str, retrieval_id: str, request: Request, caller: Writer
    ) -> RetrievalStatus:
        """Per query: studies found, instances expected, moved, archived, rejected (with
        reasons) and failed (with the remote node's status)."""
        return RetrievalStatus.model_validate(await retrievals.status(project, retrieval_id))

    @router.post("/ingest/{project}/retrievals/{retrieval_id}/cancel")
    async def cancel(
        project: str, retrieval_id: str, request: Request, caller: Writer
    ) -> RetrievalStatus:
        """Stop: the study being moved finishes, no other is moved (resume takes it up)."""
        return RetrievalStatus.model_validate(
            await retrievals.set_state(project, retrieval_id, "cancelled")
        )

    @router.post("/ingest/{project}/retrievals/{retrieval_id}/resume")
    async def resume(
        project: str, retrieval_id: str, request: Request, caller: Writer
    ) -> RetrievalStatus:
        return RetrievalStatus.model_validate(
            await retrievals.set_state(project, retrieval_id, "running")
        )

    return router
