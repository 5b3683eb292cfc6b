"""The Flower apps this site's admin approved: the SHA-256 of the bundle (FAB) they
reviewed, and the name they gave it."""

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
