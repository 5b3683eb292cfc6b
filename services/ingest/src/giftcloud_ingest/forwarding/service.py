"""Site → hub forwarding: each archived (de-identified) instance of a project that forwards
goes to the hub's STOW-RS under the same project name, with the machine credential the hub
issued (an OAuth2 client, or an API key; never a person's password).

It lives in ingest because ingest is the service that talks to the world outside the site
(DICOM peers, the PACS, and now the hub) and already consumes ``instances.archived``: the
event names each instance's object in the archive, which the forwarder reads as anonymise
reads ``incoming`` and archive reads ``outgoing`` -- events carry object keys, never bytes.
Archive stays internal, with no credential to anything outside.

At least once: the outbox row is written before the event is acknowledged and removed only
once the hub has answered that it stored the instance; a crash anywhere means it is sent
again, and the hub keeps one copy per SOP Instance UID, so a resent instance is a no-op.
"""

from __future__ import annotations

import logging
from typing import Any

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.events import InstancesArchived
from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from giftcloud_ingest.forwarding.hub import HubClient, link_state, switch
from giftcloud_ingest.models import ForwardItem, ForwardProject

log = logging.getLogger(__name__)


class Forwarding:
    """Which projects forward, what waits (the outbox), and how it went."""

    def __init__(self, hub: HubClient, db: Database) -> None:
        self.hub = hub
        self.settings = hub.settings
        self.db = db

    @property
    def configured(self) -> bool:
        return bool(self.hub.url)

    async def set_enabled(self, project: str, enabled: bool, by: str) -> dict[str, Any]:
        if enabled:
            self.hub.require("forward to")
        await switch(self.db, ForwardProject, project, enabled, by)
        return await self.project_status(project)

    async def retry_failed(self, project: str) -> dict[str, Any]:
        async with self.db.session() as session:
            await session.exec(
                update(ForwardItem)
                .where(col(ForwardItem.project) == project, col(ForwardItem.state) == "failed")
                .values(state="pending", attempts=0, next_at=now())
            )
        return await self.project_status(project)

    async def project_status(self, project: str) -> dict[str, Any]:
        async with self.db.session() as session:
            row = await session.get(ForwardProject, project)
            counts = dict(
                (
                    await session.exec(
                        select(ForwardItem.state, func.count())
                        .where(ForwardItem.project == project)
                        .group_by(col(ForwardItem.state))
                    )
                ).all()
            )
            failed = (
                await session.exec(
                    select(ForwardItem.sop_uid, ForwardItem.last_error)
                    .where(ForwardItem.project == project, ForwardItem.state == "failed")
                    .limit(20)
                )
            ).all()
        return {
            "project": project,
            "hub": self.hub.url or None,
            "backlog": int(counts.get("pending", 0)),
            "failed": int(counts.get("failed", 0)),
            "failures": [{"sop_uid": sop, "reason": why} for sop, why in failed],
            **link_state(row),
        }

    async def status(self) -> dict[str, Any]:
        async with self.db.session() as session:
            projects = list((await session.exec(select(ForwardProject.project))).all())
        return {
            "hub": self.hub.url or None,
            "projects": [await self.project_status(p) for p in sorted(projects)],
        }

    async def enqueue(self, event: InstancesArchived) -> None:
        """Before the event is acknowledged: its instances into the outbox, if the project
        forwards."""
        if not self.configured or not event.instances:
            return
        async with self.db.session() as session:
            row = await session.get(ForwardProject, event.project)
            if row is None or not row.enabled:
                return
            await session.exec(
                insert(ForwardItem)
                .values(
                    [
                        {
                            "project": event.project,
                            "sop_uid": i.sop_uid,
                            "object_key": i.object_key,
                            "state": "pending",
                            "attempts": 0,
                            "next_at": now(),
                            "last_error": "",
                            "created_at": now(),
                        }
                        for i in event.instances
                    ]
                )
                .on_conflict_do_nothing()
            )
