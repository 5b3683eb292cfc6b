"""What the retrieval routes answer."""

from datetime import datetime

from pydantic import BaseModel


class RemoteNodeOut(BaseModel):
    name: str
    ae_title: str
    host: str
    port: int
    tls: bool
    max_concurrent: int
    #: results delivered to it come with secondary-capture renderings too
    renderings: bool


class RetrievalSummary(BaseModel):
    id: str
    node: str
    #: running, cancelled or done
    state: str
    created_by: str
    created_at: datetime


class StudyProgress(BaseModel):
    study_uid: str
    #: pending, moving, moved, skipped, failed or cancelled
    state: str
    #: instances the PACS said the study holds
    expected: int
    moved: int
    archived: int
    rejected: int
    #: the distinct reasons of the rejections (at most 20)
    reasons: list[str]
    #: sub-operations the PACS reported failed
    remote_failed: int
    remote_status: str


class QueryProgress(BaseModel):
    query: dict[str, str]
    #: pending, found or failed
    state: str
    error: str
    #: e.g. that the studies it matched were matched by an earlier query (a repeated line)
    note: str
    studies_found: int
    #: studies the PACS matched, this query's and those an earlier query had
    studies_matched: int
    expected: int
    moved: int
    archived: int
    rejected: int
    failed: int
    studies: list[StudyProgress]


class RetrievalStatus(BaseModel):
    id: str
    project: str
    node: str
    state: str
    error: str
    created_by: str
    created_at: datetime
    queries: list[QueryProgress]
