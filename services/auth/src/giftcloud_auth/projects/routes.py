"""Projects, members and networks over HTTP."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from giftcloud_core.access import request_address
from giftcloud_core.errors import Forbidden
from giftcloud_core.tokens import READ_ROLES, Principal

from giftcloud_auth.access import OWNER, Gates
from giftcloud_auth.projects.service import Projects
from giftcloud_auth.schemas import (
    MemberAdd,
    MemberPublic,
    Networks,
    ProjectCreate,
    ProjectPublic,
    ProjectUpdate,
)


def build_router(projects: Projects, gates: Gates) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["projects"])
    Caller = Annotated[Principal, Depends(gates.caller)]
    Admin = Annotated[Principal, Depends(gates.admin)]
    Reader = Annotated[Principal, Depends(gates.project(READ_ROLES))]
    Owner = Annotated[Principal, Depends(gates.project(OWNER))]
    OwnerInPerson = Annotated[Principal, Depends(gates.project(OWNER, person=True))]

    @router.post("/projects", response_model=ProjectPublic, status_code=status.HTTP_201_CREATED)
    async def create_project(
        data: ProjectCreate, request: Request, caller: Caller
    ) -> ProjectPublic:
        """A new project, owned by its maker (admins and the creator site role)."""
        if not caller.may_create_projects:
            raise Forbidden("creating a project needs the admin or creator site role")
        return await projects.create(data, caller, request_address(request))

    @router.get("/projects", response_model=list[ProjectPublic])
    async def list_projects(caller: Caller) -> list[ProjectPublic]:
        return await projects.of(caller)

    @router.get("/projects/{project}", response_model=ProjectPublic)
    async def get_project(project: str, caller: Reader) -> ProjectPublic:
        found = await projects.get(project)
        return ProjectPublic(name=found.name, title=found.title, role=caller.role_on(project))

    @router.patch("/projects/{project}", response_model=ProjectPublic)
    async def update_project(
        project: str, data: ProjectUpdate, request: Request, caller: Owner
    ) -> ProjectPublic:
        return await projects.update(project, data.title, caller, request_address(request))

    @router.get("/projects/{project}/members", response_model=list[MemberPublic])
    async def members(project: str, caller: Owner) -> list[MemberPublic]:
        return await projects.members(project)

    @router.put("/projects/{project}/members", status_code=status.HTTP_204_NO_CONTENT)
    async def set_member(
        project: str, data: MemberAdd, request: Request, caller: OwnerInPerson
    ) -> None:
        """Give a user a role on the project. The answer is the same whether or not the
        account exists (no one learns account names this way); the members list shows it."""
        await projects.set_member(project, data, caller, request_address(request))

    @router.delete("/projects/{project}/members/{username}", status_code=status.HTTP_204_NO_CONTENT)
    async def remove_member(
        project: str, username: str, request: Request, caller: OwnerInPerson
    ) -> None:
        """Take a user's role away: their tokens are refused at once."""
        await projects.remove_member(project, username, caller, request_address(request))

    @router.get("/projects/{project}/networks", response_model=Networks)
    async def project_networks(project: str, caller: Owner) -> Networks:
        """The networks the project's data may be reached from (null: the site's default)."""
        own, _ = await projects.networks(project)
        return Networks(networks=own)

    @router.put("/projects/{project}/networks", response_model=Networks)
    async def set_project_networks(
        project: str, data: Networks, request: Request, caller: OwnerInPerson
    ) -> Networks:
        """Set the project's allow-list of CIDRs (empty: anywhere; null: the site's default)."""
        await projects.set_networks(project, data.networks, caller, request_address(request))
        own, _ = await projects.networks(project)
        return Networks(networks=own)

    @router.get("/networks", response_model=Networks)
    async def site_networks(caller: Admin) -> Networks:
        """The site's default allow-list, for projects without their own."""
        return Networks(networks=await projects.site_networks())

    @router.put("/networks", response_model=Networks)
    async def set_site_networks(data: Networks, request: Request, caller: Admin) -> Networks:
        await projects.set_site_networks(data.networks or [], caller, request_address(request))
        return Networks(networks=await projects.site_networks())

    return router
