"""The hub's Flower runner (one per hub: the machine credential it calls with, and the
apps it offers) and the runs people asked it for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from giftcloud_core.clock import now as _now
from sqlalchemy import Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from giftcloud_api.models import SCHEMA

#: the runner's row: there is one runner per hub (one SuperLink)
RUNNER = 1


class FlowerRunner(SQLModel, table=True):
    __tablename__ = "federation_flower_runner"
    __table_args__ = {"schema": SCHEMA}

    id: int = Field(default=RUNNER, primary_key=True)
    #: the machine credential (an OAuth2 client or API key id) the runner calls with
    client_id: str
    registered_by: str
    registered_at: datetime = Field(default_factory=_now)
    seen_at: datetime | None = None
    #: the projects its credential has a role on, as it last called: the ones it serves
    projects: list[str] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    #: the apps it offers, as it last said: [{name, description, config}]
    apps: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )


class FlowerRun(SQLModel, table=True):
    __tablename__ = "federation_flower_runs"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True)
    project: str = Field(index=True)
    app: str
    config: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    asked_by: str
    asked_at: datetime = Field(default_factory=_now)
    #: queued, running, done, failed, cancelled
    state: str = "queued"
    reason: str = ""
    #: the run's number at the SuperLink, once started (a 64-bit unsigned number: text)
    flower_run: str | None = None
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    cancel: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None
    #: a running run whose runner is not heard of by then ended with it
    lease_until: datetime | None = None


class FlowerNode(SQLModel, table=True):
    """A site's SuperNode key the hub's admin asked the runner to register (or unregister)
    at the SuperLink: what was asked, and what the runner did."""

    __tablename__ = "federation_flower_nodes"
    __table_args__ = {"schema": SCHEMA}

    name: str = Field(primary_key=True)
    #: the SuperNode's public key, OpenSSH format (EC P-384)
    public_key: str
    #: registering, registered, unregistering, unregistered, failed
    state: str = "registering"
    reason: str = ""
    #: the SuperLink's number for it, once registered (unsigned 64-bit: text)
    node_id: str | None = None
    asked_by: str
    asked_at: datetime = Field(default_factory=_now)
    done_at: datetime | None = None
