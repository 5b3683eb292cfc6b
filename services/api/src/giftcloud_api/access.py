"""Who may call api's routes, as FastAPI dependencies: a role on the route's ``{project}``
(404 for an unknown project; the role, the project's networks and the credential's). The
rule itself is the catalogue's (``CatalogueService.check``), the pages use it too."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from giftcloud_core.access import request_address
from giftcloud_core.gates import STEWARD, STEWARDS_ONLY, admin_only, site_role_only
from giftcloud_core.tokens import READ_ROLES, Principal

Gate = Callable[..., Awaitable[Principal]]


class ProjectCheck(Protocol):
    """The rule (giftcloud_api.catalogue.service.CatalogueService.check)."""

    async def check(
        self, project: str, caller: Principal, address: str, roles: frozenset[str] = ...
    ) -> str: ...


@dataclass(frozen=True)
class Gates:
    caller: Gate
    catalogue: ProjectCheck

    def project(self, roles: frozenset[str] = READ_ROLES) -> Callable[..., Awaitable[str]]:
        """The route's project, once the caller may act on it with one of ``roles``."""
        catalogue = self.catalogue

        async def on_project(
            project: str, request: Request, caller: Annotated[Principal, Depends(self.caller)]
        ) -> str:
            await catalogue.check(project, caller, request_address(request), roles)
            return project

        return on_project

    def admin(self, why: str) -> Gate:
        """The caller, an admin of this deployment (403 saying ``why`` otherwise)."""
        return admin_only(self.caller, why)

    def steward(self) -> Gate:
        """The caller, this site's data steward (the site role ``steward``)."""
        return site_role_only(self.caller, STEWARD, STEWARDS_ONLY)
