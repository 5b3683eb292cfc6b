from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel

SCHEMA = "auth"


def _now() -> datetime:
    return datetime.now(UTC)


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=128)
    password_hash: str
    site_roles: str = ""  # comma-separated: admin, reidentifier
    created_at: datetime = Field(default_factory=_now)

    def roles(self) -> list[str]:
        return [r for r in self.site_roles.split(",") if r]


class Project(SQLModel, table=True):
    __tablename__ = "projects"
    __table_args__ = {"schema": SCHEMA}

    name: str = Field(primary_key=True, max_length=64)
    title: str = ""
    created_by: str
    created_at: datetime = Field(default_factory=_now)


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True, foreign_key=f"{SCHEMA}.projects.name")
    username: str = Field(primary_key=True, foreign_key=f"{SCHEMA}.users.username")
    role: str


class SigningKey(SQLModel, table=True):
    __tablename__ = "signing_keys"
    __table_args__ = {"schema": SCHEMA}

    kid: str = Field(primary_key=True)
    private_pem: str
    created_at: datetime = Field(default_factory=_now)


class OutboxEvent(SQLModel, table=True):
    """An event committed in the transaction of the change it announces; the relay publishes
    it and then deletes it, so a broker that is away loses no event."""

    __tablename__ = "outbox"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    body: str  # the event as JSON
    created_at: datetime = Field(default_factory=_now)
