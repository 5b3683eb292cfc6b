from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, status
from giftcloud_core.errors import BadRequest, Forbidden, NotFound
from giftcloud_core.tokens import Principal

from giftcloud_auth.schemas import (
    MemberAdd,
    ProjectCreate,
    ProjectPublic,
    TokenResponse,
    UserCreate,
    UserPublic,
)
from giftcloud_auth.service import AuthService


def build_router(service: AuthService, current: Any) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["auth"])
    Caller = Annotated[Principal, Depends(current)]

    @router.post("/token", response_model=TokenResponse)
    async def token(
        username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> TokenResponse:
        """OAuth2 password grant: a short-lived access token."""
        if "\x00" in username or "\x00" in password:
            raise BadRequest("the username or password holds a NUL byte")
        access, lifetime = await service.issue_token(username, password)
        return TokenResponse(access_token=access, expires_in=lifetime)

    @router.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        return service.signer.jwks()

    @router.get("/me", response_model=UserPublic)
    async def me(caller: Caller) -> UserPublic:
        return UserPublic(username=caller.subject, site_roles=sorted(caller.site_roles))

    @router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
    async def create_user(data: UserCreate, caller: Caller) -> UserPublic:
        if not caller.is_admin:
            raise Forbidden("only a site admin creates users")
        return await service.create_user(data)

    @router.post("/projects", response_model=ProjectPublic, status_code=status.HTTP_201_CREATED)
    async def create_project(data: ProjectCreate, caller: Caller) -> ProjectPublic:
        if not (caller.is_admin or "creator" in caller.site_roles):
            raise Forbidden("creating a project needs the admin or creator site role")
        return await service.create_project(data, caller)

    @router.get("/projects", response_model=list[ProjectPublic])
    async def list_projects(caller: Caller) -> list[ProjectPublic]:
        return await service.projects_of(caller)

    @router.put("/projects/{project}/members", status_code=status.HTTP_204_NO_CONTENT)
    async def add_member(project: str, data: MemberAdd, caller: Caller) -> None:
        """Give a user a role on the project. The answer is the same whether or not the
        account exists (no one learns account names this way); the members list shows it."""
        if not await service.project_exists(project):
            raise NotFound(f"no project {project!r}")
        caller.require(project, frozenset({"owner"}))
        await service.add_member(project, data)

    return router
