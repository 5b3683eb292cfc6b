"""What federation's routes take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from giftcloud_api.federation.criteria import CountQuestion
from giftcloud_api.federation.disclosure import K_FLOOR

PartState = Literal["pending", "answered", "refused", "failed"]


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="how answers name it")
    client_id: str = Field(
        min_length=1, max_length=200, description="the machine credential this hub issued it"
    )
    capabilities: list[Literal["count", "jobs"]] = Field(default=["count", "jobs"])


class SiteOut(BaseModel):
    name: str
    client_id: str
    capabilities: list[str]
    registered_by: str
    registered_at: datetime
    last_seen_at: datetime | None
    enabled: bool
    version: str
    policy: dict[str, Any]


class Heartbeat(BaseModel):
    """What a site says of itself when it calls: its federation on or off, its policy."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    version: str = Field(default="", max_length=64)
    policy: dict[str, Any] = Field(default_factory=dict)


class Task(BaseModel):
    """Work for a site: a count question, a job to run, or a job to cancel."""

    id: str
    project: str
    kind: Literal["count", "job", "cancel"]
    question: CountQuestion | None = None
    #: the job, read by giftcloud_api.jobs (JobSpec)
    job: dict[str, Any] | None = None
    asked_by: str
    asked_at: datetime

    @model_validator(mode="after")
    def _carries(self) -> Task:
        if (self.kind == "count") != (self.question is not None):
            raise ValueError("a count task carries a question, and only a count task does")
        if (self.kind != "count") != (self.job is not None):
            raise ValueError("a job or cancel task carries its job")
        return self


class CellOut(BaseModel):
    key: list[str]
    #: None: suppressed, "< k"
    count: int | None
    rule: str


class SiteAnswer(BaseModel):
    """A site's released answer: nothing here is below the site's k."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["answered", "refused"]
    cells: list[CellOut] = Field(default_factory=list)
    total: int | None = None
    total_rule: str = ""
    k: int | None = None
    epsilon: float | None = None
    reason: str = ""


class PartOut(BaseModel):
    site: str
    state: PartState
    reason: str
    answered_at: datetime | None
    answer: SiteAnswer | None


class PooledCell(BaseModel):
    key: list[str]
    #: the sum of the sites' released counts for this cell
    count: int
    sites: list[str]
    #: some site suppressed this cell: the pooled count leaves its part out
    partial: bool


class Pooled(BaseModel):
    cells: list[PooledCell]
    #: the sum of the released totals
    total: int
    sites: list[str]


class AskCount(CountQuestion):
    sites: list[str] | None = Field(
        default=None, description="the registered sites to ask (all of them when left out)"
    )

    def question(self) -> CountQuestion:
        return CountQuestion.model_validate(self.model_dump(exclude={"sites"}))


class QuestionOut(BaseModel):
    id: str
    project: str
    kind: str
    question: CountQuestion
    asked_by: str
    asked_at: datetime
    parts: list[PartOut]
    pooled: Pooled


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool
    k: int = Field(default=10, ge=K_FLOOR, le=1000, description=f"never below {K_FLOOR}")
    #: off: noise never added (a question with epsilon is refused); required: only noisy
    noise: Literal["off", "allowed", "required"] = "allowed"
    #: the epsilon one person may spend on one project's noisy questions at this site
    budget: float = Field(default=3.0, ge=0, le=100)


class PolicyOut(PolicyIn):
    updated_by: str
    updated_at: datetime


class AnswerLog(BaseModel):
    """One question this site answered, as its admin sees it: the raw table too."""

    question: str
    project: str
    asked_by: str
    body: dict[str, Any]
    state: str
    reason: str
    raw: dict[str, Any]
    released: dict[str, Any]
    epsilon: float
    answered_at: datetime
    delivered: bool
