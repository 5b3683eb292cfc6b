"""Forwarding over HTTP: the overview (admins), a project's (owners)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from giftcloud_core.access import Auditor
from giftcloud_core.gates import OWNER, Gates
from giftcloud_core.tokens import Principal
from pydantic import BaseModel

from giftcloud_ingest.forwarding.schemas import ForwardingOverview, ProjectForwarding
from giftcloud_ingest.forwarding.service import Forwarding


class ForwardingIn(BaseModel):
    enabled: bool


def build_router(forwarding: Forwarding, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(tags=["forwarding"])
    Admin = Annotated[
        Principal,
        Depends(gates.admin("the forwarding overview is for admins; owners see their project's")),
    ]
    Owner = Annotated[Principal, Depends(gates.project(OWNER))]

    @router.get("/ingest/forwarding")
    async def overview(caller: Admin) -> ForwardingOverview:
        """Forwarding to the hub (admin): per project, enabled or not, the backlog, what
        failed and why, the last error and the last success."""
        return ForwardingOverview.model_validate(await forwarding.status())

    @router.get("/ingest/{project}/forwarding")
    async def project_forwarding(
        project: str, request: Request, caller: Owner
    ) -> ProjectForwarding:
        return ProjectForwarding.model_validate(await forwarding.project_status(project))

    @router.put("/ingest/{project}/forwarding")
    async def set_forwarding(
        project: str, data: ForwardingIn, request: Request, caller: Owner
    ) -> ProjectForwarding:
        """Forward the project's archived instances to the hub from now on, or stop (owner).
        409 when this deployment has no hub."""
        result = await forwarding.set_enabled(project, data.enabled, caller.name)
        await audit.record(
            request,
            "ingest.forwarding",
            project=project,
            target=f"forwarding to {forwarding.hub.url}",
            detail="enabled" if data.enabled else "disabled",
        )
        return ProjectForwarding.model_validate(result)

    @router.post("/ingest/{project}/forwarding/retry")
    async def retry(project: str, request: Request, caller: Owner) -> ProjectForwarding:
        """Try again what was set aside as failed (owner)."""
        return ProjectForwarding.model_validate(await forwarding.retry_failed(project))

    return router
