"""A project's switches for the hub link (forwarding, results back) and how each last
went; the connection itself is giftcloud_core.hub.HubClient."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.hub import HubClient
from sqlalchemy.dialects.postgresql import insert

from giftcloud_ingest.models import ForwardProject, ReturnProject

__all__ = ["HubClient", "Switch", "link_state", "switch"]

#: a project's switch for one direction of the hub link, with how it last went
Switch = type[ForwardProject] | type[ReturnProject]


async def switch(db: Database, table: Switch, project: str, enabled: bool, by: str) -> None:
    """Turn one direction of a project's hub link on or off, saying who did."""
    statement = insert(table).values(
        project=project, enabled=enabled, updated_by=by, updated_at=now()
    )
    async with db.session() as session:
        await session.exec(
            statement.on_conflict_do_update(
                index_elements=["project"],
                set_={"enabled": enabled, "updated_by": by, "updated_at": now()},
            )
        )


def link_state(row: ForwardProject | ReturnProject | None) -> dict[str, Any]:
    """Whether the link is on, and how it last went."""
    return {
        "enabled": bool(row and row.enabled),
        "last_success_at": _iso(row.last_success_at if row else None),
        "last_error": row.last_error if row else "",
        "last_error_at": _iso(row.last_error_at if row else None),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
