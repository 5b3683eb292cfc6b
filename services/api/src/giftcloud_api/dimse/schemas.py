"""What the query/retrieve callers' routes take and give."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class CallerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        min_length=1, max_length=253, description="the address its associations come from"
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="where a C-MOVE to it sends (none: no moves)"
    )
    api_key: SecretStr = Field(description="one of your API keys: what its associations act as")


class CallerOut(BaseModel):
    ae_title: str
    username: str
    host: str
    port: int | None
    registered_at: datetime
