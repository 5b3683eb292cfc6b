"""auth's HTTP interface: tokens (OAuth2), accounts, projects, members, networks, keys."""

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.security import HTTPBasic
from giftcloud_core.access import authorize, request_address
from giftcloud_core.errors import BadRequest, Forbidden, NotFound
from giftcloud_core.tokens import READ_ROLES, Principal

from giftcloud_auth.schemas import (
    ClientCreate,
    InviteAccept,
    InviteCreate,
    KeyCreate,
    KeyCreated,
    KeyPublic,
    Me,
    MemberAdd,
    MemberPublic,
    Networks,
    OneTimeLinkPublic,
    PasswordChange,
    PasswordReset,
    ProjectCreate,
    ProjectPublic,
    ProjectUpdate,
    RefreshTokenBody,
    TokenResponse,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from giftcloud_auth.service import AuthService

OWNER = frozenset({"owner"})
_basic = HTTPBasic(auto_error=False)


def _no_nul(**fields: str | None) -> None:
    for name, value in fields.items():
        if value is not None and "\x00" in value:
            raise BadRequest(f"the {name} holds a NUL byte")


def _client_from_basic(header: str) -> tuple[str, str] | None:
    """client_id and secret from ``Authorization: Basic`` (RFC 6749 §2.3.1)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("malformed Basic credentials") from None
    return client_id, secret


def build_router(service: AuthService, current: Any) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["auth"])
    Caller = Annotated[Principal, Depends(current)]

    async def admin(caller: Caller) -> Principal:
        if not caller.is_admin:
            raise Forbidden("this needs the admin site role")
        return caller

    Admin = Annotated[Principal, Depends(admin)]

    async def person(caller: Caller) -> Principal:
        """A person, not a key: what changes who may do what (members, networks, keys,
        invitations, passwords) is done by someone signed in, never by a key."""
        if caller.kind != "user":
            raise Forbidden("a key cannot do this: sign in as a person")
        return caller

    Person = Annotated[Principal, Depends(person)]

    async def in_project(
        project: str, caller: Principal, request: Request, roles: frozenset[str]
    ) -> None:
        """404 for an unknown project; the role and (but for admins) the project's networks."""
        if not await service.project_exists(project):
            raise NotFound(f"no project {project!r}")
        networks: list[str] = []
        if not caller.is_admin:  # an admin can always mend a project's settings
            own, default = await service.project_networks(project)
            networks = own if own is not None else default
        authorize(caller, project, roles, networks=networks, address=request_address(request))

    # --- tokens -----------------------------------------------------------------------

    @router.post("/token", response_model=TokenResponse, response_model_exclude_none=True)
    async def token(
        request: Request,
        grant_type: Annotated[str, Form(max_length=64)] = "password",
        username: Annotated[str | None, Form(max_length=256)] = None,
        password: Annotated[str | None, Form(max_length=1024)] = None,
        refresh_token: Annotated[str | None, Form(max_length=200)] = None,
        client_id: Annotated[str | None, Form(max_length=64)] = None,
        client_secret: Annotated[str | None, Form(max_length=200)] = None,
    ) -> TokenResponse:
        """OAuth2 token endpoint: grant types ``password`` (with a refresh token),
        ``refresh_token`` (rotating: each is used once) and ``client_credentials`` (API keys
        and site clients; the secret in the form or as HTTP Basic)."""
        _no_nul(
            username=username,
            password=password,
            refresh_token=refresh_token,
            client_id=client_id,
            client_secret=client_secret,
        )
        address = request_address(request)
        if grant_type == "password":
            if username is None or password is None:
                raise BadRequest("the password grant needs a username and a password")
            return await service.password_grant(username, password, address)
        if grant_type == "refresh_token":
            if refresh_token is None:
                raise BadRequest("the refresh_token grant needs a refresh_token")
            return await service.refresh_grant(refresh_token, address)
        if grant_type == "client_credentials":
            basic = _client_from_basic(request.headers.get("authorization", ""))
            if basic is not None:
                client_id, client_secret = basic
            if not client_id or not client_secret:
                raise BadRequest("the client_credentials grant needs a client_id and client_secret")
            return await service.client_grant(client_id, client_secret, address)
        raise BadRequest(
            f"unsupported grant_type {grant_type[:40]!r}: use password, refresh_token or"
            " client_credentials"
        )

    @router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
    async def logout(data: RefreshTokenBody, request: Request) -> None:
        """Sign out: the refresh token and every token of its sign-in stop working."""
        await service.sign_out(data.refresh_token, request_address(request))

    @router.get("/internal/revocations", include_in_schema=False)
    async def revocations(request: Request) -> dict[str, Any]:
        """For the services, directly (never through a proxy): whose tokens are revoked."""
        if any(h in request.headers for h in ("x-forwarded-for", "forwarded", "x-real-ip")):
            raise NotFound("Not Found")
        return {"revoked": await service.revocations()}

    @router.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        """The public keys that verify access tokens (every service checks tokens locally)."""
        return service.jwks()

    # --- the caller -------------------------------------------------------------------

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
        await service.change_password(
            caller, data.current_password, data.new_password, request_address(request)
        )

    @router.post("/password-reset", status_code=status.HTTP_204_NO_CONTENT)
    async def reset_password(data: PasswordReset, request: Request) -> None:
        """Set a new password with a reset link's token (once, before it expires)."""
        await service.reset_password(data.token, data.new_password, request_address(request))

    @router.post("/invites/accept", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
    async def accept_invite(data: InviteAccept, request: Request) -> UserPublic:
        """Make your account with an invitation's token (once, before it expires)."""
        return await service.accept_invite(data, request_address(request))

    @router.post("/invites", response_model=OneTimeLinkPublic, status_code=status.HTTP_201_CREATED)
    async def invite(data: InviteCreate, request: Request, caller: Person) -> OneTimeLinkPublic:
        """An invitation link: to a project (its owners), or to the site (admins)."""
        if data.project is not None:
            await in_project(data.project, caller, request, OWNER)
        return await service.invite(data, caller, request_address(request))

    # --- accounts (admins) ------------------------------------------------------------

    @router.get("/users", response_model=list[UserPublic])
    async def users(caller: Admin) -> list[UserPublic]:
        return await service.list_users()

    @router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
    async def create_user(data: UserCreate, request: Request, caller: Admin) -> UserPublic:
        """An account; without a password it signs in after a reset link, or by SSO."""
        return await service.create_user(data, caller, request_address(request))

    @router.patch("/users/{username}", response_model=UserPublic)
    async def update_user(
        username: str, data: UserUpdate, request: Request, caller: Admin
    ) -> UserPublic:
        """Disable (at once: no refresh, no keys) or enable an account, set its site roles."""
        return await service.update_user(username, data, caller, request_address(request))

    @router.delete("/users/{username}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_user(username: str, request: Request, caller: Admin) -> None:
        """Delete an account: its memberships and sessions go, its keys are revoked."""
        await service.delete_user(username, caller, request_address(request))

    @router.post("/users/{username}/password-reset", response_model=OneTimeLinkPublic)
    async def reset_link(username: str, request: Request, caller: Admin) -> OneTimeLinkPublic:
        """A one-time link with which the user sets a new password."""
        return await service.reset_link(username, caller, request_address(request))

    @router.post("/users/{username}/unlock", status_code=status.HTTP_204_NO_CONTENT)
    async def unlock(username: str, request: Request, caller: Admin) -> None:
        """Lift a lockout after too many failed sign-ins."""
        await service.unlock(username, caller, request_address(request))

    # --- projects ---------------------------------------------------------------------

    @router.post("/projects", response_model=ProjectPublic, status_code=status.HTTP_201_CREATED)
    async def create_project(
        data: ProjectCreate, request: Request, caller: Caller
    ) -> ProjectPublic:
        """A new project, owned by its maker (admins and the creator site role)."""
        if not caller.may_create_projects:
            raise Forbidden("creating a project needs the admin or creator site role")
        return await service.create_project(data, caller, request_address(request))

    @router.get("/projects", response_model=list[ProjectPublic])
    async def list_projects(caller: Caller) -> list[ProjectPublic]:
        return await service.projects_of(caller)

    @router.get("/projects/{project}", response_model=ProjectPublic)
    async def get_project(project: str, request: Request, caller: Caller) -> ProjectPublic:
        await in_project(project, caller, request, READ_ROLES)
        found = await service.project(project)
        return ProjectPublic(name=found.name, title=found.title, role=caller.role_on(project))

    @router.patch("/projects/{project}", response_model=ProjectPublic)
    async def update_project(
        project: str, data: ProjectUpdate, request: Request, caller: Caller
    ) -> ProjectPublic:
        await in_project(project, caller, request, OWNER)
        return await service.update_project(project, data.title, caller, request_address(request))

    @router.get("/projects/{project}/members", response_model=list[MemberPublic])
    async def members(project: str, request: Request, caller: Caller) -> list[MemberPublic]:
        await in_project(project, caller, request, OWNER)
        return await service.members(project)

    @router.put("/projects/{project}/members", status_code=status.HTTP_204_NO_CONTENT)
    async def set_member(project: str, data: MemberAdd, request: Request, caller: Person) -> None:
        """Give a user a role on the project. The answer is the same whether or not the
        account exists (no one learns account names this way); the members list shows it."""
        await in_project(project, caller, request, OWNER)
        await service.set_member(project, data, caller, request_address(request))

    @router.delete("/projects/{project}/members/{username}", status_code=status.HTTP_204_NO_CONTENT)
    async def remove_member(project: str, username: str, request: Request, caller: Person) -> None:
        """Take a user's role away: their next token (at most 15 minutes away) lacks it."""
        await in_project(project, caller, request, OWNER)
        await service.remove_member(project, username, caller, request_address(request))

    @router.get("/projects/{project}/networks", response_model=Networks)
    async def project_networks(project: str, request: Request, caller: Caller) -> Networks:
        """The networks the project's data may be reached from (null: the site's default)."""
        await in_project(project, caller, request, OWNER)
        own, _ = await service.project_networks(project)
        return Networks(networks=own)

    @router.put("/projects/{project}/networks", response_model=Networks)
    async def set_project_networks(
        project: str, data: Networks, request: Request, caller: Person
    ) -> Networks:
        """Set the project's allow-list of CIDRs (empty: anywhere; null: the site's default)."""
        await in_project(project, caller, request, OWNER)
        await service.set_project_networks(project, data.networks, caller, request_address(request))
        own, _ = await service.project_networks(project)
        return Networks(networks=own)

    @router.get("/networks", response_model=Networks)
    async def site_networks(caller: Admin) -> Networks:
        """The site's default allow-list, for projects without their own."""
        return Networks(networks=await service.site_networks())

    @router.put("/networks", response_model=Networks)
    async def set_site_networks(data: Networks, request: Request, caller: Admin) -> Networks:
        await service.set_site_networks(data.networks or [], caller, request_address(request))
        return Networks(networks=await service.site_networks())

    # --- machine credentials ----------------------------------------------------------

    @router.post(
        "/projects/{project}/keys", response_model=KeyCreated, status_code=status.HTTP_201_CREATED
    )
    async def create_key(
        project: str, data: KeyCreate, request: Request, caller: Person
    ) -> KeyCreated:
        """An API key for the project with a role no higher than yours: shown once."""
        await in_project(project, caller, request, READ_ROLES)
        return await service.create_key(project, data, caller, request_address(request))

    @router.get("/projects/{project}/keys", response_model=list[KeyPublic])
    async def project_keys(project: str, request: Request, caller: Caller) -> list[KeyPublic]:
        """The project's keys (owners see all, others their own); never their secrets."""
        await in_project(project, caller, request, READ_ROLES)
        return await service.keys(project, caller)

    @router.delete("/projects/{project}/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def revoke_key(project: str, key_id: str, request: Request, caller: Caller) -> None:
        await in_project(project, caller, request, READ_ROLES)
        await service.revoke_key(key_id, project, caller, request_address(request))

    @router.post("/clients", response_model=KeyCreated, status_code=status.HTTP_201_CREATED)
    async def create_client(data: ClientCreate, request: Request, caller: Admin) -> KeyCreated:
        """OAuth2 client credentials for a site's forwarder or a pipeline: shown once."""
        return await service.create_client(data, caller, request_address(request))

    @router.get("/clients", response_model=list[KeyPublic])
    async def clients(caller: Admin) -> list[KeyPublic]:
        return await service.keys(None, caller)

    @router.delete("/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def revoke_client(client_id: str, request: Request, caller: Admin) -> None:
        await service.revoke_key(client_id, None, caller, request_address(request))

    return router
