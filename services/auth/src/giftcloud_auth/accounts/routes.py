"""Accounts over HTTP: the caller, their password, one-time links, and the admins' list."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from giftcloud_core.access import request_address
from giftcloud_core.tokens import Principal

from giftcloud_auth.access import OWNER, Gates
from giftcloud_auth.accounts.links import Links
from giftcloud_auth.accounts.service import Accounts
from giftcloud_auth.schemas import (
    InviteAccept,
    InviteCreate,
    Me,
    OneTimeLinkPublic,
    PasswordChange,
    PasswordReset,
    UserCreate,
    UserPublic,
    UserUpdate,
)


def build_router(accounts: Accounts, links: Links, gates: Gates) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["accounts"])
    Caller = Annotated[Principal, Depends(gates.caller)]
    Admin = Annotated[Principal, Depends(gates.admin)]
    Person = Annotated[Principal, Depends(gates.person)]

    @router.get("/me", response_model=Me)
    async def me(caller: Caller) -> Me:
        return Me(
            username=caller.subject,
            kind=caller.kind,
            site_roles=sorted(caller.site_roles),
            projects=dict(caller.projects),
        )

    @router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
    async def change_password(data: PasswordChange, request: Request, caller: Person) -> None:
        """Change your own password; every other sign-in of yours ends."""
        await accounts.change_password(
            caller, data.current_password, data.new_password, request_address(request)
        )

    @router.post("/password-reset", status_code=status.HTTP_204_NO_CONTENT)
    async def reset_password(data: PasswordReset, request: Request) -> None:
        """Set a new password with a reset link's token (once, before it expires)."""
        await links.reset_password(data.token, data.new_password, request_address(request))

    @router.post("/invites/accept", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
    async def accept_invite(data: InviteAccept, request: Request) -> UserPublic:
        """Make your account with an invitation's token (once, before it expires)."""
        return await links.accept_invite(data, request_address(request))

    @router.post("/invites", response_model=OneTimeLinkPublic, status_code=status.HTTP_201_CREATED)
    async def invite(data: InviteCreate, request: Request, caller: Person) -> OneTimeLinkPublic:
        """An invitation link: to a project (its owners), or to the site (admins)."""
        if data.project is not None:
            await gates.admit(data.project, caller, request, OWNER)
        return await links.invite(data, caller, request_address(request))

    @router.get("/users", response_model=list[UserPublic])
    async def users(caller: Admin) -> list[UserPublic]:
        return await accounts.listed()

    @router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
    async def create_user(data: UserCreate, request: Request, caller: Admin) -> UserPublic:
        """An account; without a password it signs in after a reset link, or by SSO."""
        return await accounts.create(data, caller, request_address(request))

    @router.patch("/users/{username}", response_model=UserPublic)
    async def update_user(
        username: str, data: UserUpdate, request: Request, caller: Admin
    ) -> UserPublic:
        """Disable (at once: no refresh, no keys) or enable an account, set its site roles."""
        return await accounts.update(username, data, caller, request_address(request))

    @router.delete("/users/{username}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_user(username: str, request: Request, caller: Admin) -> None:
        """Delete an account: its memberships and sessions go, its keys are revoked."""
        await accounts.delete(username, caller, request_address(request))

    @router.post("/users/{username}/password-reset", response_model=OneTimeLinkPublic)
    async def reset_link(username: str, request: Request, caller: Admin) -> OneTimeLinkPublic:
        """A one-time link with which the user sets a new password."""
        return await links.reset_link(username, caller, request_address(request))

    @router.post("/users/{username}/unlock", status_code=status.HTTP_204_NO_CONTENT)
    async def unlock(username: str, request: Request, caller: Admin) -> None:
        """Lift a lockout after too many failed sign-ins."""
        await accounts.unlock(username, caller, request_address(request))

    return router
