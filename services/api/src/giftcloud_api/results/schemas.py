"""A study's results as the API answers them."""

from pydantic import BaseModel


class Source(BaseModel):
    """A series a result derives from, and how many of its instances it names."""

    series_uid: str
    instances: int


class ResultOut(BaseModel):
    sop_uid: str
    series_uid: str
    sop_class_uid: str
    #: ``segmentation``, ``structured report``, ``RT structure set`` ...
    kind: str
    series_description: str
    archived_at: str
    sources: list[Source]


class FileOut(BaseModel):
    """A file attached to the project, a subject, a study or a series, with its provenance."""

    id: str
    name: str
    media_type: str
    size: int
    sha256: str
    #: where it is attached: the project (all empty), a subject, a study or a series
    subject: str
    study_uid: str
    series_uid: str
    #: what it was made from (UIDs or other files' ids), by which tool and version
    inputs: list[str]
    tool: str
    tool_version: str
    description: str
    created_by: str
    created_at: str


class ProjectResult(BaseModel):
    """A result in the project (a derived instance, or an attached file), as a site pulls
    them: ``key`` is the instance's SOP Instance UID or ``file:<id>``."""

    kind: str  # instance | file
    key: str
    subject: str
    study_uid: str
    series_uid: str
    size: int
    sha256: str
    #: a file's name, an instance's SOP Class UID
    name: str
    at: str
