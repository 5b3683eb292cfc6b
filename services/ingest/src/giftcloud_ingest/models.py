from __future__ import annotations

from datetime import datetime

from giftcloud_core.clock import now as _now
from sqlmodel import Field, SQLModel

SCHEMA = "ingest"


class KnownProject(SQLModel, table=True):
    """Projects learned from ``project.created`` events (auth owns the truth)."""

    __tablename__ = "projects"
    __table_args__ = {"schema": SCHEMA}

    name: str = Field(primary_key=True)
    #: CIDRs its data may be reached from, comma-separated; empty: anywhere
    networks: str = ""


class ChosenProfile(SQLModel, table=True):
    """A project's de-identification choices, as anonymise announced them (the latest)."""

    __tablename__ = "chosen_profiles"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    version: int
    #: JSON: the keys of a profile its owners chose (options, burned_in_attested)
    choices: str


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
    #: receiving while its files still arrive, then received; interrupted when its process
    #: died while receiving (its counts: what was acknowledged)
    state: str = "receiving"
    created_at: datetime = Field(default_factory=_now)
    #: when it last accepted something (or was opened)
    updated_at: datetime = Field(default_factory=_now)


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


class RemoteNode(SQLModel, table=True):
    """A PACS (or any C-FIND/C-MOVE SCP) the site retrieves cohorts from, set by an admin."""

    __tablename__ = "remote_nodes"
    __table_args__ = {"schema": SCHEMA}

    name: str = Field(primary_key=True)
    ae_title: str
    host: str
    port: int
    tls: bool = False
    #: studies moved from it at once (a clinical PACS is never flooded)
    max_concurrent: int = 2
    #: results delivered to it come with a rendering as secondary captures too (a PACS
    #: that cannot display a segmentation)
    renderings: bool = False
    updated_by: str = ""
    updated_at: datetime = Field(default_factory=_now)


class Retrieval(SQLModel, table=True):
    """A cohort retrieval: queries sent to a remote node, the studies found moved in."""

    __tablename__ = "retrievals"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True)
    project: str = Field(index=True)
    node: str
    #: running (someone works on it, or will), cancelled, done
    state: str = "running"
    created_by: str = ""
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    #: the worker holding it holds it until then (renewed while it works)
    lease_until: datetime | None = None
    error: str = ""


class RetrievalQuery(SQLModel, table=True):
    __tablename__ = "retrieval_queries"
    __table_args__ = {"schema": SCHEMA}

    retrieval_id: str = Field(primary_key=True)
    index: int = Field(primary_key=True)
    #: the query's keys, JSON
    keys: str
    #: pending (not asked yet), found, failed
    state: str = "pending"
    found: int = 0
    error: str = ""


class RetrievalStudy(SQLModel, table=True):
    __tablename__ = "retrieval_studies"
    __table_args__ = {"schema": SCHEMA}

    retrieval_id: str = Field(primary_key=True)
    study_uid: str = Field(primary_key=True, index=True)
    query_index: int
    project: str
    #: instances the remote node said the study has
    expected: int = 0
    #: pending, moving, moved, failed, skipped (already retrieved), cancelled
    state: str = "pending"
    completed: int = 0
    failed: int = 0
    warning: int = 0
    #: the remote node's final status (hex) and comment, or why it was skipped
    status: str = ""


class RetrievalPart(SQLModel, table=True):
    """An instance a retrieval moved in: its original UIDs and the part it became."""

    __tablename__ = "retrieval_parts"
    __table_args__ = {"schema": SCHEMA}

    retrieval_id: str = Field(primary_key=True)
    sop_uid: str = Field(primary_key=True)
    study_uid: str
    item: str


class ForwardProject(SQLModel, table=True):
    """Whether a project's archived instances are forwarded to the hub, and how it goes."""

    __tablename__ = "forward_projects"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    enabled: bool = False
    updated_by: str = ""
    updated_at: datetime = Field(default_factory=_now)
    last_success_at: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None


class ForwardItem(SQLModel, table=True):
    """The outbox: an archived instance to forward, until the hub has it (then removed)."""

    __tablename__ = "forward_outbox"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    sop_uid: str = Field(primary_key=True)
    object_key: str
    #: pending, or failed (set aside after its tries, or refused by the hub)
    state: str = "pending"
    attempts: int = 0
    #: not tried before (a back-off, or the lease of the forwarder trying it)
    next_at: datetime = Field(default_factory=_now, index=True)
    last_error: str = ""
    created_at: datetime = Field(default_factory=_now)


class ReturnProject(SQLModel, table=True):
    """Whether the site pulls a project's results back from its hub, and how it goes."""

    __tablename__ = "return_projects"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    enabled: bool = False
    #: where the next pull asks the hub from
    since: datetime | None = None
    updated_by: str = ""
    updated_at: datetime = Field(default_factory=_now)
    last_success_at: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None


class ReturnItem(SQLModel, table=True):
    """The inbox: a result pulled from the hub, from its arrival to its delivery (or why
    not). One row per result: a result pulled twice is kept once."""

    __tablename__ = "return_items"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True)
    #: the result's SOP Instance UID at the hub, or ``file:<id>``
    key: str = Field(primary_key=True)
    kind: str  # instance | file
    subject: str
    study_uid: str = ""
    series_uid: str = ""
    #: a file's name, an instance's SOP Class UID
    name: str = ""
    size: int = 0
    sha256: str = ""
    object_key: str
    #: checking → waiting (for a reidentifier) | held | refused;
    #: waiting → approved → delivered | failed; waiting → declined
    state: str = Field(default="checking", index=True)
    reason: str = ""
    prepared_key: str = ""
    #: a segmentation's rendering as secondary captures (a bundle), if one was made
    rendering_key: str = ""
    #: the node it goes to, and how it went
    destination: str = ""
    status: str = ""
    attempts: int = 0
    next_at: datetime = Field(default_factory=_now)
    decided_by: str = ""
    decided_at: datetime | None = None
    delivered_at: datetime | None = None
    created_at: datetime = Field(default_factory=_now)
