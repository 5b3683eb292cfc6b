"""What the catalogue's REST routes answer."""

from pydantic import BaseModel


class ProjectOut(BaseModel):
    name: str
    title: str
    #: your role on it (owner, member, collaborator)
    role: str | None


class SubjectOut(BaseModel):
    #: the pseudonym (the de-identified PatientID)
    label: str
    studies: int


class StudyOut(BaseModel):
    study_uid: str
    study_date: str
    modalities: list[str]
    series: int
    instances: int


class QueueState(BaseModel):
    queue: str
    #: None when the broker did not answer (``problem`` says so)
    waiting: int | None
    dead_letters: int | None
    problem: str


class QuarantinedOut(BaseModel):
    project: str
    object: str
    reason: str
    upload: str
    at: str


class PipelineStatus(BaseModel):
    queues: list[QueueState]
    archived_last_minute: int
    archived_last_hour: int
    quarantined: int
    latest_quarantined: list[QuarantinedOut]
