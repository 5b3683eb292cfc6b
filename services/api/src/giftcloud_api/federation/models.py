"""Federation's tables in api's schema. At a hub: the sites it knows, the questions asked
and each site's part. At a site: its disclosure policy and every answer it gave (the raw
table beside the released one, which rule decided, the budget spent)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from giftcloud_core.clock import now as _now
from sqlalchemy import Column, String
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from giftcloud_api.models import SCHEMA


class FederatedSite(SQLModel, table=True):
    """A site registered at this hub, known by the machine credential the hub issued it."""

    __tablename__ = "federation_sites"
    __table_args__ = {"schema": SCHEMA}

    name: str = Field(primary_key=True)
    client_id: str = Field(unique=True)
    capabilities: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String), nullable=False, server_default="{}")
    )
    registered_by: str
    registered_at: datetime = Field(default_factory=_now)
    #: the site's last call, and what it said of itself then
    last_seen_at: datetime | None = None
    enabled: bool = False
    version: str = ""
    policy: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )


class Question(SQLModel, table=True):
    __tablename__ = "federation_questions"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True)
    project: str = Field(index=True)
    kind: str = "count"
    question: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    asked_by: str
    asked_at: datetime = Field(default_factory=_now)


class Part(SQLModel, table=True):
    """One site's part of a question: pending, answered, refused or failed (with why)."""

    __tablename__ = "federation_parts"
    __table_args__ = {"schema": SCHEMA}

    question: str = Field(primary_key=True)
    site: str = Field(primary_key=True)
    state: str = "pending"
    answer: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    reason: str = ""
    fetched_at: datetime | None = None
    answered_at: datetime | None = None


class Policy(SQLModel, table=True):
    """This site's disclosure policy (one row): only the site's admin changes it."""

    __tablename__ = "federation_policy"
    __table_args__ = {"schema": SCHEMA}

    id: int = Field(default=1, primary_key=True)
    enabled: bool = False
    k: int = 10
    noise: str = "allowed"
    budget: float = 3.0
    updated_by: str = ""
    updated_at: datetime = Field(default_factory=_now)


class Answer(SQLModel, table=True):
    """What this site answered to a hub's question: the raw table, the released one."""

    __tablename__ = "federation_answers"
    __table_args__ = {"schema": SCHEMA}

    question: str = Field(primary_key=True)
    project: str = Field(index=True)
    asked_by: str
    digest: str
    raw_digest: str = ""
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    raw: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    released: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    state: str
    reason: str = ""
    epsilon: float = 0.0
    answered_at: datetime = Field(default_factory=_now)
    #: the hub took the answer (False: it will be sent again)
    delivered: bool = False
    #: the series counted: a job's cohort when it names this question (never sent)
    series: list[str] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
