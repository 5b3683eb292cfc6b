"""Who may call ingest's routes, as FastAPI dependencies: a role on the route's
``{project}`` (404 for a project this ingest does not know; the role, the project's
networks and the credential's), or the admin site role. Every route declares its gate."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from giftcloud_core.access import authorize, request_address
from giftcloud_core.errors import Forbidden, NotFound
from giftcloud_core.tokens import Principal

from giftcloud_ingest.receiving.service import Receiver

Gate = Callable[..., Awaitable[Principal]]
OWNER = frozenset({"owner"})


@dataclass(frozen=True)
class Gates:
    caller: Gate
    receiver: Receiver

    def project(self, roles: frozenset[str]) -> Gate:
        """The caller, with one of ``roles`` on the route's project."""
        receiver = self.receiver

        async def on_project(
            project: str, request: Request, caller: Annotated[Principal, Depends(self.caller)]
        ) -> Principal:
            networks = await receiver.networks_of(project)
            if networks is None:
                raise NotFound(f"no project {project!r}")
            authorize(caller, project, roles, networks=networks, address=request_address(request))
            return caller

        return on_project

    def admin(self, why: str) -> Gate:
        """The caller, an admin (403 saying ``why`` otherwise)."""

        async def admin(caller: Annotated[Principal, Depends(self.caller)]) -> Principal:
            if not caller.is_admin:
                raise Forbidden(why)
            return caller

        return admin
