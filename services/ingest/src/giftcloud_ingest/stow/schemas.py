"""What the upload routes answer (STOW-RS itself answers DICOM JSON, PS3.18 §10.5.3)."""

from datetime import datetime

from pydantic import BaseModel


class Rejection(BaseModel):
    #: the part of the upload (its name in the upload) that was rejected
    object: str
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
    archived: int
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
