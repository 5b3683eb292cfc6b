"""What the forwarding routes answer."""

from datetime import datetime

from pydantic import BaseModel


class ForwardFailure(BaseModel):
    sop_uid: str
    reason: str


class ProjectForwarding(BaseModel):
    project: str
    #: the hub's address (None: this deployment forwards nowhere)
    hub: str | None
    enabled: bool
    #: instances waiting to go
    backlog: int
    #: instances set aside (refused by the hub, or out of tries)
    failed: int
    failures: list[ForwardFailure]
    last_success_at: datetime | None
    last_error: str
    last_error_at: datetime | None


class ForwardingOverview(BaseModel):
    hub: str | None
    projects: list[ProjectForwarding]
