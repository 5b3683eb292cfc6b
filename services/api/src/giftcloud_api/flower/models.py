"""The Flower apps this site's admin approved: the SHA-256 of the bundle (FAB) they
reviewed, and the name they gave it; and the ledger of learning's privacy budget."""

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel

from giftcloud_api.models import SCHEMA


def _now() -> datetime:
    return datetime.now(UTC)


class FlowerApp(SQLModel, table=True):
    __tablename__ = "federation_flower_apps"
    __table_args__ = {"schema": SCHEMA}

    digest: str = Field(primary_key=True)
    name: str
    approved_by: str
    approved_at: datetime = Field(default_factory=_now)


class FlowerSpend(SQLModel, table=True):
    """One round of learning released under the site's DP: the epsilon it cost who asked."""

    __tablename__ = "federation_flower_spends"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    project: str = Field(index=True)
    asked_by: str
    epsilon: float
    #: the run at the hub and at the SuperLink it was spent for
    hub_run: str = ""
    run: str = ""
    spent_at: datetime = Field(default_factory=_now)


class FlowerGate(SQLModel, table=True):
    """The one API key the site's gate reports its decisions and spends with (registered
    by the site's admin): no other caller writes them."""

    __tablename__ = "federation_flower_gate"
    __table_args__ = {"schema": SCHEMA}

    id: int = Field(default=1, primary_key=True)
    client_id: str
    registered_by: str
    registered_at: datetime = Field(default_factory=_now)
