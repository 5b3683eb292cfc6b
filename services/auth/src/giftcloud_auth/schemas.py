from __future__ import annotations

from typing import Literal

from giftcloud_core.names import PROJECT_NAME
from pydantic import BaseModel, Field, field_validator

USERNAME = r"^[A-Za-z0-9_.@-]+$"


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=128, pattern=USERNAME)
    password: str = Field(min_length=8, max_length=1024)
    site_roles: list[Literal["admin", "creator", "reidentifier"]] = []

    @field_validator("username")
    @classmethod
    def fold(cls, value: str) -> str:
        return value.lower()  # one account whatever the case it is typed in


class UserPublic(BaseModel):
    username: str
    site_roles: list[str]


class ProjectCreate(BaseModel):
    name: str = Field(pattern=PROJECT_NAME, description="lower-case letters, digits and '-'")
    title: str = Field(default="", max_length=200)


class ProjectPublic(BaseModel):
    name: str
    title: str
    role: str | None = None


class MemberAdd(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    role: Literal["owner", "member", "collaborator"]
