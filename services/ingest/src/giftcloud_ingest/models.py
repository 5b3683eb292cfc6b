from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel

SCHEMA = "ingest"


def _now() -> datetime:
    return datetime.now(UTC)


class KnownProject(SQLModel, table=True):
    """Projects learned from ``project.created`` events (auth owns the truth)."""

    __tablename__ = "projects"
    __table_args__ = {"schema": SCHEMA}

    name: str = Field(primary_key=True)
    #: CIDRs its data may be reached from, comma-separated; empty: anywhere
    networks: str = ""


class UploadOutcome(SQLModel, table=True):
    """What became of one accepted instance of an upload: archived, or rejected and why."""

    __tablename__ = "upload_outcomes"
    __table_args__ = {"schema": SCHEMA}

    upload_id: str = Field(primary_key=True)
    item: str = Field(primary_key=True)  # the received object's key
    outcome: str  # archived | rejected
    reason: str = ""
    #: where an archived instance now is (its de-identified UIDs)
    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str = ""
    created_at: datetime = Field(default_factory=_now)


class Upload(SQLModel, table=True):
    """One STOW-RS request or upload batch and what became of its parts."""

    __tablename__ = "uploads"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True)
    project: str = Field(index=True)
    username: str
    source: str
    accepted: int = 0
    failed: int = 0
    #: receiving while its files still arrive, then received
    state: str = "receiving"
    created_at: datetime = Field(default_factory=_now)


class PendingBundle(SQLModel, table=True):
    """A bundle being stored and announced: recorded before its object is written, removed
    once its message is published. One left behind is an object no message will ever name
    (its process died in between; nothing of it was acknowledged): it is swept away."""

    __tablename__ = "pending_bundles"
    __table_args__ = {"schema": SCHEMA}

    key: str = Field(primary_key=True)
    created_at: datetime = Field(default_factory=_now, index=True)


class DicomRoute(SQLModel, table=True):
    """How the DICOM node routes to a project: associations called ``ae_title`` store into
    it, from the calling AE titles and networks listed (none listed: any)."""

    __tablename__ = "dicom_routes"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    ae_title: str = Field(unique=True)
    #: calling AE titles allowed, one per line (an AE title holds no control character)
    calling_ae_titles: str = ""
    #: source networks allowed (CIDR), comma-separated
    networks: str = ""
    updated_by: str = ""
    updated_at: datetime = Field(default_factory=_now)
