"""The pipeline at a glance (admins): the broker's queues, instances archived lately, what
waits in quarantine and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.events import (
    QUEUES,
)
from sqlalchemy import (
    func,
)
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.models import (
    Instance,
    Quarantined,
)


@dataclass(frozen=True)
class Flow:
    """What the archive took in lately, and what waits in quarantine."""

    last_minute: int
    last_hour: int
    quarantined: int
    latest_quarantined: list[Quarantined]


async def flow_of_pipeline(session: AsyncSession, now: datetime, latest: int = 50) -> Flow:
    counted = await session.exec(
        select(
            func.count().filter(col(Instance.archived_at) > now - timedelta(minutes=1)),
            func.count(),
        ).where(col(Instance.archived_at) > now - timedelta(hours=1))
    )
    minute, hour = counted.one()
    total = (await session.exec(select(func.count()).select_from(Quarantined))).one()
    rows = await session.exec(
        select(Quarantined).order_by(col(Quarantined.occurred_at).desc()).limit(latest)
    )
    return Flow(int(minute), int(hour), int(total), list(rows.all()))


async def pipeline(db: Database, bus: Bus) -> dict[str, Any]:
    """The pipeline at a glance, for admins: each queue's waiting and dead-lettered
    messages (from the broker), instances archived in the last minute and hour, and
    what waits in quarantine with the reason."""
    queues = []
    for name in QUEUES:
        try:
            waiting: int | None = await bus.depth(name)
            dead: int | None = await bus.dead_letters(name)
            problem = ""
        except Exception as exc:  # a broker away is shown, not raised
            waiting = dead = None
            problem = f"the broker did not answer: {type(exc).__name__}"
        queues.append({"queue": name, "waiting": waiting, "dead_letters": dead, "problem": problem})
    async with db.session() as session:
        flow = await flow_of_pipeline(session, datetime.now(UTC))
    return {
        "queues": queues,
        "archived_last_minute": flow.last_minute,
        "archived_last_hour": flow.last_hour,
        "quarantined": flow.quarantined,
        "latest_quarantined": [
            {
                "project": q.project,
                "object": q.object_key,
                "reason": q.reason,
                "upload": q.upload,
                "at": q.occurred_at.isoformat(),
            }
            for q in flow.latest_quarantined
        ],
    }
