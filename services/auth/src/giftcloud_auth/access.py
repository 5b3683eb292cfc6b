"""Who may call auth's routes, as FastAPI dependencies: a caller (any valid credential), an
admin, a person (never a key: what changes who may do what is done by someone signed in),
and a role on the route's ``{project}`` (404 for an unknown project; the role; and but for
admins, the project's networks). Every route declares its gate; none checks by hand."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from giftcloud_core.access import authorize, request_address
from giftcloud_core.errors import Forbidden, NotFound
from giftcloud_core.tokens import Principal

Gate = Callable[..., Awaitable[Principal]]
OWNER = frozenset({"owner"})


class ProjectLookup(Protocol):
    """What a gate asks of the projects (giftcloud_auth.projects.service.Projects)."""

    async def exists(self, project: str) -> bool: ...

    async def networks(self, project: str) -> tuple[list[str] | None, list[str]]: ...


@dataclass(frozen=True)
class Gates:
    caller: Gate
    admin: Gate
    person: Gate
    projects: ProjectLookup

    def project(self, roles: frozenset[str], *, person: bool = False) -> Gate:
        """The caller, with one of ``roles`` on the route's project (and a person, when
        ``person``)."""
        who = self.person if person else self.caller

        async def on_project(
            project: str, request: Request, caller: Annotated[Principal, Depends(who)]
        ) -> Principal:
            await self.admit(project, caller, request, roles)
            return caller

        return on_project

    async def admit(
        self, project: str, caller: Principal, request: Request, roles: frozenset[str]
    ) -> None:
        """The rule behind every project gate (also for a project named in a body)."""
        if not await self.projects.exists(project):
            raise NotFound(f"no project {project!r}")
        allowed: list[str] = []
        if not caller.is_admin:  # an admin can always mend a project's settings
            own, default = await self.projects.networks(project)
            allowed = own if own is not None else default
        authorize(caller, project, roles, networks=allowed, address=request_address(request))


def gates(current: Gate, projects: ProjectLookup) -> Gates:
    async def admin(caller: Annotated[Principal, Depends(current)]) -> Principal:
        if not caller.is_admin:
            raise Forbidden("this needs the admin site role")
        return caller

    async def person(caller: Annotated[Principal, Depends(current)]) -> Principal:
        if caller.kind != "user":
            raise Forbidden("a key cannot do this: sign in as a person")
        return caller

    return Gates(caller=current, admin=admin, person=person, projects=projects)
