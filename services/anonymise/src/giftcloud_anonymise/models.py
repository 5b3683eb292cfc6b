from __future__ import annotations

from datetime import datetime

from giftcloud_core.clock import now as _now
from sqlmodel import Field, SQLModel

SCHEMA = "anonymise"


class Deidentification(SQLModel, table=True):
    """What became of each received object: its pseudonymised UIDs, or why it was refused."""

    __tablename__ = "deidentifications"
    __table_args__ = {"schema": SCHEMA}

    object_key: str = Field(primary_key=True)
    project: str = Field(index=True)
    outcome: str  # deidentified | rejected
    subject: str = ""
    sop_uid: str = ""
    reason: str = ""
    key_id: str = ""
    #: the patient namespace the subject was keyed in, and the settings' fingerprint
    namespace: str = ""
    created_at: datetime = Field(default_factory=_now)


class VaultEntry(SQLModel, table=True):
    """Who a subject was, for one study: sealed with the vault's public key."""

    __tablename__ = "vault"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    subject: str = Field(primary_key=True)
    study_uid: str = Field(primary_key=True)  # the pseudonymised one
    sealed: bytes
    vault_key_id: str
    created_at: datetime = Field(default_factory=_now)


class ReidentificationAudit(SQLModel, table=True):
    """Every read of the vault: who, when, which subject, how many records."""

    __tablename__ = "reidentification_audit"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    username: str
    project: str
    subject: str
    records: int
    correlation_id: str = ""
    created_at: datetime = Field(default_factory=_now)


class KnownProject(SQLModel, table=True):
    """Projects learned from auth's events, with the networks their data may be reached from."""

    __tablename__ = "projects"
    __table_args__ = {"schema": SCHEMA}

    name: str = Field(primary_key=True)
    networks: str = ""


class ProjectProfile(SQLModel, table=True):
    """What a project's owners chose for its de-identification, on its page or by API: the
    profile options (over the server's file or the default) and the kinds of image they
    attest carry no burned-in text, with who attested each and when."""

    __tablename__ = "project_profiles"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    version: int = 1
    #: JSON list of option names; NULL: the file or the default decides
    options: str | None = None
    #: JSON: {kind: {"by": username, "at": ISO time}}
    attested: str = "{}"
    updated_by: str = ""
    updated_at: datetime = Field(default_factory=_now)


class VaultUids(SQLModel, table=True):
    """The original UIDs the engine replaced in some of a study's instances (one row per
    bundle and study), sealed as the vault's records are: with them and the project's key, a
    result's references map back to the hospital's originals."""

    __tablename__ = "vault_uids"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    project: str = Field(index=True)
    subject: str
    study_uid: str  # the pseudonymised one
    sealed: bytes
    vault_key_id: str
    created_at: datetime = Field(default_factory=_now)
