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
