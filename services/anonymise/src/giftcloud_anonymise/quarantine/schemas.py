"""The quarantine as its page and API show it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class Held(BaseModel):
    """One instance de-identification refused."""

    #: its name since it arrived: ``{project}/{upload}/{n}.dcm``
    key: str
    #: the upload it came in and its number there (from 0), when it came in an upload
    upload: str | None
    index: int | None
    reason: str
    #: ``held``: waits for an owner; ``released``: being processed again
    state: Literal["held", "released"]
    since: datetime


class Described(BaseModel):
    """What an owner needs to judge a held instance, and nothing of the patient: the kind of
    image, its maker, what it says of burned-in text."""

    key: str
    reason: str
    modality: str
    sop_class: str
    manufacturer: str
    model: str
    image_type: str
    burned_in_annotation: str
    rows: int | None
    columns: int | None
    frames: int | None
    transfer_syntax: str
    size: int


class Chosen(BaseModel):
    """Held instances an owner acts on."""

    keys: list[str] = Field(min_length=1, max_length=1000)


class Cleared(BaseModel):
    how: Literal["released", "deleted"]
    keys: list[str]
