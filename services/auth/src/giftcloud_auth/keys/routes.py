"""API keys (per project) and OAuth2 clients (admins) over HTTP; a secret is shown once."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from giftcloud_core.access import request_address
from giftcloud_core.tokens import READ_ROLES, Principal

from giftcloud_auth.access import Gates
from giftcloud_auth.keys.service import Keys
from giftcloud_auth.schemas import ClientCreate, KeyCreate, KeyCreated, KeyPublic


def build_router(keys: Keys, gates: Gates) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["keys"])
    Admin = Annotated[Principal, Depends(gates.admin)]
    Reader = Annotated[Principal, Depends(gates.project(READ_ROLES))]
    ReaderInPerson = Annotated[Principal, Depends(gates.project(READ_ROLES, person=True))]

    @router.post(
        "/projects/{project}/keys", response_model=KeyCreated, status_code=status.HTTP_201_CREATED
    )
    async def create_key(
        project: str, data: KeyCreate, request: Request, caller: ReaderInPerson
    ) -> KeyCreated:
        """An API key for the project with a role no higher than yours: shown once."""
        return await keys.create_key(project, data, caller, request_address(request))

    @router.get("/projects/{project}/keys", response_model=list[KeyPublic])
    async def project_keys(project: str, caller: Reader) -> list[KeyPublic]:
        """The project's keys (owners see all, others their own); never their secrets."""
        return await keys.listed(project, caller)

    @router.delete("/projects/{project}/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def revoke_key(project: str, key_id: str, request: Request, caller: Reader) -> None:
        await keys.revoke(key_id, project, caller, request_address(request))

    @router.post("/clients", response_model=KeyCreated, status_code=status.HTTP_201_CREATED)
    async def create_client(data: ClientCreate, request: Request, caller: Admin) -> KeyCreated:
        """OAuth2 client credentials for a site's forwarder or a pipeline: shown once."""
        return await keys.create_client(data, caller, request_address(request))

    @router.get("/clients", response_model=list[KeyPublic])
    async def clients(caller: Admin) -> list[KeyPublic]:
        return await keys.listed(None, caller)

    @router.delete("/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def revoke_client(client_id: str, request: Request, caller: Admin) -> None:
        await keys.revoke(client_id, None, caller, request_address(request))

    return router
