"""Jobs' tables in api's schema. At a hub: the jobs submitted and each site's part (its
state as the site last reported it, and the released output). At a site: the algorithms
its admin approved, by digest, and every job it took, with the raw output beside what it
released."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from giftcloud_core.clock import now as _now
from sqlalchemy import Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from giftcloud_api.models import SCHEMA


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}"))


class HubJob(SQLModel, table=True):
    __tablename__ = "federation_jobs"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True)
    project: str = Field(index=True)
    algorithm: str
    #: the algorithm's code the researcher asked for ("" any the site approved)
    digest: str = ""
    criteria: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    #: a count question whose counted series are the cohort at each site ("" criteria)
    question: str = ""
    parameters: dict[str, Any] = _json()
    submitted_by: str
    submitted_at: datetime = Field(default_factory=_now)
    standing: bool = False


class HubJobPart(SQLModel, table=True):
    """One site's part of a job: pending until the site takes it, then what it reports."""

    __tablename__ = "federation_job_parts"
    __table_args__ = {"schema": SCHEMA}

    job: str = Field(primary_key=True)
    site: str = Field(primary_key=True)
    state: str = "pending"
    reason: str = ""
    output: dict[str, Any] = _json()
    #: a standing job's released outputs: [{run, output, at}]
    released: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    attempt: int = 1
    run: int = 1
    #: when the site's job came to the state the hub has (reports may arrive out of order)
    as_of: datetime | None = None
    #: when the site last took the job (or its cancellation): offered again if unconfirmed
    fetched_at: datetime | None = None
    cancel: bool = False
    updated_at: datetime = Field(default_factory=_now)


class Approval(SQLModel, table=True):
    """An algorithm this site's admin approved: the digest of the code they reviewed."""

    __tablename__ = "federation_algorithms"
    __table_args__ = {"schema": SCHEMA}

    name: str = Field(primary_key=True)
    digest: str
    approved_by: str
    approved_at: datetime = Field(default_factory=_now)


class SiteJob(SQLModel, table=True):
    """A job this site took from its hub: its state, the raw output and what was released."""

    __tablename__ = "federation_site_jobs"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True)
    project: str = Field(index=True)
    algorithm: str
    digest: str = ""
    criteria: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    question: str = ""
    parameters: dict[str, Any] = _json()
    submitted_by: str
    attempt: int = 1
    standing: bool = False
    #: a standing job's run: 1, then one more each time new series match
    run: int = 1
    #: the newest archived instance a run has seen (a standing job runs on what is newer)
    seen_until: datetime | None = None
    state: str = "queued"
    reason: str = ""
    #: the series the cohort's criteria chose here (never sent to the hub)
    series: int = 0
    output: dict[str, Any] = _json()
    released: dict[str, Any] = _json()
    decided_by: str = ""
    cancel: bool = False
    #: a running job's runner renews this; past it, the job is run again
    lease_until: datetime | None = None
    #: the state (and attempt) the hub was last told: "" never
    reported: str = ""
    received_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
