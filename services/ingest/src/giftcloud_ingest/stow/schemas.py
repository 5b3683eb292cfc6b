"""What the upload routes answer (STOW-RS itself answers DICOM JSON, PS3.18 §10.5.3)."""

from datetime import datetime

from pydantic import BaseModel


class Rejection(BaseModel):
    """A file accepted on arrival that de-identification (or the hub's check) rejected."""

    #: the part of the upload (its name in the upload) that was rejected
    object: str
    #: its place in the upload (0-based: the sender names the file it sent there)
    index: int
    reason: str


class Refusal(BaseModel):
    """A file refused on arrival (not DICOM, truncated, a profile's refusal...)."""

    #: its place in the upload (0-based: the sender names the file it sent there)
    index: int
    #: its SOP Instance UID where it could be read ('' otherwise)
    sop_uid: str
    reason: str


class UploadStatus(BaseModel):
    """What became of an upload's instances."""

    id: str
    project: str
    #: the way in: stow, dimse, or the sender (a DICOM association's calling AE and address)
    source: str
    created_at: datetime
    #: receiving, received, or interrupted (its process stopped while it was receiving)
    state: str
    #: instances accepted on arrival (each is archived or rejected later)
    accepted: int
    #: files refused on arrival
    refused: int
    #: each of them, with why
    refusals: list[Refusal]
    #: in the archive now (sent before included)
    archived: int
    #: of those, how many the project held already (the same SOP Instance UID sent before)
    already: int
    rejected: list[Rejection]
    #: accepted and neither archived nor rejected yet
    pending: int


class UploadSummary(BaseModel):
    """One of a project's latest uploads."""

    id: str
    project: str
    username: str
    source: str
    accepted: int
    failed: int
    state: str
    created_at: datetime
    updated_at: datetime
