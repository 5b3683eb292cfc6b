"""The one clock: aware UTC datetimes, as every table and event keeps them."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
