"""What Flower's routes take and give."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DIGEST = r"^[0-9a-f]{64}$"


class FlowerAppIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="what the admin calls the app")


class FlowerAppOut(BaseModel):
    digest: str
    name: str
    approved_by: str
    approved_at: datetime


class FlowerDecisionIn(BaseModel):
    """One decision of the site's gate: an app run or refused, a reply released, withheld
    or failed, with the rule, and the raw beside the released values."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["run", "refused", "released", "withheld", "failed"]
    app: str = Field(default="", max_length=200)
    digest: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    reason: str = Field(default="", max_length=2000)
    run: int | None = None
    type: str = Field(default="", max_length=100)
    raw: dict[str, Any] = Field(default_factory=dict)
    released: dict[str, Any] = Field(default_factory=dict)
    #: who asked at the hub, in which project and run (when its runner started the run)
    asked_by: str = Field(default="", max_length=200)
    hub_project: str = Field(default="", max_length=200)
    hub_run: str = Field(default="", max_length=100)
    #: the site's differential privacy on a model update: the mechanism and its parameters
    noise: dict[str, Any] = Field(default_factory=dict)
    #: the learning budget this reply spent from who asked: {asked_by, spent, budget}
    budget: dict[str, Any] = Field(default_factory=dict)


class SpendIn(BaseModel):
    """The site's gate spends a round of learning's epsilon from who asked, under the
    budget of the site's file."""

    model_config = ConfigDict(extra="forbid")

    asked_by: str = Field(min_length=1, max_length=200)
    epsilon: float = Field(gt=0, allow_inf_nan=False)
    budget: float = Field(gt=0, allow_inf_nan=False)
    hub_run: str = Field(default="", max_length=100)
    run: int | None = Field(default=None, ge=0)


class SpendOut(BaseModel):
    asked_by: str
    spent: float
    budget: float


class MachineIn(BaseModel):
    """A machine credential registered for one part: the site's gate, the hub's runner."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(
        min_length=1, max_length=100, description="the API key's or OAuth2 client's id"
    )


class MachineOut(BaseModel):
    client_id: str
    registered_by: str
    registered_at: datetime
