"""What the Flower runs' routes take and give."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from giftcloud_api.flower.schemas import MachineOut

#: an app's name, and a run configuration's key, as Flower's TOML allows them bare
NAME = r"^[a-z][a-z0-9-]{0,62}$"
#: keys the runner sets itself (who asked, where): never taken from a researcher
RESERVED = "giftcloud-"

Value = bool | int | float | str
STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL = frozenset({"done", "failed", "cancelled"})


class CatalogueApp(BaseModel):
    """An app the runner offers: its name (its folder), what it does, and its run
    configuration with the defaults (the keys a run may set, and their types)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    description: str = Field(default="", max_length=500)
    config: dict[str, Value] = Field(default_factory=dict, max_length=100)


class RunnerOut(MachineOut):
    seen_at: datetime | None
    projects: list[str]
    apps: list[CatalogueApp]


class FlowerRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app: str = Field(pattern=NAME, description="an app of the hub's catalogue")
    config: dict[str, Value] = Field(
        default_factory=dict, max_length=100, description="run configuration the app takes"
    )


class FlowerRunOut(BaseModel):
    id: str
    project: str
    app: str
    config: dict[str, Any]
    asked_by: str
    asked_at: datetime
    state: str
    reason: str
    flower_run: str | None
    result: dict[str, Any] | None
    cancel: bool
    started_at: datetime | None
    ended_at: datetime | None


class ClaimIn(BaseModel):
    """The runner asks for work, saying what it offers now."""

    model_config = ConfigDict(extra="forbid")

    apps: list[CatalogueApp] = Field(max_length=100)


class RunTask(BaseModel):
    """A run for the runner to start: the app, the researcher's configuration and who
    asked (the runner adds them to the run's configuration, for the sites' audit)."""

    id: str
    project: str
    app: str
    config: dict[str, Any]
    asked_by: str
    #: a run the runner had started before it stopped: to follow again, not to start
    flower_run: str | None = None


class RunReport(BaseModel):
    """The runner's word on a run it took (a running report also renews its lease)."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["running", "done", "failed", "cancelled"]
    flower_run: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")
    reason: str = Field(default="", max_length=2000)
    result: dict[str, Any] | None = None


class ReportAnswer(BaseModel):
    """Whether the run's researcher asked to stop it."""

    cancel: bool


#: a SuperNode's name at the hub (as a site's)
NODE = r"^[a-z0-9][a-z0-9-]{0,62}$"


class NodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_key: str = Field(
        min_length=1, max_length=2000, description="the SuperNode's public key, OpenSSH format"
    )


class NodeOut(BaseModel):
    name: str
    public_key: str
    state: str
    reason: str
    node_id: str | None
    asked_by: str
    asked_at: datetime
    done_at: datetime | None


class NodeTask(BaseModel):
    """For the runner: register the key, or unregister the node."""

    name: str
    action: Literal["register", "unregister"]
    public_key: str
    node_id: str | None


class NodeReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["registered", "unregistered", "failed"]
    node_id: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")
    reason: str = Field(default="", max_length=2000)


class ClaimAnswer(BaseModel):
    run: RunTask | None
    nodes: list[NodeTask] = Field(default_factory=list)
