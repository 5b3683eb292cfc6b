from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel

SCHEMA = "api"


def _now() -> datetime:
    return datetime.now(UTC)


class Project(SQLModel, table=True):
    __tablename__ = "projects"
    __table_args__ = {"schema": SCHEMA}

    name: str = Field(primary_key=True)
    title: str = ""
    #: CIDRs its data may be reached from, comma-separated; empty: anywhere
    networks: str = ""


class Subject(SQLModel, table=True):
    __tablename__ = "subjects"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    label: str = Field(primary_key=True)


class Study(SQLModel, table=True):
    __tablename__ = "studies"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    study_uid: str = Field(primary_key=True)
    subject: str = Field(index=True)
    study_date: str = ""
    description: str = ""


class Series(SQLModel, table=True):
    __tablename__ = "series"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    series_uid: str = Field(primary_key=True)
    study_uid: str = Field(index=True)
    modality: str = ""
    description: str = ""
    number: int | None = None


class Instance(SQLModel, table=True):
    __tablename__ = "instances"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    sop_uid: str = Field(primary_key=True)
    series_uid: str = Field(index=True)
    study_uid: str = Field(index=True)
    subject: str
    sop_class_uid: str
    number: int | None = None
    object_key: str
    metadata_key: str
    size: int
    sha256: str
    transfer_syntax_uid: str = ""
    archived_at: datetime = Field(default_factory=_now)


class AuditRecord(SQLModel, table=True):
    """One access or change, as a service recorded it (append-only: a trigger refuses
    UPDATE, DELETE and TRUNCATE)."""

    __tablename__ = "audit"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True)
    occurred_at: datetime
    project: str
    actor: str
    action: str
    outcome: str
    target: str = ""
    address: str = ""
    detail: str = ""
    correlation_id: str = ""
