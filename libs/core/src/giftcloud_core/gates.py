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
from giftcloud_core.tokens import WRITE_ROLES, Principal

Gate = Callable[..., Awaitable[Principal]]
#: the networks a project's data may be reached from ([] anywhere), None for one not known
NetworksOf = Callable[[str], Awaitable[list[str] | None]]
OWNER = frozenset({"owner"})
#: the site role that restores identity: reads the vault, reviews results back from the hub
REVIEWER = "reidentifier"
REVIEWERS_ONLY = (
    f"results are reviewed by a {REVIEWER} (a site role an admin gives) with a role that"
    " writes to the project"
)
#: the site role that releases what a federated job's algorithm gave at this site
STEWARD = "steward"
STEWARDS_ONLY = (
    f"a job's output is released or withheld by this site's data {STEWARD} (a site role an"
    " admin gives)"
)


def reviews_results(caller: Principal, project: str) -> bool:
    """Who approves a project's results back from the hub for the hospital: the reviewer
    site role and a role that writes to the project (never a collaborator). The gate
    (:meth:`Gates.reviewer`) and the pages ask this one rule."""
    return REVIEWER in caller.site_roles and caller.role_on(project) in WRITE_ROLES


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

    def reviewer(self) -> Gate:
        """The caller, who reviews the project's results back from the hub
        (:func:`reviews_results`; 403 saying so otherwise)."""
        on_project = self.project(WRITE_ROLES)

        async def reviewer(
            project: str, caller: Annotated[Principal, Depends(on_project)]
        ) -> Principal:
            if not reviews_results(caller, project):
                raise Forbidden(REVIEWERS_ONLY)
            return caller

        return reviewer

    def admin(self, why: str) -> Gate:
        """The caller, an admin (403 saying ``why`` otherwise)."""
        return admin_only(self.caller, why)


def admin_only(caller: Gate, why: str) -> Gate:
    """``caller``'s principal, an admin (403 saying ``why`` otherwise): every service's
    admin-only routes ask this."""

    async def admin(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if not principal.is_admin:
            raise Forbidden(why)
        return principal

    return admin


def site_role_only(caller: Gate, role: str, why: str) -> Gate:
    """``caller``'s principal, holding the site role ``role`` (403 saying ``why`` otherwise)."""

    async def holder(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if role not in principal.site_roles:
            raise Forbidden(why)
        return principal

    return holder
