"""Flower's routes at a site: its admin approves apps by the SHA-256 of their bundle; the
site's gate reads the approvals before it runs anything, and reports each decision to the
site's audit trail (the project's, with the raw and the released values)."""

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from giftcloud_core.access import Auditor
from giftcloud_core.errors import NotFound
from giftcloud_core.tokens import Principal

from giftcloud_api.access import Gates
from giftcloud_api.flower.schemas import (
    DIGEST,
    FlowerAppIn,
    FlowerAppOut,
    FlowerDecisionIn,
    MachineIn,
    MachineOut,
    SpendIn,
    SpendOut,
)
from giftcloud_api.flower.service import FlowerApps

#: how each decision shows in the audit trail's outcome
OUTCOMES: dict[str, Literal["success", "denied", "failure"]] = {
    "run": "success",
    "released": "success",
    "refused": "denied",
    "withheld": "denied",
    "failed": "failure",
}


def build_router(apps: FlowerApps, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(tags=["federation"])
    Admin = Annotated[
        Principal, Depends(gates.admin("a site's Flower apps are approved by its admins"))
    ]
    Caller = Annotated[Principal, Depends(gates.caller)]
    Readable = Annotated[str, Depends(gates.project())]
    Digest = Annotated[str, Path(pattern=DIGEST, description="the FAB's SHA-256, lowercase hex")]

    async def the_gate(caller: Caller) -> Principal:
        await apps.check_gate(caller)
        return caller

    Gate = Annotated[Principal, Depends(the_gate)]

    @router.get("/api/federation/flower/apps")
    async def approved(caller: Caller) -> list[FlowerAppOut]:
        """The Flower apps this site's admin approved (what the site's gate runs; any
        signed-in caller may read the list, the gate with its project key)."""
        return await apps.approved()

    @router.put("/api/federation/flower/apps/{digest}")
    async def approve(
        digest: Digest, body: FlowerAppIn, caller: Admin, request: Request
    ) -> FlowerAppOut:
        """Approve an app: the SHA-256 of the FAB you reviewed (``sha256sum`` of what
        ``flwr build`` made of the reviewed source). Any other bundle is refused."""
        found = await apps.approve(digest, body.name, caller.name)
        await audit.record(
            request, "api.federation.flower.approve", target=body.name, detail=digest
        )
        return found

    @router.delete("/api/federation/flower/apps/{digest}", status_code=204)
    async def revoke(digest: Digest, caller: Admin, request: Request) -> Response:
        await apps.revoke(digest)
        await audit.record(request, "api.federation.flower.revoke", target=digest)
        return Response(status_code=204)

    @router.put("/api/federation/flower/gate")
    async def register_gate(body: MachineIn, caller: Admin, request: Request) -> MachineOut:
        """Register the API key (its id) the site's gate uses: only it reports the gate's
        decisions into the audit trail and spends learning's budget."""
        found = await apps.register_gate(body.client_id, caller.name)
        await audit.record(request, "api.federation.flower.gate", target=body.client_id)
        return found

    @router.get("/api/federation/flower/gate")
    async def gate(caller: Admin) -> MachineOut:
        found = await apps.gate()
        if found is None:
            raise NotFound("no Flower gate is registered at this site")
        return found

    @router.post("/api/projects/{project}/federation/flower/decisions", status_code=204)
    async def decided(
        project: Readable, body: FlowerDecisionIn, gate: Gate, request: Request
    ) -> Response:
        """The site's gate (its registered key) reports a decision about the project's data:
        into the audit trail, the raw values beside the released ones."""
        await audit.record(
            request,
            f"api.federation.flower.{body.decision}",
            project=project,
            target=f"{body.app or 'app'} sha256:{body.digest}" if body.digest else body.app,
            outcome=OUTCOMES[body.decision],
            detail=json.dumps(body.model_dump(mode="json"), separators=(",", ":"))[:8000],
        )
        return Response(status_code=204)

    @router.post("/api/projects/{project}/federation/flower/spend")
    async def spend(project: Readable, body: SpendIn, gate: Gate) -> SpendOut:
        """The site's gate spends a round of learning's epsilon from who asked at the hub,
        under the budget of the site's file: 409 with the reason when it would pass it."""
        return await apps.spend(project, body)

    return router
