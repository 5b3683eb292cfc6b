"""The project's DICOM AE title over HTTP (owners)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from giftcloud_core.access import Auditor
from giftcloud_core.gates import OWNER, Gates
from giftcloud_core.tokens import Principal
from pydantic import BaseModel, Field

from giftcloud_ingest.dimse.routing import DicomRoutes
from giftcloud_ingest.dimse.schemas import DicomRouteOut


class DicomRouteIn(BaseModel):
    """The project's DICOM AE title, and who may send to it (empty lists: anyone)."""

    ae_title: str = Field(min_length=1, max_length=16, examples=["RESEARCH_CT"])
    calling_ae_titles: list[str] = Field(default=[], max_length=256, examples=[["CT_SCANNER1"]])
    networks: list[str] = Field(default=[], max_length=256, examples=[["10.20.0.0/16"]])


def build_router(routes: DicomRoutes, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(tags=["DICOM node"])
    Owner = Annotated[Principal, Depends(gates.project(OWNER))]

    @router.get("/ingest/{project}/dicom")
    async def dicom_route(project: str, caller: Owner) -> DicomRouteOut:
        """The project's DICOM AE title: modalities and PACS send to it by C-STORE."""
        return DicomRouteOut.model_validate((await routes.get(project)).public())

    @router.put("/ingest/{project}/dicom")
    async def set_dicom_route(
        project: str, data: DicomRouteIn, request: Request, caller: Owner
    ) -> DicomRouteOut:
        """Route associations called ``ae_title`` into the project (owner): from the calling
        AE titles and source networks (CIDR) listed, or from anyone when a list is empty.
        409 when another project has the AE title."""
        route = await routes.put(
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
        return DicomRouteOut.model_validate(route.public())

    @router.delete("/ingest/{project}/dicom", status_code=204)
    async def delete_dicom_route(project: str, request: Request, caller: Owner) -> None:
        """Stop routing the project's AE title: associations to it are rejected from now."""
        await routes.delete(project)
        await audit.record(
            request,
            "ingest.dicom_route",
            project=project,
            target="AE title",
            outcome="success",
            detail="removed",
        )

    return router
