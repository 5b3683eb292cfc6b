from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

PROJECT_NAME = r"^[a-z0-9][a-z0-9-]{1,62}$"


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=1024)
    site_roles: list[Literal["admin", "reidentifier"]] = []


class UserPublic(BaseModel):
    username: str
    site_roles: list[str]


class ProjectCreate(BaseModel):
    name: str = Field(pattern=PROJECT_NAME, description="lower-case letters, digits and '-'")
    title: str = ""


class ProjectPublic(BaseModel):
    name: str
    title: str
    role: str | None = None


class MemberAdd(BaseModel):
    username: str
    role: Literal["owner", "member", "collaborator"]
