from __future__ import annotations

from datetime import datetime
from typing import Any

from giftcloud_core.clock import now as _now
from sqlalchemy import Column, String
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

SCHEMA = "api"


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
    #: the Patient and Study modules' attributes (DICOM JSON) of its first instance archived
    attributes: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    modalities: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String), nullable=False, server_default="{}")
    )
    series_count: int = 0
    instance_count: int = 0
    #: PatientName's alphabetic form in upper case, for matching (the pseudonym)
    patient_name: str = ""


class Series(SQLModel, table=True):
    __tablename__ = "series"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    series_uid: str = Field(primary_key=True)
    study_uid: str = Field(index=True)
    modality: str = ""
    description: str = ""
    number: int | None = None
    #: the General Series and Equipment modules' attributes of its first instance archived
    attributes: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    instance_count: int = 0


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
    #: the instance's DICOM JSON, bulk data as BulkDataURIs
    attributes: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB(none_as_null=True), nullable=False)
    )
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


class Derivation(SQLModel, table=True):
    """A result (a segmentation, a structured report...) and one instance it derives from."""

    __tablename__ = "derivations"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    sop_uid: str = Field(primary_key=True)
    source_sop_uid: str = Field(primary_key=True)
    source_series_uid: str = ""
    #: what kind of result: ``segmentation``, ``structured report`` ...
    kind: str


class AttachedFile(SQLModel, table=True):
    """A file that is not DICOM (a NIfTI mask, a CSV table, a PDF, a model card) attached to
    a project, a subject, a study or a series, with where it came from. The parents of what
    it is attached to are kept too (a series' file names its study and subject)."""

    __tablename__ = "files"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True)
    project: str = Field(index=True)
    subject: str = ""
    study_uid: str = ""
    series_uid: str = ""
    name: str
    media_type: str
    size: int
    sha256: str
    object_key: str
    #: provenance: what it was made from (UIDs, other files' ids), by which tool and version
    inputs: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String), nullable=False, server_default="{}")
    )
    tool: str = ""
    tool_version: str = ""
    description: str = ""
    created_by: str
    created_at: datetime = Field(default_factory=_now)


class Quarantined(SQLModel, table=True):
    """An instance de-identification refused: it waits in the quarantine bucket for a
    person to review (the admin's pipeline page lists them with the reason)."""

    __tablename__ = "quarantined"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    object_key: str = Field(primary_key=True)
    reason: str
    upload: str = ""
    occurred_at: datetime
