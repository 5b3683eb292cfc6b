"""What jobs' routes take and answer, and what passes between a hub and its sites."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from giftcloud_api.federation.criteria import Predicate

#: a job at its site: queued, running; awaiting_release: the output waits for its steward;
#: waiting: a standing job with no new series to run on
SiteState = Literal[
    "waiting",
    "queued",
    "running",
    "awaiting_release",
    "done",
    "withheld",
    "refused",
    "failed",
    "cancelled",
]
#: a site's part at the hub: pending until the site takes it, then what the site says
JobState = Literal["pending"] | SiteState
#: states a job part leaves only by a retry
FINAL = frozenset({"done", "withheld", "refused", "failed", "cancelled"})
#: states after which a standing job runs again when new series match
REARMED = frozenset({"waiting", "done", "withheld", "failed"})
#: a job's parameters, as JSON, at most this long
PARAMETERS_BYTES = 4096


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    digest: str = Field(
        default="",
        pattern=r"^([0-9a-f]{64})?$",
        description="the SHA-256 of the algorithm's code you mean ('' any a site approved)",
    )
    criteria: list[Predicate] = Field(default_factory=list, max_length=20)
    question: str = Field(
        default="",
        max_length=64,
        description="a count question's id instead of criteria: each site runs on the series"
        " it counted for it (kept at the site; the hub never sees them)",
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    sites: list[str] | None = Field(default=None, description="the sites (all when left out)")
    standing: bool = Field(
        default=False,
        description="run again at each site on every series archived there later that"
        " matches, under the same approval and release rules, until cancelled",
    )

    @model_validator(mode="after")
    def _one_cohort(self) -> JobIn:
        if self.question and self.criteria:
            raise ValueError("choose the cohort by criteria or by a question, not both")
        if self.question and self.standing:
            raise ValueError("a standing job chooses new series by criteria, not by a question")
        return self

    @field_validator("parameters")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > PARAMETERS_BYTES:
            raise ValueError(f"parameters take at most {PARAMETERS_BYTES} bytes of JSON")
        return value


class JobSpec(BaseModel):
    """A job as a site is given it: the cohort by criteria, never by the site's UIDs."""

    id: str
    project: str
    algorithm: str
    digest: str
    criteria: list[Predicate]
    #: a count question's id: the cohort is the series this site counted for it
    question: str = ""
    parameters: dict[str, Any]
    submitted_by: str
    attempt: int
    standing: bool = False


class JobReport(BaseModel):
    """What a site tells its hub of its part: the state, why, and the released output."""

    model_config = ConfigDict(extra="forbid")

    attempt: int = Field(ge=1)
    #: a standing job's run (1 for the first, and for any other job)
    run: int = Field(default=1, ge=1)
    state: SiteState
    #: when the site's job came to this state: a report older than one the hub has is late
    as_of: datetime
    reason: str = Field(default="", max_length=2000)
    output: dict[str, Any] = Field(default_factory=dict)


class Released(BaseModel):
    """One released output of a standing job's run."""

    run: int
    output: dict[str, Any]
    at: datetime


class JobPartOut(BaseModel):
    site: str
    state: JobState
    reason: str
    attempt: int
    #: the run the state is of (a standing job runs again on new series)
    run: int
    #: the latest released output
    output: dict[str, Any]
    #: a standing job's released outputs, one per run, oldest first
    released: list[Released]
    updated_at: datetime


class JobShown(BaseModel):
    """What a job is, as the hub and its sites show it."""

    id: str
    project: str
    algorithm: str
    digest: str
    criteria: list[dict[str, Any]]
    question: str
    parameters: dict[str, Any]
    submitted_by: str
    standing: bool


class JobOut(JobShown):
    submitted_at: datetime
    parts: list[JobPartOut]


class Cell(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: list[str] = Field(max_length=2)
    count: int = Field(ge=0)


class Aggregate(BaseModel):
    """An output released without a steward when every count passes the site's k: counts
    per cell (one or two keys), and nothing else."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["aggregate"]
    cells: list[Cell] = Field(max_length=1000)
    total: int = Field(ge=0)


class AlgorithmOut(BaseModel):
    """An algorithm installed at this site, and whether its admin approved this code."""

    name: str
    entry_point: str
    summary: str
    #: the SHA-256 of the code installed now
    digest: str
    #: the digest the admin approved ('' none)
    approved: str
    approved_by: str


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    digest: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="the digest of the code you reviewed"
    )


class SiteJobOut(JobShown):
    """A job as this site's steward sees it: the raw output too."""

    attempt: int
    run: int
    state: str
    reason: str
    series: int
    output: dict[str, Any]
    released: dict[str, Any]
    decided_by: str
    received_at: datetime
    updated_at: datetime


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    release: bool
    reason: str = Field(default="", max_length=500)
