from __future__ import annotations

from datetime import datetime
from typing import Literal

from giftcloud_core.names import PROJECT_NAME_RULE, ProjectName
from giftcloud_core.tokens import ProjectRole, SiteRole
from pydantic import BaseModel, Field, field_validator

USERNAME = r"^[A-Za-z0-9_.@-]+$"
#: a password field: bounded here, judged by the policy (giftcloud_auth.passwords)
Password = Field(min_length=1, max_length=1024)


def _fold(value: str) -> str:
    return value.lower()  # one account whatever the case it is typed in


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int
    #: for the password and refresh_token grants: use it once, for the next pair
    refresh_token: str | None = None
    refresh_expires_in: int | None = None


class RefreshTokenBody(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=128, pattern=USERNAME)
    #: unset: the account signs in only after a password reset link, or through SSO
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    email: str = Field(default="", max_length=254)
    site_roles: list[SiteRole] = []

    _fold = field_validator("username")(lambda cls, v: _fold(v))


class UserUpdate(BaseModel):
    disabled: bool | None = None
    site_roles: list[SiteRole] | None = None
    email: str | None = Field(default=None, max_length=254)


class UserPublic(BaseModel):
    username: str
    site_roles: list[str]
    email: str = ""
    disabled: bool = False
    locked: bool = False
    single_sign_on: bool = False
    created_at: datetime | None = None


class Me(BaseModel):
    username: str
    kind: str
    site_roles: list[str]
    projects: dict[str, str]


class PasswordChange(BaseModel):
    current_password: str = Password
    new_password: str = Password


class PasswordReset(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    new_password: str = Password


class OneTimeLinkPublic(BaseModel):
    """A link to hand to one person: it works once, until it expires."""

    url: str
    token: str
    expires_at: datetime


class InviteCreate(BaseModel):
    #: the project the invited person joins, and as what (owners invite to their project)
    project: ProjectName | None = None
    role: ProjectRole | None = None
    #: site roles the new account gets (admins only)
    site_roles: list[SiteRole] = []
    email: str = Field(default="", max_length=254)


class InviteAccept(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    username: str = Field(min_length=2, max_length=128, pattern=USERNAME)
    password: str = Password

    _fold = field_validator("username")(lambda cls, v: _fold(v))


class ProjectCreate(BaseModel):
    name: ProjectName = Field(description=PROJECT_NAME_RULE)
    title: str = Field(default="", max_length=200)


class ProjectUpdate(BaseModel):
    title: str = Field(max_length=200)


class ProjectPublic(BaseModel):
    name: str
    title: str
    role: str | None = None


class MemberAdd(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    role: ProjectRole


class MemberPublic(BaseModel):
    username: str
    role: str


class Networks(BaseModel):
    """CIDRs (IPv4 or IPv6) requests may come from; empty: anywhere. For a project, null
    means the site's default."""

    networks: list[str] | None = Field(default=None, max_length=256)


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: ProjectRole
    expires_days: int = Field(default=90, ge=1, le=365)
    networks: list[str] = Field(default=[], max_length=64)


class Grant(BaseModel):
    project: ProjectName
    role: ProjectRole


class ClientCreate(BaseModel):
    """An OAuth2 client (client credentials) for a site's forwarder or a pipeline."""

    name: str = Field(min_length=1, max_length=100)
    grants: list[Grant] = Field(min_length=1, max_length=256)
    expires_days: int = Field(default=365, ge=1, le=3650)
    networks: list[str] = Field(default=[], max_length=64)


class KeyPublic(BaseModel):
    id: str
    name: str
    grants: dict[str, str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    networks: list[str]


class KeyCreated(KeyPublic):
    """Shown once: the secret is kept only as its hash."""

    #: the whole key, for ``Authorization: Bearer <key>``
    key: str
    #: the same, as OAuth2 client credentials
    client_id: str
    client_secret: str
