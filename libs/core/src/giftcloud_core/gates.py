"""Who may call a service's routes, as FastAPI dependencies: a role on the route's
``{project}`` (404 for a project the service does not know; the role, the project's
networks and the credential's), or the admin site role. Every route declares its gate;
each service says where it keeps the projects it knows (``networks_of``)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from giftcloud_core.access import authorize, request_address
from giftcloud_core.errors import Forbidden, NotFound
from giftcloud_core.tokens import Principal

Gate = Callable[..., Awaitable[Principal]]
#: the networks a project's data may be reached from ([] anywhere), None for one not known
NetworksOf = Callable[[str], Awaitable[list[str] | None]]
OWNER = frozenset({"owner"})


@dataclass(frozen=True)
class Gates:
    caller: Gate
    networks_of: NetworksOf

    def project(self, roles: frozenset[str]) -> Gate:
        """The caller, with one of ``roles`` on the route's project."""
        networks_of = self.networks_of

        async def on_project(
            project: str, request: Request, caller: Annotated[Principal, Depends(self.caller)]
        ) -> Principal:
            networks = await networks_of(project)
            if networks is None:
                raise NotFound(f"no project {project!r}")
            authorize(caller, project, roles, networks=networks, address=request_address(request))
            return caller

        return on_project

    def project_and_site(self, roles: frozenset[str], site_role: str, why: str) -> Gate:
        """The caller, with one of ``roles`` on the route's project and ``site_role`` at this
        site (403 saying ``why`` without it)."""
        on_project = self.project(roles)

        async def with_site_role(caller: Annotated[Principal, Depends(on_project)]) -> Principal:
            if site_role not in caller.site_roles:
                raise Forbidden(why)
            return caller

        return with_site_role

    def admin(self, why: str) -> Gate:
        """The caller, an admin (403 saying ``why`` otherwise)."""

        async def admin(caller: Annotated[Principal, Depends(self.caller)]) -> Principal:
            if not caller.is_admin:
                raise Forbidden(why)
            return caller

        return admin
