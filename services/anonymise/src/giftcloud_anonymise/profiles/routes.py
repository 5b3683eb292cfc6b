"""A project's de-identification profile: read by its members, chosen by its owners
(options, burned-in attestations); every choice is in the audit trail."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from giftcloud_core.access import Auditor
from giftcloud_core.gates import OWNER, Gates
from giftcloud_core.tokens import READ_ROLES, Principal

from giftcloud_anonymise.profiles.schemas import ProfileChoice, ProfileState
from giftcloud_anonymise.profiles.service import ProjectProfiles


def build_router(profiles: ProjectProfiles, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(prefix="/anonymise/projects/{project}", tags=["anonymise"])
    Reader = Annotated[Principal, Depends(gates.project(READ_ROLES))]
    Owner = Annotated[Principal, Depends(gates.project(OWNER))]

    @router.get("/profile")
    async def read_profile(project: str, caller: Reader) -> ProfileState:
        """The profile the project's instances are de-identified with, option by option."""
        await profiles.refresh()
        return profiles.state(project)

    @router.put("/profile")
    async def choose_profile(
        project: str, choice: ProfileChoice, request: Request, caller: Owner
    ) -> ProfileState:
        """An owner's choice of options and attestations (owners only; audited). It applies
        to instances that arrive from now on."""
        state, changes = await profiles.choose(project, caller.name, choice)
        await audit.record(
            request,
            "anonymise.profile",
            project=project,
            target=f"profile of {project}",
            detail=f"{changes} (now {state.description})",
        )
        return state

    return router
