"""The AE titles people query and retrieve from (api's DICOM query/retrieve): each one's
owner, the address its associations must come from, where C-MOVE sends to it, and the API
key it acts with (encrypted at rest: the key is the owner's, with its roles and networks)."""

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel

from giftcloud_api.models import SCHEMA


def _now() -> datetime:
    return datetime.now(UTC)


class DimseCaller(SQLModel, table=True):
    __tablename__ = "dimse_callers"
    __table_args__ = {"schema": SCHEMA}

    ae_title: str = Field(primary_key=True)
    username: str = Field(index=True)
    host: str
    #: where a C-MOVE to this AE title sends (None: it is no move destination)
    port: int | None = None
    key_sealed: bytes
    registered_at: datetime = Field(default_factory=_now)
