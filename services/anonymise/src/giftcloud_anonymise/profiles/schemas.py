"""A project's de-identification profile as its page and API show it, and an owner's choice."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

#: each option in one sentence, for the owner who chooses (PS3.15 E.3)
EXPLAINED = {
    "clean_descriptors": "Keep study, series and protocol descriptions, with the patient's "
    "names and IDs, dates, long numbers and named people taken out; narrative comments "
    "are removed.",
    "retain_modified_dates": "Keep dates, shifted by a per-subject offset, so intervals "
    "between studies stay true.",
    "retain_full_dates": "Keep dates as they are (dates identify: choose only with a "
    "risk assessment).",
    "retain_patient_characteristics": "Keep sex, age, size, weight, smoking and pregnancy "
    "status and similar characteristics.",
    "retain_device_identity": "Keep scanner identities: station names, serial numbers.",
    "retain_institution_identity": "Keep the institution's name and department.",
    "retain_uids": "Keep the original UIDs (they can be traced back to the hospital).",
    "retain_safe_private": "Keep the private attributes PS3.15 lists as safe "
    "(e.g. diffusion b-values).",
    "clean_structured_content": "Keep structured reports' content, cleaned, rather than "
    "removing it.",
    "clean_graphics": "Keep graphic annotations and overlay comments, cleaned.",
    "clean_pixel_data": "Set by the engine when it blanks burned-in text; not a choice.",
}


class OptionState(BaseModel):
    name: str
    code: str
    meaning: str
    explanation: str
    on: bool


class Attestation(BaseModel):
    """A kind of image an owner may attest carries no burned-in text, and whether one has."""

    kind: str
    label: str
    attested: bool
    by: str = ""
    at: datetime | None = None


class ProfileState(BaseModel):
    project: str
    #: where the options come from: the default, the server's profile file, or the owners
    source: Literal["default", "file", "owners"]
    #: 0 until the owners first choose
    version: int
    #: as DeidentificationMethod records it
    description: str
    options: list[OptionState]
    burned_in: list[Attestation]


class ProfileChoice(BaseModel):
    """What an owner chooses: the options (null: back to the server's file or the default)
    and the kinds of image attested to carry no burned-in text (``ATTESTABLE``)."""

    options: list[str] | None = None
    burned_in_attested: list[str] = Field(default_factory=list)
