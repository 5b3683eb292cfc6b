"""What the results-back routes take and answer."""

from datetime import datetime

from pydantic import BaseModel, Field


class ReturnsIn(BaseModel):
    enabled: bool


class ReturnsStatus(BaseModel):
    project: str
    #: the hub's address (None: this deployment pulls from nowhere)
    hub: str | None
    enabled: bool
    #: results per state: checking, waiting, held, refused, approved, delivered, failed,
    #: declined
    states: dict[str, int]
    last_success_at: datetime | None
    last_error: str
    last_error_at: datetime | None


class Approval(BaseModel):
    """Deliver the result to this node (one of the site's remote nodes); a file needs none:
    approving it lets it be downloaded here."""

    destination: str = Field(default="", max_length=63, examples=["pacs"])


class Destination(BaseModel):
    """A hospital node results may be delivered to."""

    name: str
    ae_title: str
    #: it takes a rendering as secondary captures beside a segmentation
    renderings: bool


class Decline(BaseModel):
    reason: str = Field(default="", max_length=500)


class ReturnItemOut(BaseModel):
    key: str
    kind: str
    subject: str
    study_uid: str
    series_uid: str
    #: a file's name, an instance's SOP Class UID
    name: str
    size: int
    sha256: str
    #: checking, waiting (for a reidentifier), held, refused, approved, delivered, failed,
    #: declined
    state: str
    reason: str
    destination: str
    #: the node's answer (or why the delivery failed)
    status: str
    attempts: int
    decided_by: str
    decided_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
