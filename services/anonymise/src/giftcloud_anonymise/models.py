from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel

SCHEMA = "anonymise"


def _now() -> datetime:
    return datetime.now(UTC)


class Deidentification(SQLModel, table=True):
    """What became of each received object: its pseudonymised UIDs, or why it was refused."""

    __tablename__ = "deidentifications"
    __table_args__ = {"schema": SCHEMA}

    object_key: str = Field(primary_key=True)
    project: str = Field(index=True)
    outcome: str  # deidentified | rejected
    subject: str = ""
    sop_uid: str = ""
    reason: str = ""
    key_id: str = ""
    created_at: datetime = Field(default_factory=_now)
