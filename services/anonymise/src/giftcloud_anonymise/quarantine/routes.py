"""A project's quarantine: listed to its owners, released or deleted by them (audited)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from giftcloud_core.access import Auditor
from giftcloud_core.gates import OWNER, Gates
from giftcloud_core.tokens import Principal

from giftcloud_anonymise.quarantine.schemas import Chosen, Cleared, Described, Held
from giftcloud_anonymise.quarantine.service import Quarantine


def build_router(quarantine: Quarantine, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(prefix="/anonymise/projects/{project}/quarantine", tags=["anonymise"])
    Owner = Annotated[Principal, Depends(gates.project(OWNER))]

    @router.get("")
    async def held(project: str, caller: Owner) -> list[Held]:
        """What de-identification refused in the project, oldest first, with the reason
        (owners only: these files still carry the patient's identity)."""
        return await quarantine.held(project)

    @router.get("/{key:path}")
    async def described(project: str, key: str, caller: Owner) -> Described:
        """The kind of image a held instance is (modality, class, maker, what it says of
        burned-in text), and nothing of the patient."""
        return await quarantine.described(project, key)

    @router.post("/release")
    async def release(project: str, chosen: Chosen, request: Request, caller: Owner) -> Cleared:
        """Process the chosen instances again, under the project's rules of now: each ends
        archived (its upload says so) or back here with the reason of now."""
        keys = await quarantine.release(project, chosen.keys, caller.name)
        await _audited(request, audit, project, "anonymise.quarantine.release", keys)
        return Cleared(how="released", keys=keys)

    @router.post("/delete")
    async def delete(project: str, chosen: Chosen, request: Request, caller: Owner) -> Cleared:
        """Delete the chosen instances for good (their uploads keep the rejection)."""
        keys = await quarantine.delete(project, chosen.keys, caller.name)
        await _audited(request, audit, project, "anonymise.quarantine.delete", keys)
        return Cleared(how="deleted", keys=keys)

    return router


async def _audited(
    request: Request, audit: Auditor, project: str, action: str, keys: list[str]
) -> None:
    await audit.record(
        request,
        action,
        project=project,
        target=keys[0] if len(keys) == 1 else f"{len(keys)} quarantined instances",
        detail=", ".join(keys[:20]) + (" …" if len(keys) > 20 else ""),
    )
